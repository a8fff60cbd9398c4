import { describe, expect, it } from 'vitest';
import { type BatchOutcome, PersistLoop } from '../../workers/persist-loop.js';

/** A loop whose batches the test answers by hand. */
function loop(holdMs = 1000, idleMs = 0) {
  const batches: {
    chatIds: string[];
    letGo: ReadonlySet<string>;
    answer: (o: Partial<BatchOutcome> | Error) => void;
  }[] = [];
  const handedOn: string[][] = [];
  let t = 0;
  const l = new PersistLoop({
    maxChats: 10,
    waitMs: 0,
    holdMs,
    idleMs,
    now: () => t,
    write: (chatIds, letGo) =>
      new Promise((resolve, reject) =>
        batches.push({
          chatIds,
          letGo,
          answer: (o) => (o instanceof Error ? reject(o) : resolve({ idle: [], more: [], backlog: [], ...o })),
        }),
      ),
    handOn: async (chatIds) => void handedOn.push(chatIds),
  });
  const next = async () => {
    for (let i = 0; i < 50 && batches.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
    return batches.shift()!;
  };
  return { l, next, handedOn, advance: (ms: number) => (t += ms) };
}

const settled = (p: Promise<void>) =>
  Promise.race([
    p.then(
      () => 'resolved',
      () => 'rejected',
    ),
    new Promise((r) => setTimeout(() => r('pending'), 5)),
  ]);

describe('the persist loop', () => {
  it('keeps a chat while its batches write messages and lets its job go once a batch finds nothing', async () => {
    const { l, next } = loop();
    const job = l.hold('a');
    (await next()).answer({ more: ['a'] });
    expect(await settled(job)).toBe('pending');
    const second = await next();
    expect(second.chatIds).toEqual(['a']);
    second.answer({ idle: ['a'] });
    expect(await settled(job)).toBe('resolved');
    expect(l.size).toBe(0);
  });

  it('keeps a quiet chat for idleMs before a read may let it go', async () => {
    const { l, next, advance } = loop(1000, 100);
    const job = l.hold('a');
    const first = await next();
    expect([...first.letGo]).toEqual([]);
    first.answer({ quiet: ['a'] });
    const second = await next();
    // Quiet since the first batch, for less than idleMs: still not one to let go.
    expect([...second.letGo]).toEqual([]);
    advance(100);
    second.answer({ quiet: ['a'] });
    const third = await next();
    expect([...third.letGo]).toEqual(['a']);
    third.answer({ idle: ['a'] });
    expect(await settled(job)).toBe('resolved');
  });

  it('keeps holding a chat whose new job arrived while the batch that let it go was running', async () => {
    const { l, next } = loop();
    const first = l.hold('a');
    const batch = await next();
    // The batch's read found nothing and released the ticket; an append then claimed it and added a job.
    const late = l.hold('a');
    batch.answer({ idle: ['a'] });
    expect(await settled(first)).toBe('resolved');
    expect(await settled(late)).toBe('pending');
    const again = await next();
    expect(again.chatIds).toEqual(['a']);
    again.answer({ idle: ['a'] });
    expect(await settled(late)).toBe('resolved');
  });

  it('hands a busy chat on past its hold, and fails the jobs of a batch that failed', async () => {
    const { l, next, handedOn, advance } = loop(100);
    const busy = l.hold('a');
    const other = l.hold('b');
    (await next()).answer({ more: ['a', 'b'] });
    const batch = await next();
    advance(150);
    batch.answer({ more: ['a'], idle: ['b'] });
    expect(await settled(other)).toBe('resolved');
    await new Promise((r) => setTimeout(r, 5));
    expect(handedOn).toEqual([['a']]);
    expect(await settled(busy)).toBe('resolved');

    const failing = l.hold('c');
    (await next()).answer(new Error('INSERT failed'));
    expect(await settled(failing)).toBe('rejected');
  });

  it('hands on every chat it holds when drained, and refuses jobs after', async () => {
    const { l, next, handedOn } = loop();
    const job = l.hold('a');
    (await next()).answer({ more: ['a'] });
    await new Promise((r) => setTimeout(r, 2));
    const drained = l.drain();
    // A batch may have started again before the drain: it is let finish.
    const pendingBatch = await next();
    pendingBatch?.answer({ more: ['a'] });
    await drained;
    expect(handedOn.flat()).toContain('a');
    expect(await settled(job)).toBe('resolved');
    await expect(l.hold('b')).rejects.toThrow('closing');
  });
});
