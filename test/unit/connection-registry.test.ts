import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/domain/connection.js';
import { type ConnectionRegistry, createConnectionRegistry } from '../../src/realtime/connection-registry.js';

/** A connection that records the frames written to it. */
function socketOf(registry: ConnectionRegistry, userId: string, id: string): Connection & { got: string[] } {
  const got: string[] = [];
  const conn = registry.attach({ id, userId, send: (frame) => void got.push(frame), close: () => undefined });
  return Object.assign(conn, { got });
}

async function open(registry: ConnectionRegistry, userId: string, chatIds: string[], id: string) {
  await registry.begin(userId, async () => chatIds);
  return socketOf(registry, userId, id);
}

/** A promise the test resolves by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const chatIds = (n: number) => Array.from({ length: n }, (_, i) => `chat-${String(i).padStart(5, '0')}`);

describe('connection registry', () => {
  it("holds a user's chats once, however many sockets the user opens", async () => {
    const registry = createConnectionRegistry();
    const chats = chatIds(2000);
    // A user's second and later sockets share the set: their chats are read once.
    let reads = 0;
    const load = async () => (reads++, chats);
    const before = process.memoryUsage().heapUsed;
    const conns: Connection[] = [];
    for (let i = 0; i < 500; i++) {
      await registry.begin('u', load);
      conns.push(registry.attach({ id: `c${i}`, userId: 'u', send: () => undefined, close: () => undefined }));
    }
    const grown = process.memoryUsage().heapUsed - before;
    expect(reads).toBe(1);
    expect(new Set(conns.map((c) => c.chats)).size).toBe(1);
    expect(conns[0]!.chats.size).toBe(2000);
    // A set per socket would hold 1,000,000 entries (over 40 MB); one per user holds 2,000.
    expect(grown).toBeLessThan(16 * 2 ** 20);
    expect(registry.toChat('chat-00042', '{"type":"x"}')).toBe(500);
    expect(registry.size).toBe(500);
  });

  it('writes a frame to every connection of every member, except the author when asked, and once across chats', async () => {
    const registry = createConnectionRegistry();
    const a1 = await open(registry, 'a', ['x', 'y'], 'a1');
    const a2 = await open(registry, 'a', [], 'a2');
    const b1 = await open(registry, 'b', ['x'], 'b1');
    const c1 = await open(registry, 'c', ['y'], 'c1');
    expect(a2.chats).toBe(a1.chats);

    expect(registry.toChat('x', 'm1')).toBe(3);
    expect(registry.toChat('x', 't1', 'a')).toBe(1);
    expect(registry.toMembersOf(['x', 'y'], 'p1', 'b')).toBe(3);
    expect(registry.toUsers(['b', 'c', 'nobody'], 's1')).toBe(2);
    expect(a1.got).toEqual(['m1', 'p1']);
    expect(a2.got).toEqual(['m1', 'p1']);
    expect(b1.got).toEqual(['m1', 't1', 's1']);
    expect(c1.got).toEqual(['p1', 's1']);

    registry.applyMembership('x', ['b'], 'removed');
    registry.applyMembership('y', ['b'], 'added');
    expect(b1.chats.has('x')).toBe(false);
    expect(registry.toChat('x', 'm2')).toBe(2);
    expect(registry.toChat('y', 'm3')).toBe(4);

    registry.remove(a1);
    registry.remove(a2);
    expect(registry.toChat('x', 'm4')).toBe(0);
    expect(registry.connectionsOf('a').size).toBe(0);
    expect(registry.userIds().sort()).toEqual(['b', 'c']);
  });

  it('applies membership changes that arrive while the first socket of a user has its chats read', async () => {
    const registry = createConnectionRegistry();
    const read = deferred<string[]>();
    const opening = registry.begin('u', () => read.promise);
    // Published after the read saw the user in x and y, received before the socket is registered.
    registry.applyMembership('x', ['u'], 'removed');
    registry.applyMembership('z', ['u'], 'added');
    read.resolve(['x', 'y']);
    await opening;
    const conn = socketOf(registry, 'u', 'u1');
    expect([...conn.chats].sort()).toEqual(['y', 'z']);
    expect(registry.toChat('x', 'm')).toBe(0);
    expect(registry.toChat('z', 'm')).toBe(1);
  });

  it('applies a fresh read to every user, those still having their chats read included', async () => {
    const registry = createConnectionRegistry();
    const a = await open(registry, 'a', ['x', 'y'], 'a1');
    const read = deferred<string[]>();
    const opening = registry.begin('b', () => read.promise);
    registry.replaceChats(['a', 'b'], new Map([['a', ['y', 'z']]]));
    read.resolve(['x']);
    await opening;
    const b = socketOf(registry, 'b', 'b1');
    expect([...a.chats].sort()).toEqual(['y', 'z']);
    expect(b.chats.size).toBe(0);
    expect(registry.toChat('x', 'm')).toBe(0);
  });

  it('forgets a user whose upgrade was abandoned or whose chats could not be read, and reads them again next time', async () => {
    const registry = createConnectionRegistry();
    await expect(registry.begin('u', async () => Promise.reject(new Error('PostgreSQL away')))).rejects.toThrow(
      'PostgreSQL away',
    );
    expect(registry.userIds()).toEqual([]);
    await registry.begin('u', async () => ['x']);
    registry.abandon('u');
    expect(registry.userIds()).toEqual([]);
    const conn = await open(registry, 'u', ['y'], 'u1');
    expect([...conn.chats]).toEqual(['y']);
  });
});
