import { describe, expect, it } from 'vitest';
import { createMemberVersions } from '../../src/realtime/member-versions.js';

describe('member versions', () => {
  it("applies a pair's newer change once, and no older one, in whatever order the copies come", () => {
    const versions = createMemberVersions({ ttlMs: 1000, maxPairs: 100, now: () => 0 });
    // The addition (v1) from the chat's channel, then the removal (v2) from the shared one...
    expect(versions.newer('chat', 'u', 1)).toBe(true);
    expect(versions.newer('chat', 'u', 2)).toBe(true);
    // ...then their other copies: neither applies again.
    expect(versions.newer('chat', 'u', 1)).toBe(false);
    expect(versions.newer('chat', 'u', 2)).toBe(false);
    // Another user, another chat: their own counters.
    expect(versions.newer('chat', 'w', 1)).toBe(true);
    expect(versions.newer('other', 'u', 1)).toBe(true);
    expect(versions.pairs).toBe(3);
  });

  it('forgets a pair ttlMs after its last change', () => {
    let t = 0;
    const versions = createMemberVersions({ ttlMs: 1000, maxPairs: 100, now: () => t });
    versions.newer('chat', 'old', 5);
    t = 600;
    versions.newer('chat', 'new', 5);
    t = 1000;
    expect(versions.pairs).toBe(1);
    // A copy later than that applies again: the pair is new to it.
    expect(versions.newer('chat', 'old', 5)).toBe(true);
    expect(versions.newer('chat', 'new', 5)).toBe(false);
  });

  it('keeps at most maxPairs, forgetting the least recently changed', () => {
    const versions = createMemberVersions({ ttlMs: 1000, maxPairs: 2, now: () => 0 });
    versions.newer('chat', 'a', 1);
    versions.newer('chat', 'b', 1);
    versions.newer('chat', 'a', 2);
    versions.newer('chat', 'c', 1);
    expect(versions.pairs).toBe(2);
    expect(versions.newer('chat', 'a', 2)).toBe(false);
    expect(versions.newer('chat', 'b', 1)).toBe(true);
  });
});
