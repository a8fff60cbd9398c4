import { describe, expect, it } from 'vitest';
import { createTokenBucket } from '../../src/services/token-bucket.js';
import { isExpendable, verdict } from '../../src/ws/backpressure.js';
import { clientMsgIdOf, createFrameGuard } from '../../src/ws/frame-guard.js';

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('token bucket', () => {
  it('allows a burst, then refuses with the wait until the next token, then refills at the rate', () => {
    const c = clock();
    const bucket = createTokenBucket({ capacity: 3, perSecond: 2 }, c.now);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0]);
    expect(bucket.take()).toBe(500); // one token every 500 ms
    c.advance(499);
    expect(bucket.take()).toBe(1);
    c.advance(1);
    expect(bucket.take()).toBe(0);
    c.advance(60_000);
    expect(bucket.isFull()).toBe(true); // never above capacity
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0, 500]);
  });
});

describe('frame guard', () => {
  it('refuses frames past the burst and closes a flood only after the tolerated refusals', () => {
    const c = clock();
    const guard = createFrameGuard(
      { frames: { capacity: 2, perSecond: 1 }, floodMaxRefused: 3, floodWindowMs: 10_000 },
      c.now,
    );
    expect([guard.admit(), guard.admit()]).toEqual([0, 0]);
    expect(guard.admit()).toBeGreaterThan(0);
    expect([guard.refused(), guard.refused(), guard.refused()]).toEqual([false, false, false]);
    expect(guard.refused()).toBe(true);
  });

  it('forgets refusals after the window, so an occasional burst is never closed', () => {
    const c = clock();
    const guard = createFrameGuard(
      { frames: { capacity: 1, perSecond: 1 }, floodMaxRefused: 2, floodWindowMs: 1000 },
      c.now,
    );
    for (let i = 0; i < 5; i++) {
      expect([guard.refused(), guard.refused()]).toEqual([false, false]);
      c.advance(1001);
    }
  });

  it('is off with a zero rate', () => {
    const guard = createFrameGuard({ frames: { capacity: 0, perSecond: 0 }, floodMaxRefused: 0, floodWindowMs: 1000 });
    for (let i = 0; i < 1000; i++) expect(guard.admit()).toBe(0);
  });

  it('names the clientMsgId of a refused send only when it is a valid one', () => {
    expect(clientMsgIdOf('{"type":"send","clientMsgId":"abc-1"}')).toBe('abc-1');
    expect(clientMsgIdOf('{"type":"send","clientMsgId":"has space"}')).toBeNull();
    expect(clientMsgIdOf('{"type":"send","clientMsgId":12}')).toBeNull();
    expect(clientMsgIdOf('{"clientMsgId":')).toBeNull();
    expect(clientMsgIdOf('{"type":"ping"}')).toBeNull();
  });
});

describe('backpressure', () => {
  const limits = { softBytes: 1000, maxBytes: 5000 };
  const typing = JSON.stringify({ type: 'typing', chatId: 'c', userId: 'u' });
  const presence = JSON.stringify({ type: 'presence', userId: 'u', status: 'online', lastSeenAt: null });
  const message = '{"type":"message","message":{}}';

  it('knows which frames a client can miss', () => {
    expect(isExpendable(typing)).toBe(true);
    expect(isExpendable(presence)).toBe(true);
    expect(isExpendable(message)).toBe(false);
    expect(isExpendable('{"type":"ack","clientMsgId":"x"}')).toBe(false);
  });

  it('sends everything below the soft limit, drops typing and presence above it, closes at the max', () => {
    for (const f of [typing, presence, message]) expect(verdict(999, f, limits)).toBe('send');
    expect(verdict(1000, typing, limits)).toBe('drop');
    expect(verdict(4999, presence, limits)).toBe('drop');
    expect(verdict(4999, message, limits)).toBe('send');
    for (const f of [typing, presence, message]) expect(verdict(5000, f, limits)).toBe('close');
  });
});
