import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateRedis, startPrivateRedis } from '../../scripts/faults/private-services.js';
import type { TestUser } from '../helpers/http-client.js';
import { startInProcess, type InProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

/**
 * Presence, typing and read receipts need Redis. With Redis killed under the api they answer
 * `unavailable`, cleanly, and the connection and the process carry on.
 */
let redis: PrivateRedis;
let env: TestEnv;
let app: InProcess;
let a: TestUser, b: TestUser;
let chatId: string;
let socket: TestSocket;

beforeAll(async () => {
  redis = await startPrivateRedis({ aof: false });
  env = await createTestEnv({ REDIS_URL: redis.url, REDIS_PROBE_MS: '200' });
  env.redis.on('error', () => undefined);
  app = await startInProcess(env, { workers: false });
  [a, b] = await Promise.all([app.api.newUser('a'), app.api.newUser('b')]);
  chatId = (await app.api.newChat(a, [b])).id;
  socket = await connectClient(app.url, a.token);
  await redis.kill('SIGKILL');
});
afterAll(async () => {
  // Redis back first, so that the api's shutdown does not wait on it.
  await redis?.start().catch(() => undefined);
  await app?.stop();
  await env?.cleanup();
  await redis?.destroy();
});

describe('without Redis', () => {
  it('answers typing and read frames with unavailable and keeps the socket open', async () => {
    const s = socket;
    s.send({ type: 'typing', chatId });
    expect(await s.next((f) => f.type === 'error', 'typing refused')).toMatchObject({ code: 'unavailable' });
    const from = s.frames.length;
    s.send({ type: 'read', chatId, seq: 1 });
    expect(await s.next((f) => f.type === 'error', 'read refused', from)).toMatchObject({ code: 'unavailable' });
    s.send({ type: 'ping', ref: 'still here' });
    expect(await s.next((f) => f.type === 'pong', 'pong')).toEqual({ type: 'pong', ref: 'still here' });
    expect(s.closeCode).toBeUndefined();
  });

  it('answers 503 unavailable for presence and read over HTTP', async () => {
    const presence = await app.api.request('GET', `/api/users/${b.user.id}/presence`, undefined, a.token);
    expect(presence.status).toBe(503);
    expect(presence.body.error.code).toBe('unavailable');
    const read = await app.api.request('POST', `/api/chats/${chatId}/read`, { seq: 1 }, a.token);
    expect(read.status).toBe(503);
    expect(read.body.error.code).toBe('unavailable');
    // Chat listing still works: unreadCount comes from PostgreSQL alone.
    const list = await app.api.request('GET', '/api/chats', undefined, a.token);
    expect(list.status).toBe(200);
    expect(list.body.chats[0]).toMatchObject({ id: chatId, unreadCount: 0 });
  });
});
