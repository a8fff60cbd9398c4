import { describe, expect, it } from 'vitest';
import { freshMessage } from '../../src/domain/types.js';
import type { Message } from '../../src/domain/types.js';
import { createLogger } from '../../src/logger.js';
import { encodeMessage } from '../../src/message-log/message-log.js';
import { createRecentAcks } from '../../src/services/recent-acks.js';

const message = (seq: number): Message => ({
  id: `id-${seq}`,
  chatId: 'c',
  seq,
  senderId: 's',
  body: `m${seq}`,
  clientMsgId: null,
  createdAt: new Date(0).toISOString(),
  ...freshMessage(),
  rev: seq,
});

describe('recent acks', () => {
  it('keeps what was acked within the retention, at most max, and replays it in batches', async () => {
    let t = 0;
    const written: number[][] = [];
    const updated: number[][] = [];
    const recent = createRecentAcks({
      retentionMs: 1000,
      max: 5,
      batchSize: 2,
      now: () => t,
      logger: createLogger('silent', 'test'),
      insertBatch: async (batch) => {
        written.push(batch.map((m) => m.seq));
        return { inserted: batch.length, superseded: [] };
      },
      updateChanges: async (batch) => {
        updated.push(batch.map((m) => m.seq));
        return batch.length;
      },
    });
    for (let seq = 1; seq <= 4; seq++) recent.add(encodeMessage(message(seq)));
    t = 600;
    for (let seq = 5; seq <= 7; seq++) recent.add(encodeMessage(message(seq)));
    // Over max: the oldest went first.
    expect(recent.size).toBe(5);
    t = 1200;
    // Past the retention: 1..4 (acked at 0) are gone, 5..7 (at 600) stay.
    expect(recent.size).toBe(3);
    expect(await recent.replay()).toBe(3);
    expect(written).toEqual([[5, 6], [7]]);
    // Then each one's latest acked state, in the same batches (a change outranks its message's insert).
    expect(updated).toEqual([[5, 6], [7]]);
  });
});
