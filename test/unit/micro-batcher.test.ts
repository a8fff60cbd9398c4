import { describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../workers/micro-batcher.js';

describe('MicroBatcher', () => {
  it('flushes as soon as a batch is full, in one call', async () => {
    const batches: number[][] = [];
    const b = new MicroBatcher<number>(async (items) => void batches.push(items), 3, 60_000);
    await Promise.all([b.add(1), b.add(2), b.add(3)]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('flushes a partial batch after the wait', async () => {
    const batches: number[][] = [];
    const b = new MicroBatcher<number>(async (items) => void batches.push(items), 100, 5);
    await Promise.all([b.add(1), b.add(2)]);
    expect(batches).toEqual([[1, 2]]);
  });

  it('rejects every parked item when the flush fails, and recovers for the next batch', async () => {
    let fail = true;
    const b = new MicroBatcher<number>(
      async () => {
        if (fail) throw new Error('db down');
      },
      2,
      5,
    );
    const results = await Promise.allSettled([b.add(1), b.add(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(b.add(3)).resolves.toBeUndefined();
  });

  it('drain waits for batches under way', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new MicroBatcher<number>(() => gate, 10, 60_000);
    let settled = false;
    void b.add(1).then(() => (settled = true));
    const drained = b.drain();
    await Promise.resolve();
    expect(settled).toBe(false);
    release();
    await drained;
    expect(settled).toBe(true);
  });
});
