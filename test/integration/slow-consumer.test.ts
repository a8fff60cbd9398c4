import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

/**
 * A client that stops reading: the server buffers at most WS_SEND_BUFFER_MAX for it, then closes
 * it with 4008 instead of growing without bound; the other clients get every message on time, and
 * the slow one recovers everything with `sync` after reconnecting.
 */
const BODY_CHARS = 16_000;
const MESSAGES = 800; // ~13 MB: far more than the kernel buffers (~4 MB here) plus the server's bound
const BUFFER_MAX = 256 * 1024;

let env: TestEnv;
let app: InProcess;
let sender: TestUser, slowUser: TestUser, fastUser: TestUser;
let chatId: string;

beforeAll(async () => {
  env = await createTestEnv({
    MESSAGE_MAX_CHARS: String(BODY_CHARS),
    WS_SEND_BUFFER_SOFT: String(64 * 1024),
    WS_SEND_BUFFER_MAX: String(BUFFER_MAX),
    // Only the outgoing side is under test here.
    SEND_RATE_BURST: '0',
    WS_FRAME_BURST: '0',
  });
  app = await startInProcess(env, { workers: false });
  [sender, slowUser, fastUser] = await Promise.all([
    app.api.newUser('sender'),
    app.api.newUser('slow'),
    app.api.newUser('fast'),
  ]);
  chatId = (await app.api.newChat(sender, [slowUser, fastUser])).id;
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

/** The underlying TCP socket of a client (ws keeps it private). */
const tcp = (s: TestSocket) => (s.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
const seqsOf = (s: TestSocket) => s.of('message').map((f) => (f.message as { seq: number }).seq);

describe('a client that stops reading', () => {
  it('is closed with 4008 while the others get everything, and recovers with sync', async () => {
    const slow = await connectClient(app.url, slowUser.token);
    const fast = await connectClient(app.url, fastUser.token);
    const writer = await connectClient(app.url, sender.token);
    tcp(slow).pause();

    const body = (i: number) => `${String(i).padStart(6, '0')} ${'x'.repeat(BODY_CHARS - 7)}`;
    // A window of sends in flight, not all 800 at once: the writer and the fast reader get every
    // message too (26 MB in all), and a burst of it could make them, on a busy machine, the slow
    // consumers that this test means only the paused client to be.
    const WINDOW = 40;
    const acks = () => writer.of('ack').length;
    for (let i = 0; i < MESSAGES; i++) {
      if (i >= WINDOW)
        await writer.until(
          () => acks() > i - WINDOW,
          `the ack of send ${i - WINDOW} (writer closed: ${writer.closeCode ?? 'no'})`,
          20_000,
        );
      writer.send({ type: 'send', chatId, body: body(i), clientMsgId: `slow-${i}` });
    }
    await writer.until(() => acks() === MESSAGES, `every ack (writer closed: ${writer.closeCode ?? 'no'})`, 20_000);
    // The fast reader is unaffected: every message, in order. The server wrote (or refused to
    // write) each one to the slow socket in the same pass, so all of them have been tried there.
    await fast.until(
      (fs) => fs.filter((f) => f.type === 'message').length === MESSAGES,
      `every message on the fast client (closed: ${fast.closeCode ?? 'no'})`,
      20_000,
    );
    expect(seqsOf(fast)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    expect(fast.ws.readyState).toBe(fast.ws.OPEN);

    tcp(slow).resume();
    const closed = await Promise.race([
      slow.closed,
      new Promise<string>((r) => setTimeout(() => r(`still open; got ${seqsOf(slow).length} messages`), 15_000)),
    ]);
    expect(closed).toBe(4008);
    // It got a gapless prefix and then nothing: the server stopped writing, it did not skip.
    const got = seqsOf(slow);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(MESSAGES);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1));

    const again = await connectClient(app.url, slowUser.token);
    again.send({ type: 'sync', chats: { [chatId]: got.at(-1)! } });
    await again.next((f) => f.type === 'synced', 'synced', 0, 20_000);
    expect([...got, ...seqsOf(again)]).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    expect(again.of('message').at(-1)!.message).toEqual(fast.of('message').at(-1)!.message);
    await Promise.all([again.close(), fast.close(), writer.close()]);
  });
});
