import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookProgress } from '../../src/queues/definitions.js';
import { type WebhookJob, webhookEndpoints } from '../../src/webhooks/endpoints.js';
import { SIGNATURE_HEADER, verifySignature, type WebhookEvent } from '../../src/webhooks/events.js';
import type { EndpointStatus } from '../../src/webhooks/stats.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient, type TestSocket } from '../helpers/ws-client.js';

/**
 * Webhooks with real processes (two api processes, one worker) and real receivers on port 0:
 * `good` acknowledges every event it can verify; `dead` answers 500 to everything; `late` is closed
 * before the traffic and reopened on the same port once its deliveries have failed. Small backoff
 * (100 ms doubling to 1 s, 10 attempts: about 7 s before an event is given up on).
 */
const SECRET = 'test-webhook-secret-0123456789';
const ADMIN = 'test-admin-token-0123456789';

interface Receiver {
  url: string;
  server: Server;
  port: number;
  /** Events acknowledged (2xx), in arrival order, with their raw body and signature. */
  acked: { event: WebhookEvent; raw: string; signature: string | undefined; at: number }[];
  badSignatures: number;
  requests: number;
  /** Requests per event id (verified ones). */
  requestsById: Map<string, number>;
  /** Event ids answered 500 the first time they arrive (then acknowledged). */
  failOnce: Set<string>;
  listen(): Promise<void>;
  close(): Promise<void>;
}

function receiver(answer: 'ok' | 'fail'): Receiver {
  const r: Receiver = {
    url: '',
    port: 0,
    acked: [],
    badSignatures: 0,
    requests: 0,
    requestsById: new Map(),
    failOnce: new Set(),
    server: createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        r.requests++;
        const raw = Buffer.concat(chunks).toString('utf8');
        const signature = req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined;
        if (!verifySignature(SECRET, signature, raw, { toleranceS: 300 })) {
          r.badSignatures++;
          res.writeHead(401).end();
          return;
        }
        const event = JSON.parse(raw) as WebhookEvent;
        const seen = r.requestsById.get(event.id) ?? 0;
        r.requestsById.set(event.id, seen + 1);
        if (answer === 'fail' || (r.failOnce.has(event.id) && seen === 0)) {
          res.writeHead(500).end('no');
          return;
        }
        r.acked.push({ event, raw, signature, at: Date.now() });
        res.writeHead(204).end();
      });
    }),
    async listen() {
      await new Promise<void>((resolve) => r.server.listen(r.port, '127.0.0.1', resolve));
      r.port = (r.server.address() as AddressInfo).port;
      r.url = `http://127.0.0.1:${r.port}/hook`;
    },
    async close() {
      r.server.closeAllConnections();
      await new Promise<void>((resolve) => r.server.close(() => resolve()));
    },
  };
  return r;
}

const ids = (r: Receiver, type?: string) =>
  r.acked.filter((a) => !type || a.event.type === type).map((a) => a.event.id);

