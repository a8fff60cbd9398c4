import { describe, expect, it } from 'vitest';
import { createConnectionRegistry } from '../../src/realtime/connection-registry.js';
import { createServedOnce } from '../../src/realtime/served-once.js';

describe('served once', () => {
  it('says yes once per change and user, and keeps changes apart', () => {
    const served = createServedOnce({ ttlMs: 1000, maxPairs: 100, now: () => 0 });
    expect(served.first('c1', 'a')).toBe(true);
    expect(served.first('c1', 'a')).toBe(false);
    expect(served.first('c1', 'b')).toBe(true);
    // The next transition of the same user is another change: everyone gets it again.
    expect(served.first('c2', 'a')).toBe(true);
    expect(served.first('c2', 'b')).toBe(true);
    expect(served.first('c2', 'b')).toBe(false);
    expect([served.changes, served.pairs]).toEqual([2, 4]);
  });

  it('forgets a change ttlMs after its first copy, however often it is asked about meanwhile', () => {
    let t = 0;
    const served = createServedOnce({ ttlMs: 1000, maxPairs: 100, now: () => t });
    served.first('old', 'a');
    t = 600;
    served.first('new', 'a');
    expect(served.first('old', 'b')).toBe(true);
    expect(served.first('old', 'a')).toBe(false);
    t = 1000;
    // 'old' came at 0: gone at 1000 with both its pairs; 'new' (at 600) stays.
    expect([served.changes, served.pairs]).toEqual([1, 1]);
    expect(served.first('new', 'a')).toBe(false);
    // A copy later than that is written again (a duplicate, never a loss), and remembered afresh.
    expect(served.first('old', 'a')).toBe(true);
    expect(served.first('old', 'a')).toBe(false);
    t = 1600;
    expect([served.changes, served.pairs]).toEqual([1, 1]);
    t = 2000;
    expect([served.changes, served.pairs]).toEqual([0, 0]);
  });

  it('holds at most maxPairs pairs, dropping the oldest changes first, but never the newest one', () => {
    const served = createServedOnce({ ttlMs: 60_000, maxPairs: 10, now: () => 0 });
    for (let c = 0; c < 1000; c++) {
      for (let u = 0; u < 3; u++) expect(served.first(`c${c}`, `u${u}`)).toBe(true);
      expect(served.pairs).toBeLessThanOrEqual(10);
    }
    // 3 pairs a change: the newest three changes fit, the older ones went.
    expect([served.changes, served.pairs]).toEqual([3, 9]);
    expect(served.first('c999', 'u0')).toBe(false);
    expect(served.first('c997', 'u2')).toBe(false);
    expect(served.first('c996', 'u0')).toBe(true);

    // One change reaching more users than the bound stays whole while it is the newest...
    const wide = createServedOnce({ ttlMs: 60_000, maxPairs: 10, now: () => 0 });
    wide.first('before', 'x');
    for (let u = 0; u < 50; u++) expect(wide.first('wide', `u${u}`)).toBe(true);
    expect([wide.changes, wide.pairs]).toEqual([1, 50]);
    for (let u = 0; u < 50; u++) expect(wide.first('wide', `u${u}`)).toBe(false);
    // ...and goes once a newer one comes.
    wide.first('next', 'u0');
    expect([wide.changes, wide.pairs]).toEqual([1, 1]);
  });

  it("keeps the registry's writes of a change's copies on several chats to one per member connection", async () => {
    const registry = createConnectionRegistry();
    const got = new Map<string, string[]>();
    const open = async (userId: string, chats: string[], id: string) => {
      await registry.begin(userId, async () => chats);
      got.set(id, []);
      registry.attach({ id, userId, send: (f) => void got.get(id)?.push(f), close: () => undefined });
    };
    // u's transition goes to x, y and z; v shares all three (two sockets), w shares y and z, u itself all.
    await open('v', ['x', 'y', 'z'], 'v1');
    await open('v', [], 'v2');
    await open('w', ['y', 'z'], 'w1');
    await open('u', ['x', 'y', 'z'], 'u1');
    await open('o', ['other'], 'o1');
    const served = createServedOnce({ ttlMs: 1000, maxPairs: 100 });
    const copy = (chatId: string, changeId: string) =>
      registry.toMembersOf([chatId], `p-${changeId}`, 'u', (member) => served.first(changeId, member));
    expect([copy('x', 'on'), copy('y', 'on'), copy('z', 'on')]).toEqual([2, 1, 0]);
    expect([copy('z', 'off'), copy('x', 'off'), copy('y', 'off')]).toEqual([3, 0, 0]);
    expect(Object.fromEntries(got)).toEqual({
      v1: ['p-on', 'p-off'],
      v2: ['p-on', 'p-off'],
      w1: ['p-on', 'p-off'],
      u1: [],
      o1: [],
    });
  });
});
