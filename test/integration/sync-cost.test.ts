import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { type SeamedApi, startSeamedApi } from '../helpers/seamed-api.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * What one `sync` frame may cost: at most SYNC_MAX_CHATS chats (the default, 500), chats the
 * user is not in answered from one query whatever their number (queries counted on the api's
 * pool), and the chats named charged to the connection's frame budget.
 */
const BURST = 100;

let env: TestEnv;
let app: SeamedApi;
let owner: TestUser, outsider: TestUser;
let mine: string[];
let foreign: string;

beforeAll(async () => {
  // A budget of 100 frames refilled slowly: two syncs of 500 chats spend it (1 + 49 tokens each).
  env = await createTestEnv({ WS_FRAME_BURST: String(BURST), WS_FRAME_RATE_PER_S: '0.1' });
  app = await startSeamedApi(env);
  [owner, outsider] = await Promise.all([app.api.newUser('owner'), app.api.newUser('outsider')]);
  mine = [(await app.api.newChat(owner, [])).id, (await app.api.newChat(owner, [])).id];
  foreign = (await app.api.newChat(outsider, [])).id;
  for (const chatId of mine) expect((await app.api.send(owner.token, chatId, `in ${chatId}`)).status).toBe(201);
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

/** Sends a sync and resolves with the frames up to its answer: `synced`, or the frame's own error. */
async function sync(s: TestSocket, chats: Record<string, number>): Promise<Frame[]> {
  const from = s.frames.length;
  s.send({ type: 'sync', chats });
  const done = (f: Frame) => f.type === 'synced' || (f.type === 'error' && f.chatId === undefined);
  await s.next(done, 'the answer to sync', from);
  const frames = s.frames.slice(from);
  return frames.slice(0, frames.findIndex(done) + 1);
}

const randomChats = (n: number) => Object.fromEntries(Array.from({ length: n }, () => [randomUUID(), 0]));

describe('a sync frame', () => {
  it('names at most 500 chats', async () => {
    const s = await connectClient(app.url, owner.token);
    const answer = await sync(s, randomChats(501));
    expect(answer).toEqual([{ type: 'error', code: 'validation_failed', message: expect.stringContaining('500') }]);
    expect((await sync(s, randomChats(500))).at(-1)).toMatchObject({ type: 'synced' });
    await s.close();
  });

  it('answers unknown and foreign chats from one query, however many it names', async () => {
    const s = await connectClient(app.url, owner.token);
    const unknown = randomChats(497);
    const before = app.queries();
    const answer = await sync(s, { ...unknown, [foreign]: 0, [mine[0]!]: 0, [mine[1]!]: 0 });
    expect(app.queries() - before).toBe(1);

    const errors = answer.filter((f) => f.type === 'error');
    expect(errors).toHaveLength(498);
    expect(errors.find((f) => f.chatId === foreign)).toMatchObject({ code: 'forbidden' });
    expect(
      errors
        .filter((f) => f.code === 'not_found')
        .map((f) => f.chatId)
        .sort(),
    ).toEqual(Object.keys(unknown).sort());
    expect(answer.filter((f) => f.type === 'message').map((f) => (f.message as { chatId: string }).chatId)).toEqual(
      mine,
    );
    expect(answer.at(-1)).toMatchObject({ type: 'synced' });
    await s.close();
  });

  it("is charged per chat to the connection's frame budget", async () => {
    const s = await connectClient(app.url, owner.token);
    expect((await sync(s, randomChats(500))).at(-1)).toMatchObject({ type: 'synced' });
    expect((await sync(s, randomChats(500))).at(-1)).toMatchObject({ type: 'synced' });
    const refused = await sync(s, randomChats(500));
    expect(refused).toEqual([
      { type: 'error', code: 'rate_limited', message: expect.any(String), retryAfterMs: expect.any(Number) },
    ]);
    // Another connection has its own budget.
    const other = await connectClient(app.url, owner.token);
    expect((await sync(other, randomChats(500))).at(-1)).toMatchObject({ type: 'synced' });
    await Promise.all([s.close(), other.close()]);
  });
});
