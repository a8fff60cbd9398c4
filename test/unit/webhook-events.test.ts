import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/domain/types.js';
import { endpointId, eventRuns, redactedUrl, webhookEndpoints } from '../../src/webhooks/endpoints.js';
import {
  eventIds,
  memberEvents,
  messageCreated,
  messageUpdated,
  signatureHeader,
  verifySignature,
} from '../../src/webhooks/events.js';

const message = (over: Partial<Message> = {}): Message => ({
  id: 'm1',
  chatId: '3f1c2a4e-0000-4000-8000-000000000001',
  seq: 7,
  senderId: 'u1',
  body: 'hi',
  clientMsgId: null,
  createdAt: '2024-01-01T00:00:00.000Z',
  replyTo: null,
  editedAt: null,
  deletedAt: null,
  reactions: [],
  rev: 7,
  ...over,
});

describe('webhook signatures', () => {
  const secret = 'a-webhook-secret-of-some-length';
  const body = JSON.stringify({ id: 'x', type: 'message.created', createdAt: 'now', data: {} });

  it('signs "<t>.<raw body>" with HMAC-SHA256, hex, at the given second', () => {
    const header = signatureHeader(secret, body, 1_700_000_000_999);
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(header).toBe(`t=1700000000,v1=${expected}`);
  });

  it('verifies its own signature and refuses a tampered body, another secret, a missing or garbled header', () => {
    const header = signatureHeader(secret, body);
    expect(verifySignature(secret, header, body)).toBe(true);
    expect(verifySignature(secret, header, body.replace('created', 'updated'))).toBe(false);
    expect(verifySignature('another-secret-entirely', header, body)).toBe(false);
    expect(verifySignature(secret, undefined, body)).toBe(false);
    expect(verifySignature(secret, 'v1=abc', body)).toBe(false);
    expect(verifySignature(secret, header.replace(/t=\d+/, 't=1'), body)).toBe(false);
  });

  it('refuses a timestamp outside the tolerance', () => {
    const header = signatureHeader(secret, body, 1_000_000_000);
    expect(verifySignature(secret, header, body, { toleranceS: 300, nowMs: 1_000_100_000 })).toBe(true);
    expect(verifySignature(secret, header, body, { toleranceS: 300, nowMs: 1_001_000_000 })).toBe(false);
  });
});

describe('webhook event ids', () => {
  it('are derived from what the event is about: the same message gives the same id, a new rev a new one', () => {
    const m = message();
    expect(messageCreated(m).id).toBe(messageCreated({ ...m, body: 'edited', rev: 9 }).id);
    expect(messageCreated(m).id).toBe(eventIds.messageCreated(m.chatId, 7));
    expect(messageCreated(message({ seq: 8 })).id).not.toBe(messageCreated(m).id);
    expect(messageUpdated({ ...m, rev: 9 }).id).toBe(messageUpdated({ ...m, rev: 9, body: 'x' }).id);
    expect(messageUpdated({ ...m, rev: 9 }).id).not.toBe(messageUpdated({ ...m, rev: 10 }).id);
    expect(messageUpdated(m).id).not.toBe(messageCreated(m).id);
  });

  it('hold no ":" (BullMQ refuses it in a job id) and carry the type', () => {
    const m = message();
    const events = [
      messageCreated(m),
      messageUpdated(m),
      ...memberEvents({ chatId: m.chatId, userIds: ['a', 'b'], change: 'added' }, 'c1'),
    ];
    for (const e of events) {
      expect(e.id).not.toContain(':');
      expect(e.id.startsWith(`${e.type}/`)).toBe(true);
    }
  });

  it('give one member event per user of a change, same ids for the same change id', () => {
    const change = { chatId: 'c', userIds: ['a', 'b'], change: 'removed' as const };
    const [a, b] = memberEvents(change, 'k');
    expect(a).toMatchObject({ type: 'member.removed', data: { chatId: 'c', userId: 'a' } });
    expect(b?.data.userId).toBe('b');
    expect(memberEvents(change, 'k').map((e) => e.id)).toEqual([a?.id, b?.id]);
    expect(memberEvents(change, 'other')[0]?.id).not.toBe(a?.id);
  });
});

describe('webhook endpoints', () => {
  it('name each receiver by a hash of its URL, a queue and hash tag of its own, whatever the order', () => {
    const urls = ['http://a.example/hook', 'https://b.example/x'];
    const one = webhookEndpoints({ WEBHOOK_URLS: urls, QUEUE_PREFIX: '{parley}' });
    const other = webhookEndpoints({ WEBHOOK_URLS: [...urls].reverse(), QUEUE_PREFIX: '{parley}' });
    expect(one.map((e) => e.id).sort()).toEqual(other.map((e) => e.id).sort());
    expect(one[0]).toEqual({
      id: endpointId(urls[0]!),
      url: urls[0],
      queue: { name: `webhooks-${endpointId(urls[0]!)}`, prefix: `{parley-webhooks-${endpointId(urls[0]!)}}` },
    });
  });

  it('show a URL without its credentials or query', () => {
    expect(redactedUrl('https://user:pw@h.example:8443/p/q?token=s#f')).toBe('https://h.example:8443/p/q');
  });
});

describe('webhook event runs (one job per receiver per run)', () => {
  const events = (n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => messageCreated(message({ seq: from + i + 1 })));

  it('keep a batch of up to the maximum in one run, in order', () => {
    const batch = events(500);
    const runs = eventRuns(batch, 500);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.events).toEqual(batch);
    expect(eventRuns([], 500)).toEqual([]);
  });

  it('split beyond the maximum into runs of at most it, every event once and in order', () => {
    const batch = events(1201);
    const runs = eventRuns(batch, 500);
    expect(runs.map((r) => r.events.length)).toEqual([500, 500, 201]);
    expect(runs.flatMap((r) => r.events)).toEqual(batch);
    expect(new Set(runs.map((r) => r.jobId)).size).toBe(3);
    expect(eventRuns(events(3), 1).map((r) => r.events.length)).toEqual([1, 1, 1]);
    expect(eventRuns(events(3), 0).map((r) => r.events.length)).toEqual([1, 1, 1]);
  });

  it('give the same run the same job id, and a different run (one event more, other events) another', () => {
    const batch = events(10);
    const [run] = eventRuns(batch);
    const again = eventRuns(events(10).map((e) => ({ ...e, createdAt: '2030-01-01T00:00:00.000Z' })));
    expect(again[0]?.jobId).toBe(run?.jobId);
    expect(eventRuns(events(11))[0]?.jobId).not.toBe(run?.jobId);
    expect(eventRuns(events(10, 1))[0]?.jobId).not.toBe(run?.jobId);
    // BullMQ refuses ':' and integer-looking ids.
    expect(run?.jobId).toMatch(/^b-[0-9a-f]{24}$/);
  });
});
