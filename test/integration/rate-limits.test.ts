import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.js';
import { createKeys } from '../../src/redis/keys.js';
import { createScripts } from '../../src/redis/scripts.js';
import { createSendRateLimiter } from '../../src/services/rate-limiter.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, REDIS_KINDS, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type Frame } from '../helpers/ws-client.js';

/**
 * Sends per user (one Redis token bucket, so the limit holds across connections, transports and
 * api processes) and frames per connection (in memory; a flood that keeps going is closed with
 * 1008). Refused sends name their clientMsgId, get no seq and are not stored; others are unaffected.
 */
describe.each(REDIS_KINDS)('Redis: %s', (kind) => {
  let env: TestEnv;
  const apps: InProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv({}, { redis: kind });
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop()));
    await env?.cleanup();
  });

  async function start(overrides: Record<string, string>): Promise<InProcess> {
    const app = await startInProcess(env, { workers: false, overrides });
    apps.push(app);
    return app;
  }

  const ackOrError = (id: string) => (f: Frame) => (f.type === 'ack' || f.type === 'error') && f.clientMsgId === id;

  describe('sends per user', () => {
    const BURST = 10;
    let one: InProcess, two: InProcess;
    beforeAll(async () => {
      // A refill too slow to matter during the test: exactly BURST sends get through.
      const limits = { SEND_RATE_BURST: String(BURST), SEND_RATE_PER_S: '0.001' };
      [one, two] = await Promise.all([start(limits), start(limits)]);
    });

    it('holds across HTTP, WebSocket, connections and api processes, and stores nothing it refused', async () => {
      const [u, v] = await Promise.all([one.api.newUser('u'), one.api.newUser('v')]);
      const chat = await one.api.newChat(u, [v]);
      const [ws1, ws2] = await Promise.all([connectClient(two.url, u.token), connectClient(one.url, u.token)]);
      const ids = (p: string) => Array.from({ length: 10 }, (_, i) => `${p}-${i}`);

      const [http] = await Promise.all([
        Promise.all(ids('http').map((id) => one.api.send(u.token, chat.id, `via http ${id}`, id))),
        ...[ws1, ws2].map((s, n) => {
          for (const id of ids(`ws${n}`))
            s.send({ type: 'send', chatId: chat.id, body: `via ws ${id}`, clientMsgId: id });
          return Promise.all(ids(`ws${n}`).map((id) => s.next(ackOrError(id), `answer to ${id}`)));
        }),
      ]);
      const wsAnswers = [
        ...ids('ws0').map((id) => ws1.frames.find(ackOrError(id))!),
        ...ids('ws1').map((id) => ws2.frames.find(ackOrError(id))!),
      ];

      const accepted = [
        ...http.filter((r) => r.status === 201).map((r) => r.body.message),
        ...wsAnswers.filter((f) => f.type === 'ack').map((f) => f.message as { clientMsgId: string }),
      ];
      expect(accepted).toHaveLength(BURST);

      const refusedHttp = http.filter((r) => r.status !== 201);
      for (const r of refusedHttp) {
        expect(r.status).toBe(429);
        expect(r.body.error).toMatchObject({
          code: 'rate_limited',
          clientMsgId: expect.any(String),
          retryAfterMs: expect.any(Number),
        });
      }
      const refusedWs = wsAnswers.filter((f) => f.type === 'error');
      for (const f of refusedWs) expect(f).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) });
      expect(refusedHttp.length + refusedWs.length).toBe(30 - BURST);

      // Only the accepted ones exist, with seqs 1..BURST and nothing skipped.
      const history = await one.api.history(v.token, chat.id, 'limit=200');
      expect(history.body.messages.map((m) => m.seq)).toEqual(Array.from({ length: BURST }, (_, i) => i + 1));
      const refusedIds = new Set([
        ...refusedHttp.map((r) => r.body.error.clientMsgId),
        ...refusedWs.map((f) => f.clientMsgId),
      ]);
      expect(history.body.messages.filter((m) => refusedIds.has((m as { clientMsgId?: string }).clientMsgId!))).toEqual(
        [],
      );
      expect(await env.redis.get(`${env.config.REDIS_KEY_PREFIX}chat:{${chat.id}}:seq`)).toBe(String(BURST));

      // Another user is not limited by u's flood, on either process.
      expect((await two.api.send(v.token, chat.id, 'my turn', 'v-1')).status).toBe(201);
      await Promise.all([ws1.close(), ws2.close()]);
    });

    it('says when to retry over HTTP', async () => {
      const w = await one.api.newUser('w');
      const chat = await one.api.newChat(w, []);
      for (let i = 0; i < BURST; i++) expect((await one.api.send(w.token, chat.id, `m${i}`)).status).toBe(201);
      const res = await fetch(`${one.url}/api/chats/${chat.id}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${w.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ body: 'one too many', clientMsgId: 'late' }),
      });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await res.json()).toMatchObject({ error: { code: 'rate_limited', clientMsgId: 'late' } });
    });
  });

  describe('the bucket refills', () => {
    it('accepts a refused send once its retry comes, stored once', async () => {
      // A slow refill (one token per 500 ms), so that the third send is refused even on a busy machine.
      const app = await start({ SEND_RATE_BURST: '2', SEND_RATE_PER_S: '2' });
      const u = await app.api.newUser('refill');
      const chat = await app.api.newChat(u, []);
      await Promise.all([app.api.send(u.token, chat.id, 'a'), app.api.send(u.token, chat.id, 'b')]);
      const refused = await app.api.send(u.token, chat.id, 'c', 'retry-me');
      expect(refused.status).toBe(429);
      // A client retries with the same clientMsgId until the bucket has a token again.
      const ok = await waitFor(async () => {
        const r = await app.api.send(u.token, chat.id, 'c', 'retry-me');
        return r.status === 201 ? r : null;
      }, 'the retried send');
      expect(ok.body.message.seq).toBe(3);
      expect((await app.api.history(u.token, chat.id)).body.messages.map((m) => m.body).sort()).toEqual([
        'a',
        'b',
        'c',
      ]);
    });
  });

  describe('frames per connection', () => {
    const BURST = 20;
    const TOLERATED = 30;
    let app: InProcess;
    beforeAll(async () => {
      app = await start({
        WS_FRAME_BURST: String(BURST),
        WS_FRAME_RATE_PER_S: '0.01',
        WS_FLOOD_MAX_REFUSED: String(TOLERATED),
      });
    });

    it('refuses a flood, closes it with 1008, stores nothing refused, and leaves others alone', async () => {
      const [u, v] = await Promise.all([app.api.newUser('flooder'), app.api.newUser('bystander')]);
      const chat = await app.api.newChat(u, [v]);
      const flooder = await connectClient(app.url, u.token);
      const sameUser = await connectClient(app.url, u.token);
      const bystander = await connectClient(app.url, v.token);

      for (let i = 0; i < 200; i++)
        flooder.send({ type: 'send', chatId: chat.id, body: `flood ${i}`, clientMsgId: `f-${i}` });
      expect(await flooder.closed).toBe(1008);

      const refused = flooder.of('error');
      expect(refused).toHaveLength(TOLERATED + 1);
      for (const f of refused)
        expect(f).toMatchObject({ code: 'rate_limited', clientMsgId: expect.stringMatching(/^f-\d+$/) });
      // The bystander and the user's other connection carry on.
      bystander.send({ type: 'send', chatId: chat.id, body: 'unbothered', clientMsgId: 'calm-1' });
      await bystander.next((f) => f.type === 'ack' && f.clientMsgId === 'calm-1', 'bystander ack');
      sameUser.send({ type: 'ping', ref: 'other-connection' });
      await sameUser.next(
        (f) => f.type === 'pong' && f.ref === 'other-connection',
        'pong on the same user’s other connection',
      );

      // Stored: at most the burst, none of the refused.
      const stored = (await app.api.history(v.token, chat.id, 'limit=200')).body.messages as unknown as {
        clientMsgId: string | null;
      }[];
      const refusedIds = new Set(refused.map((f) => f.clientMsgId));
      const flooded = stored.filter((m) => m.clientMsgId?.startsWith('f-'));
      expect(flooded.length).toBeLessThanOrEqual(BURST + 1);
      expect(flooded.filter((m) => refusedIds.has(m.clientMsgId))).toEqual([]);
      await Promise.all([sameUser.close(), bystander.close()]);
    });

    it('keeps a connection that is refused now and then', async () => {
      const u = await app.api.newUser('eager');
      const s = await connectClient(app.url, u.token);
      for (let i = 0; i < BURST + 5; i++) s.send({ type: 'ping', ref: i });
      await s.until(
        (fs) => fs.filter((f) => f.type === 'pong' || f.type === 'error').length === BURST + 5,
        'every answer',
      );
      expect(s.of('error').map((f) => f.code)).toEqual(Array(5).fill('rate_limited'));
      expect(s.ws.readyState).toBe(s.ws.OPEN);
      await s.close();
    });
  });

  describe('the send limiter itself', () => {
    const outcome = (p: Promise<void>) =>
      p.then(
        () => 'ok',
        (err: unknown) => (err instanceof AppError ? err.code : String(err)),
      );

    it('is one bucket for every process that shares Redis (taken in a round trip of its own, as on Redis Cluster)', async () => {
      const keys = createKeys(env.config.REDIS_KEY_PREFIX);
      const limits = { capacity: 3, perSecond: 0.001 };
      const clients = [new Redis(env.config.REDIS_URL), new Redis(env.config.REDIS_URL)];
      const [p1, p2] = clients.map((r) =>
        createSendRateLimiter({ inAppend: false, scripts: createScripts(r), keys, limits }),
      );
      const results = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((i) => outcome((i % 2 ? p1! : p2!).check('user-shared', `c${i}`))),
      );
      expect(results.filter((r) => r === 'ok')).toHaveLength(3);
      expect(results.filter((r) => r === 'rate_limited')).toHaveLength(3);
      clients.forEach((r) => r.disconnect());
    });

    it('falls back to a local bucket when Redis cannot be reached, instead of failing or lifting the limit', async () => {
      // A real client to a port nobody listens on, failing fast like the api's command connection.
      const dead = new Redis({
        port: 1,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      dead.on('error', () => undefined);
      const limiter = createSendRateLimiter({
        inAppend: false,
        scripts: createScripts(dead),
        keys: createKeys('x:'),
        limits: { capacity: 2, perSecond: 0.001 },
      });
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await outcome(limiter.check('user-offline')));
      expect(results).toEqual(['ok', 'ok', 'rate_limited', 'rate_limited']);
      expect(await outcome(limiter.check('someone-else'))).toBe('ok');
      dead.disconnect();
    });
  });
});
