import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/domain/errors.js';
import { createSchemas } from '../../src/domain/schemas.js';
import { INJECTIONS, ODD_TEXT, UNKNOWN_ID } from '../helpers/hostile-input.js';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * Generated frames (well-formed, half-formed and garbage) thrown at a live server: every one gets
 * an answer from the contract, nothing else ever arrives, and the process stays up. The limits are
 * off here so that only the input decides the answer (the flood test covers the limits).
 */
const MAX_CHARS = 200;
const RUNS = 1000;

let env: TestEnv;
let app: InProcess;
let a: TestUser, b: TestUser;
let ownChat: string;
let foreignChat: string;
let s: TestSocket;

beforeAll(async () => {
  env = await createTestEnv({ MESSAGE_MAX_CHARS: String(MAX_CHARS), SEND_RATE_BURST: '0', WS_FRAME_BURST: '0' });
  app = await startInProcess(env, { workers: false });
  [a, b] = await Promise.all([app.api.newUser('a'), app.api.newUser('b')]);
  ownChat = (await app.api.newChat(a, [])).id;
  foreignChat = (await app.api.newChat(b, [])).id;
  await app.api.send(a.token, ownChat, 'seed message');
  s = await connectClient(app.url, a.token);
});
afterAll(async () => {
  await s?.close();
  await app?.stop();
  await env?.cleanup();
});

const CODES = new Set(Object.keys(ERROR_CODES));
const schemas = createSchemas({ messageMaxChars: MAX_CHARS, chatMaxMembers: 1000 });

/** True when `f` is a frame the contract lets the server send. */
function isContractFrame(f: Frame): boolean {
  switch (f.type) {
    case 'error':
      return CODES.has(f.code as string) && f.code !== 'internal' && typeof f.message === 'string';
    case 'ack':
      // A change sent without a clientMsgId is acked with null.
      return (
        (typeof f.clientMsgId === 'string' || f.clientMsgId === null) &&
        typeof (f.message as { seq?: unknown })?.seq === 'number' &&
        f.state === 'accepted'
      );
    case 'message':
    case 'message.updated':
      return typeof (f.message as { id?: unknown })?.id === 'string';
    case 'persisted':
      return typeof f.chatId === 'string' && typeof f.seq === 'number';
    case 'pong':
      return 'ref' in f;
    case 'ready':
    case 'synced':
    case 'typing':
    case 'read':
    case 'presence':
    case 'system':
      return true;
    default:
      return false;
  }
}

function arbitraries() {
  const text = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: MAX_CHARS - 2, maxLength: MAX_CHARS + 2 }),
    fc.constantFrom(...ODD_TEXT, ...INJECTIONS, '', ' ', '\u0000'),
  );
  const anything = fc.oneof(
    text,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.jsonValue({ maxDepth: 3 }),
  );
  const id = fc.oneof(
    fc.constant(ownChat),
    fc.constant(foreignChat),
    fc.constant(UNKNOWN_ID),
    fc.uuid(),
    fc.constant(ownChat.toUpperCase()),
    anything,
  );
  const clientMsgId = fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,64}$/), anything);
  const seq = fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER + 2), anything);
  const chats = fc.oneof(
    fc.dictionary(fc.oneof(fc.constant(ownChat), fc.constant(foreignChat), fc.uuid(), fc.string()), seq, {
      maxKeys: 4,
    }),
    anything,
  );
  const structured = fc
    .record(
      {
        type: fc.oneof(fc.constantFrom('send', 'sync', 'typing', 'read', 'edit', 'delete', 'react', 'ping'), anything),
        chatId: id,
        body: text,
        clientMsgId,
        seq,
        chats,
        emoji: fc.oneof(fc.constantFrom('👍', '🎉', 'ok'), text),
        on: fc.oneof(fc.boolean(), anything),
        ref: anything,
      },
      { requiredKeys: ['type'] },
    )
    .map((f) => JSON.stringify(f));
  const truncated = structured.chain((json) =>
    fc.nat({ max: Math.max(0, json.length - 1) }).map((n) => json.slice(0, n)),
  );
  const garbage = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.json({ maxDepth: 4 }));
  const binary = fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes));
  return fc.oneof(
    { arbitrary: structured, weight: 6 },
    { arbitrary: truncated, weight: 2 },
    { arbitrary: garbage, weight: 2 },
    { arbitrary: binary, weight: 1 },
  );
}

/** What the server must answer `raw` with, or null for a frame the contract lets pass silently. */
function expectation(raw: string | Buffer): ((f: Frame) => boolean) | null {
  if (typeof raw !== 'string') return (f) => f.type === 'error';
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return (f) => f.type === 'error';
  }
  const parsed = schemas.frame.safeParse(json);
  if (!parsed.success) return (f) => f.type === 'error';
  const frame = parsed.data;
  switch (frame.type) {
    case 'send':
      return (f) => (f.type === 'ack' || f.type === 'error') && f.clientMsgId === frame.clientMsgId;
    case 'edit':
    case 'delete':
    case 'react':
      // Acked, or refused, naming the change's clientMsgId when it had one.
      return (f) =>
        (f.type === 'ack' && f.clientMsgId === (frame.clientMsgId ?? null)) ||
        (f.type === 'error' && f.clientMsgId === frame.clientMsgId);
    case 'sync':
      return (f) => f.type === 'synced';
    case 'ping':
      return (f) => f.type === 'pong' && JSON.stringify(f.ref) === JSON.stringify(frame.ref ?? null);
    case 'typing':
    case 'read':
      // To one's own chat these only reach the other members; anywhere else they are refused.
      return frame.chatId === ownChat ? null : (f) => f.type === 'error';
  }
}

describe('generated frames against a live server', () => {
  it(`answers each of ${RUNS} generated frames from the contract and stays up`, async () => {
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(arbitraries(), async (raw) => {
        const expected = expectation(raw);
        fc.pre(expected !== null);
        expect(s.ws.readyState).toBe(s.ws.OPEN);
        const from = s.frames.length;
        s.ws.send(raw);
        await s.next(expected!, `an answer to ${JSON.stringify(raw.toString()).slice(0, 200)}`, from, 10_000);
        const strange = s.frames.slice(from).filter((f) => !isContractFrame(f));
        expect(strange).toEqual([]);
        answered++;
      }),
      { numRuns: RUNS, interruptAfterTimeLimit: 120_000 },
    );
    expect(answered).toBeGreaterThan(RUNS / 2);
    // Everything that ever arrived on this socket is from the contract.
    expect(s.frames.filter((f) => !isContractFrame(f))).toEqual([]);
  });

  it('is still up and serving everyone afterwards', async () => {
    expect((await app.api.request('GET', '/healthz')).status).toBe(200);
    const other = await connectClient(app.url, b.token);
    other.send({ type: 'send', chatId: foreignChat, body: 'after the storm', clientMsgId: 'calm' });
    await other.next((f) => f.type === 'ack' && f.clientMsgId === 'calm', 'ack after the generated frames');
    await other.close();
    // Seqs of the chat that took the generated sends are still gapless and unique.
    const history = await app.api.history(a.token, ownChat, 'limit=200');
    const seqs = history.body.messages.map((m) => m.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  });
});
