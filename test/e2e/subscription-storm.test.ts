import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startPrivateRedis, type PrivateRedis } from '../../scripts/faults/private-services.js';
import { DEFAULT_SPACING_MS } from '../../src/realtime/chat-subscriptions.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { type Frame, TestSocket } from '../helpers/ws-client.js';

/**
 * A reconnect storm is not a command storm: an api process's SSUBSCRIBEs and SUNSUBSCRIBEs of its
 * chats' sharded channels are batched (src/realtime/chat-subscriptions.ts: one command of each
 * kind per group and batch, batches at least `spacingMs` apart). 300 members of 150 chats open
 * their sockets at once, then all close and reconnect at once, then all close: each storm costs a
 * few commands, counted in the INFO commandstats of a private Redis (the shared one counts every
 * test file's commands), while every chat's channel is subscribed once its members are there and
 * none is once they are gone. And nothing is missed meanwhile: a message sent right after a
 * socket's `ready` reaches it.
 */
const CHATS = 150;
/** The least time between two batches of (un)subscribes (the api's, the module's default). */
const SPACING_MS = DEFAULT_SPACING_MS;

let redis: PrivateRedis;
let env: TestEnv;
let api: RunningProcess;
let admin: Redis;
let http: ApiClient;

beforeAll(async () => {
  redis = await startPrivateRedis({ aof: false });
  env = await createTestEnv({ REDIS_URL: redis.url });
  api = await startApiProcess(env.env);
  admin = new Redis(redis.url);
  http = new ApiClient(api.url);
});
afterAll(async () => {
  await api?.kill('SIGTERM');
  admin?.disconnect();
  await env?.cleanup();
  await redis?.destroy();
});

/** Calls of a command on the private Redis so far (INFO commandstats). */
async function calls(command: 'ssubscribe' | 'sunsubscribe'): Promise<number> {
  const info = await admin.info('commandstats');
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

interface Counts {
  ssubscribe: number;
  sunsubscribe: number;
}

async function counts(): Promise<Counts> {
  return { ssubscribe: await calls('ssubscribe'), sunsubscribe: await calls('sunsubscribe') };
}

/**
 * Runs one storm and reads the command counts after it, with how long it took from its start
 * to the read: every command it caused went in that time.
 */
async function phase<T>(run: () => Promise<T>): Promise<{ result: T; counts: Counts; ms: number }> {
  const t0 = performance.now();
  const result = await run();
  const after = await counts();
  return { result, counts: after, ms: performance.now() - t0 };
}

/** The sharded channels with a subscriber (the api is the private Redis's only one). */
async function shardChannels(): Promise<string[]> {
  return ((await admin.call('PUBSUB', 'SHARDCHANNELS')) as string[]).sort();
}

const channelOf = (chatId: string) => `${env.config.REDIS_KEY_PREFIX}channel:chat-messages:{${chatId}}`;

/** `make(0)` … `make(n - 1)`, at most 16 under way at a time, in index order. */
async function inTurns<T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) out[i] = await make(i);
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  return out;
}

interface Member {
  user: TestUser;
  chatId: string;
}

interface Opened {
  socket: TestSocket;
  /** The order in which this socket's `ready` arrived among its storm's sockets. */
  readyAt: number;
  /** The body it sent to its chat in the same tick as its `ready`. */
  body: string;
}

/**
 * Opens one socket per member at once; each sends a message to its chat as soon as its `ready`
 * arrives (in the same tick). Resolves with every socket once each has its `ready`.
 */
async function storm(members: Member[], round: string): Promise<Opened[]> {
  let order = 0;
  return Promise.all(
    members.map(
      (m, i) =>
        new Promise<Opened>((resolve, reject) => {
          const ws = new WebSocket(`${api.url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(m.user.token)}`);
          const socket = new TestSocket(ws);
          const body = `${round} from ${i}`;
          ws.on('message', function onReady(data) {
            if ((JSON.parse(data.toString()) as Frame).type !== 'ready') return;
            ws.off('message', onReady);
            socket.send({ type: 'send', chatId: m.chatId, body, clientMsgId: `${round}-${i}` });
            resolve({ socket, readyAt: order++, body });
          });
          ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
          ws.once('error', reject);
        }),
    ),
  );
}

/**
 * Every socket gets its own message and its chat partner's when the partner's `ready` came after
 * its own (the partner sent after that `ready`, so after this socket's).
 */
