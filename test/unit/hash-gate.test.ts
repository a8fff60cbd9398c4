import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.js';
import { createHashGate } from '../../src/services/hash-gate.js';

/** A hash the test finishes by hand. */
function pending() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { done, finish };
}

describe('password hash gate', () => {
  it('runs at most `concurrency` at once, queues up to `queueMax` in order per key, and refuses the rest at once', async () => {
    const gate = createHashGate({ concurrency: 2, queueMax: 3 });
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const hashes = Array.from({ length: 5 }, pending);
    const runs = hashes.map((h, i) =>
      gate.run('k', async () => {
        started.push(i);
        most = Math.max(most, ++inFlight);
        await h.done;
        inFlight--;
        return i;
      }),
    );
    await expect(gate.run('k', async () => -1)).rejects.toMatchObject({
      code: 'unavailable',
      details: { retryAfterMs: 1000 },
    });
    await expect(gate.run('other', async () => -1)).rejects.toBeInstanceOf(AppError);
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect(gate.stats()).toMatchObject({ active: 2, waiting: 3, refused: 2 });

    for (const h of hashes) h.finish();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
    expect(gate.stats()).toEqual({ active: 0, waiting: 0, activeMax: 2, refused: 2 });
  });

  it('frees the slot of a hash that failed', async () => {
    const gate = createHashGate({ concurrency: 1, queueMax: 0 });
    await expect(gate.run('k', () => Promise.reject(new Error('scrypt failed')))).rejects.toThrow('scrypt failed');
    expect(await gate.run('k', async () => 'next')).toBe('next');
    expect(gate.stats().active).toBe(0);
  });

  it('serves waiting keys in turn, so a flood aimed at one key does not hold up another', async () => {
    const gate = createHashGate({ concurrency: 1, queueMax: 10 });
    const order: string[] = [];
    const step = (name: string) => async () => {
      order.push(name);
      await Promise.resolve();
    };
    const flood = Array.from({ length: 4 }, (_, i) => gate.run('victim', step(`flood${i}`)));
    const real = gate.run('someone', step('real'));
    const more = gate.run('victim', step('flood4'));
    await Promise.all([...flood, real, more]);
    expect(order).toEqual(['flood0', 'flood1', 'real', 'flood2', 'flood3', 'flood4']);
  });
});