describe('webhooks', () => {
  let env: TestEnv;
  let api1: RunningProcess, api2: RunningProcess, worker: RunningProcess;
  let http: ApiClient;
  const good = receiver('ok');
  const dead = receiver('fail');
  const late = receiver('ok');
  const flaky = receiver('ok');
  let alice: TestUser, bob: TestUser, carol: TestUser;
  let chat: { id: string };
  let bobSocket: TestSocket;

  beforeAll(async () => {
    await Promise.all([good.listen(), dead.listen(), late.listen(), flaky.listen()]);
    env = await createTestEnv({
      WEBHOOK_URLS: [good.url, dead.url, late.url, flaky.url].join(','),
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ATTEMPTS: '10',
      WEBHOOK_BACKOFF_MS: '100',
      WEBHOOK_BACKOFF_CAP_MS: '1000',
      WEBHOOK_TIMEOUT_MS: '2000',
      NOTIFY_DEBOUNCE_MS: '60000',
      ADMIN_TOKEN: ADMIN,
    });
    [api1, api2, worker] = await Promise.all([
      startApiProcess(env.env),
      startApiProcess(env.env),
      startWorkerProcess(env.env),
    ]);
    http = new ApiClient(api1.url);
  });
  afterAll(async () => {
    await bobSocket?.close().catch(() => undefined);
    await Promise.all([api1, api2, worker].filter(Boolean).map((p) => p.kill('SIGTERM')));
    await Promise.all([good, dead, late, flaky].map((r) => r.close().catch(() => undefined)));
    await env?.cleanup();
  });

  async function withQueue(url: string, use: (queue: Queue) => Promise<void>): Promise<void> {
    const endpoint = webhookEndpoints(env.config).find((e) => e.url === url)!;
    const connection = new Redis(env.config.REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(endpoint.queue.name, { connection, prefix: endpoint.queue.prefix });
    try {
      await use(queue);
    } finally {
      await queue.close();
      await connection.quit();
    }
  }

  async function admin(): Promise<Map<string, EndpointStatus>> {
    const r = await http.request('GET', '/admin/webhooks', undefined, ADMIN);
    expect(r.status).toBe(200);
    const endpoints = (r.body as { endpoints: EndpointStatus[] }).endpoints;
    return new Map(endpoints.map((e) => [e.url, e]));
  }

  it('delivers signed events for every send, edit and membership change; notifies the offline member only, once', async () => {
    // `late` is down while the traffic happens.
    await late.close();
    [alice, bob, carol] = await Promise.all([http.newUser('alice'), http.newUser('bob'), http.newUser('carol')]);
    chat = await http.newChat(alice, [bob], 'hooks');
    // Bob is connected (on the other api process) for the first sends: no notification for him.
    bobSocket = await connectClient(api2.url, bob.token);
    const added = await http.request('POST', `/api/chats/${chat.id}/members`, { userId: carol.user.id }, alice.token);
    expect(added.status).toBe(201);
    for (const body of ['one', 'two', 'three']) expect((await http.send(alice.token, chat.id, body)).status).toBe(201);
    const edited = await http.request(
      'PATCH',
      `/api/chats/${chat.id}/messages/1`,
      { body: 'one, edited' },
      alice.token,
    );
    expect(edited.status).toBe(200);

    await waitFor(
      () => ids(good, 'message.created').length === 3 && ids(good, 'message.updated').length === 1,
      'message events',
    );
    // Carol (never connected) is notified once in the window, with her unread count as of that message.
    await waitFor(() => ids(good, 'notification.needed').length === 1, 'a notification for carol');
    const [note] = good.acked.filter((a) => a.event.type === 'notification.needed').map((a) => a.event.data);
    expect(note).toMatchObject({
      userId: carol.user.id,
      chatId: chat.id,
      chatTitle: 'hooks',
      sender: { id: alice.user.id, username: alice.user.username },
    });
    const n = note as { seq: number; unreadCount: number; preview: string };
    expect(n.unreadCount).toBe(n.seq);
    expect(['one', 'two', 'three']).toContain(n.preview);

    // Bob reads up to seq 1 and goes offline: the next message notifies him with 4 - 1 unread.
    expect((await http.request('POST', `/api/chats/${chat.id}/read`, { seq: 1 }, bob.token)).status).toBe(204);
    await bobSocket.close();
    await waitFor(
      async () => (await env.redis.exists(`${env.config.REDIS_KEY_PREFIX}presence:{${bob.user.id}}`)) === 0,
      'bob offline',
    );
    expect((await http.send(alice.token, chat.id, 'four')).status).toBe(201);
    const removed = await http.request(
      'DELETE',
      `/api/chats/${chat.id}/members/${carol.user.id}`,
      undefined,
      alice.token,
    );
    expect(removed.status).toBe(204);

    await waitFor(
      () => ids(good, 'message.created').length === 4 && ids(good, 'member.removed').length === 1,
      'the rest',
    );
    await waitFor(() => ids(good, 'notification.needed').length === 2, "bob's notification");
    const bobs = good.acked
      .map((a) => a.event)
      .find((e) => e.type === 'notification.needed' && (e.data as { userId: string }).userId === bob.user.id);
    expect(bobs?.data).toMatchObject({ seq: 4, unreadCount: 3, preview: 'four', chatTitle: 'hooks' });
    // Carol was notified once only (the debounce), alice never (the sender).
    const notified = good.acked
      .filter((a) => a.event.type === 'notification.needed')
      .map((a) => (a.event.data as { userId: string }).userId);
    expect(notified.sort()).toEqual([bob.user.id, carol.user.id].sort());

    expect(ids(good, 'member.added')).toHaveLength(3);
    expect(
      good.acked
        .filter((a) => a.event.type === 'member.added')
        .map((a) => (a.event.data as { userId: string }).userId)
        .sort(),
    ).toEqual([alice.user.id, bob.user.id, carol.user.id].sort());
    const updated = good.acked.find((a) => a.event.type === 'message.updated')!.event.data as {
      message: { seq: number; body: string };
    };
    expect(updated.message).toMatchObject({ seq: 1, body: 'one, edited' });
    // Every request verified; no id twice.
    expect(good.badSignatures).toBe(0);
    expect(new Set(ids(good)).size).toBe(good.acked.length);
    for (const a of good.acked) expect(Object.keys(a.event).sort()).toEqual(['createdAt', 'data', 'id', 'type']);
    // The healthy receiver has every event while the failing one's are still being retried
    // (10 attempts from 100 ms doubling to 1 s: over 5 s): it did not wait for them.
    const failing = (await admin()).get(dead.url)!;
    expect(failing.pending).toBeGreaterThan(0);
    expect(failing.failed).toBeLessThan(good.acked.length);
  });

  it('a tampered body fails the signature the receiver checks', async () => {
    const sample = good.acked[0]!;
    const tampered = sample.raw.replace(sample.event.id, `${sample.event.id}x`);
    const res = await fetch(good.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: sample.signature ?? '' },
      body: tampered,
    });
    expect(res.status).toBe(401);
    expect(good.badSignatures).toBe(1);
    good.badSignatures = 0;
  });

  it('retries a receiver that was down until it is back, then it has every event once', async () => {
    await waitFor(
      async () => ((await admin()).get(late.url)?.failedAttempts ?? 0) > 0,
      'failed deliveries to the closed receiver',
    );
    await late.listen(); // the same port: the next retries reach it
    const expected = new Set(ids(good));
    await waitFor(() => late.acked.length >= expected.size, 'every event at the reopened receiver');
    expect(new Set(ids(late))).toEqual(expected);
    expect(new Set(ids(late)).size).toBe(late.acked.length);
    expect(late.badSignatures).toBe(0);
    const status = await waitFor(async () => {
      const s = (await admin()).get(late.url);
      return s && s.pending === 0 && s.delivered === expected.size ? s : null;
    }, 'late receiver settled');
    expect(status.failed).toBe(0);
    expect(status.lastError).toMatch(/ECONNREFUSED|request failed/);
  });

  it('a receiver that always fails ends in the dead-letter set, without having held up the healthy one', async () => {
    const total = good.acked.length;
    const status = await waitFor(
      async () => {
        const s = (await admin()).get(dead.url);
        return s && s.failed === total && s.pending === 0 ? s : null;
      },
      'every event dead-lettered',
      { timeoutMs: 30_000 },
    );
    expect(status.delivered).toBe(0);
    expect(status.failedAttempts).toBe(total * 10);
    expect(status.lastError).toBe('HTTP 500');
    expect(dead.requests).toBe(total * 10);
    await withQueue(dead.url, async (queue) => {
      // A job per run of events (a persist batch's): the failed jobs hold every event, each
      // listed as undelivered in its job's progress (what Bull Board shows).
      const failed = await queue.getFailed(0, -1);
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.length).toBeLessThanOrEqual(total);
      const undelivered = failed.flatMap((j) => (j.progress as WebhookProgress).undelivered ?? []);
      expect(new Set(undelivered)).toEqual(new Set(ids(good)));
      expect(undelivered).toHaveLength(total);
      for (const j of failed) {
        expect(j.failedReason).toBe('HTTP 500');
        expect(j.attemptsMade).toBe(10);
        expect((j.data as WebhookJob).events.map((e) => e.id).sort()).toEqual(
          [...((j.progress as WebhookProgress).undelivered ?? [])].sort(),
        );
      }
    });
  });

  it('a retry re-sends only the events of its job the receiver did not acknowledge', async () => {
    const endpoint = webhookEndpoints(env.config).find((e) => e.url === flaky.url)!;
    const events: WebhookEvent[] = ['a', 'b', 'c'].map((k) => ({
      id: `member.added/retry-test/${k}/1`,
      type: 'member.added',
      createdAt: new Date().toISOString(),
      data: { chatId: 'retry-test', userId: k },
    }));
    flaky.failOnce.add(events[1]!.id);
    const before = (await admin()).get(flaky.url)!;
    await withQueue(flaky.url, async (queue) => {
      const job = await queue.add(
        'events',
        { endpointId: endpoint.id, url: endpoint.url, events } satisfies WebhookJob,
        { jobId: 'retry-test', attempts: 5, backoff: { type: 'capped-exponential', delay: 100 } },
      );
      await waitFor(async () => (await queue.getJobState(job.id!)) === 'completed', 'the job completed');
      const done = await queue.getJob(job.id!);
      expect(done?.attemptsMade).toBe(2); // one failed attempt, then the retry that completed it
    });
    expect(events.map((e) => flaky.requestsById.get(e.id))).toEqual([1, 2, 1]);
    expect(new Set(ids(flaky).filter((id) => id.includes('/retry-test/')))).toEqual(new Set(events.map((e) => e.id)));
    const after = (await admin()).get(flaky.url)!;
    expect(after.delivered - before.delivered).toBe(3);
    expect(after.failedAttempts - before.failedAttempts).toBe(1);
    expect(after.failed).toBe(before.failed);
  });

  it('is refused without the admin token, and never shows the secret', async () => {
    expect((await http.request('GET', '/admin/webhooks')).status).toBe(401);
    const r = await http.request('GET', '/admin/webhooks', undefined, ADMIN);
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
    expect(worker.output()).not.toContain(SECRET);
  });
});
