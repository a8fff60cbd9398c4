import { describe, expect, it } from 'vitest';
import { AppError, isUnavailableError, toAppError } from '../../src/domain/errors.js';
import { createSchemas } from '../../src/domain/schemas.js';
import { freshMessage } from '../../src/domain/types.js';
import type { Message } from '../../src/domain/types.js';
import { cappedExponentialDelay } from '../../src/queues/definitions.js';
import { createKeys } from '../../src/redis/keys.js';
import { mergeBySeq } from '../../src/services/history-service.js';
import { hashPassword, verifyPassword } from '../../src/services/passwords.js';

const msg = (seq: number, body = `m${seq}`): Message => ({
  id: `id-${seq}`,
  chatId: 'c',
  seq,
  senderId: 's',
  body,
  clientMsgId: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  ...freshMessage(),
  rev: seq,
});

describe('keys', () => {
  it('hash-tags every key of a chat with its id, after the prefix', () => {
    const keys = createKeys('p:');
    expect(keys.active('abc')).toBe('p:chat:{abc}:messages:active');
    expect(keys.presence('u1')).toBe('p:presence:{u1}');
    for (const k of [keys.seq('abc'), keys.pending('abc'), keys.members('abc'), keys.idempotency('abc', 'u', 'x{y}')]) {
      expect(k.match(/\{([^}]*)\}/)?.[1]).toBe('abc');
    }
  });
});

describe('mergeBySeq', () => {
  it('unions two ascending lists without duplicates, preferring the first', () => {
    const merged = mergeBySeq([msg(3, 'redis'), msg(4)], [msg(1), msg(2), msg(3, 'pg')]);
    expect(merged.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(merged[2]!.body).toBe('redis');
  });
});

describe('persistence backoff', () => {
  it('doubles from the base and is capped', () => {
    expect(cappedExponentialDelay(1, 500, 10_000)).toBe(500);
    expect(cappedExponentialDelay(2, 500, 10_000)).toBe(1000);
    expect(cappedExponentialDelay(5, 500, 10_000)).toBe(8000);
    expect(cappedExponentialDelay(6, 500, 10_000)).toBe(10_000);
    expect(cappedExponentialDelay(1000, 500, 10_000)).toBe(10_000);
  });
});

describe('passwords', () => {
  it('verifies the right password only', async () => {
    const stored = await hashPassword('s3cret-pass', 1024);
    expect(stored).not.toContain('s3cret-pass');
    expect(await verifyPassword('s3cret-pass', stored)).toBe(true);
    expect(await verifyPassword('s3cret-pasS', stored)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
});

describe('errors', () => {
  it('maps dependency outages to unavailable and hides unknown errors', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(isUnavailableError(refused)).toBe(true);
    expect(toAppError(refused).code).toBe('unavailable');
    const bug = toAppError(new TypeError('secret internals'));
    expect(bug.code).toBe('internal');
    expect(bug.message).not.toContain('secret');
    expect(toAppError(new AppError('forbidden', 'no')).status).toBe(403);
  });
});

describe('schemas', () => {
  const schemas = createSchemas({ messageMaxChars: 10, chatMaxMembers: 3 });
  const chatId = '3f1c2a4e-8b1d-4c6e-9f00-112233445566';

  it('accepts a well-formed send frame and refuses bodies that PostgreSQL could not store', () => {
    expect(schemas.frame.safeParse({ type: 'send', chatId, body: 'hi', clientMsgId: 'a1' }).success).toBe(true);
    for (const body of ['', '   ', 'x'.repeat(11), 'a\u0000b', 'a\ud800b']) {
      expect(schemas.frame.safeParse({ type: 'send', chatId, body, clientMsgId: 'a1' }).success).toBe(false);
    }
    expect(schemas.frame.safeParse({ type: 'send', chatId: 'nope', body: 'hi', clientMsgId: 'a1' }).success).toBe(
      false,
    );
    expect(schemas.frame.safeParse({ type: 'send', chatId, body: 'hi' }).success).toBe(false);
  });

  it('bounds history queries', () => {
    expect(schemas.historyQuery.parse({})).toEqual({ limit: 50 });
    expect(schemas.historyQuery.safeParse({ limit: '201' }).success).toBe(false);
    expect(schemas.historyQuery.safeParse({ limit: '0' }).success).toBe(false);
    expect(schemas.historyQuery.safeParse({ before: '5', after: '2' }).success).toBe(false);
    expect(schemas.historyQuery.parse({ before: '5', limit: '2' })).toEqual({ before: 5, limit: 2 });
  });

  it('caps members per chat', () => {
    const ids = ['a', 'b', 'c'].map((x) => `3f1c2a4e-8b1d-4c6e-9f00-11223344556${x}`);
    expect(schemas.createChatBody.safeParse({ memberIds: ids.slice(0, 2) }).success).toBe(true);
    expect(schemas.createChatBody.safeParse({ memberIds: ids }).success).toBe(false);
  });
});