async function expectNothingMissed(members: Member[], opened: Opened[]): Promise<void> {
  const partnerOf = (i: number) => (i % 2 === 0 ? i + 1 : i - 1);
  await Promise.all(
    opened.map(async (o, i) => {
      const partner = opened[partnerOf(i)]!;
      const due = [o.body, ...(partner.readyAt > o.readyAt ? [partner.body] : [])];
      await o.socket.until(
        (fs) =>
          due.every((body) =>
            fs.some(
              (f) =>
                f.type === 'message' &&
                (f.message as { chatId: string; body: string }).chatId === members[i]!.chatId &&
                (f.message as { body: string }).body === body,
            ),
          ),
        `socket ${i}: ${due.join(', ')}`,
      );
    }),
  );
}

describe('300 members of 150 chats on one api process', () => {
  let members: Member[];
  let channels: string[];

  beforeAll(async () => {
    // A few at a time: the api answers 503 to logins past its hash queue (PASSWORD_HASH_QUEUE_MAX).
    const users = await inTurns(2 * CHATS, (i) => http.newUser(`storm${i}`));
    const chats = await inTurns(CHATS, (c) => http.newChat(users[2 * c]!, [users[2 * c + 1]!], `chat ${c}`));
    members = users.map((user, i) => ({ user, chatId: chats[Math.floor(i / 2)]!.id }));
    channels = chats.map((c) => channelOf(c.id)).sort();
  });

  it('subscribes, resubscribes and unsubscribes every chat in a few commands per storm, missing nothing', async () => {
    expect(await shardChannels()).toEqual([]);
    const before = await counts();

    // All connect at once.
    const connect = await phase(async () => {
      const opened = await storm(members, 'first');
      expect(await shardChannels()).toEqual(channels);
      return opened;
    });
    await expectNothingMissed(members, connect.result);

    // All close and reconnect at once.
    const reconnect = await phase(async () => {
      const closing = connect.result.map((o) => o.socket.close());
      const opened = await storm(members, 'again');
      await Promise.all(closing);
      // A chat whose two members' old sockets both went before either new one came may have been
      // unsubscribed meanwhile: its new sockets' `ready` waited for it to be subscribed again.
      expect(await shardChannels()).toEqual(channels);
      return opened;
    });
    await expectNothingMissed(members, reconnect.result);

    // All close at once.
    const close = await phase(async () => {
      await Promise.all(reconnect.result.map((o) => o.socket.close()));
      await waitFor(async () => (await shardChannels()).length === 0, 'every chat unsubscribed');
    });

    const commands = (p: { counts: Counts }, q: Counts) => ({
      ssubscribe: p.counts.ssubscribe - q.ssubscribe,
      sunsubscribe: p.counts.sunsubscribe - q.sunsubscribe,
    });
    const measured = {
      connect: { ...commands(connect, before), ms: connect.ms },
      reconnect: { ...commands(reconnect, connect.counts), ms: reconnect.ms },
      close: { ...commands(close, reconnect.counts), ms: close.ms },
    };
    console.log(`${CHATS} chats, ${2 * CHATS} sockets: commands per storm ${JSON.stringify(measured)}`);

    for (const [name, m] of Object.entries(measured)) {
      // Batches go at least SPACING_MS apart: at most one per SPACING_MS of the phase, and one
      // more for the batch its first change started. Each batch is one command of each kind (one
      // group on a single Redis, far fewer than maxPerCommand channels).
      const batches = Math.floor(m.ms / SPACING_MS) + 1;
      expect(m.ssubscribe, `${name}: SSUBSCRIBEs`).toBeLessThanOrEqual(batches);
      expect(m.sunsubscribe, `${name}: SUNSUBSCRIBEs`).toBeLessThanOrEqual(batches);
      // Whatever this machine's pace (a slow storm would loosen the bound above): far fewer than
      // one per chat (without batching: 150 of each kind per storm).
      expect(m.ssubscribe, `${name}: SSUBSCRIBEs`).toBeLessThanOrEqual(CHATS / 4);
      expect(m.sunsubscribe, `${name}: SUNSUBSCRIBEs`).toBeLessThanOrEqual(CHATS / 4);
    }
    expect(measured.connect.ssubscribe).toBeGreaterThanOrEqual(1);
    expect(measured.connect.sunsubscribe).toBe(0);
    expect(measured.close.ssubscribe).toBe(0);
    expect(measured.close.sunsubscribe).toBeGreaterThanOrEqual(1);
  });
});
