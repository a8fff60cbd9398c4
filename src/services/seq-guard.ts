import { randomUUID } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { MessageLog } from '../message-log/message-log.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { DirectMessageStore } from '../stores/direct-message-store.js';

export interface SeqGuardDeps {
  /** For the generation key. */
  redis: Pick<RedisClient, 'get' | 'set'>;
  keys: Pick<Keys, 'generation'>;
  log: Pick<MessageLog, 'seedSeq' | 'raiseSeq' | 'restoreIdempotency' | 'refreshCopies'>;
  direct: DirectMessageStore;
  /** How far above PostgreSQL's newest seq a counter jumps when Redis may have issued more. */
  seqGap: number;
  logger: Logger;
  /**
   * Called once this process finds that Redis lost its data since it last looked (the generation
   * key is gone or was set anew): the api writes its recently acked messages to PostgreSQL.
   */
  onDataLoss?: () => Promise<void>;
}

/**
 * Keeps the seq rule of docs/protocol.md across Redis outages and data loss: seqs are unique, only
 * grow, and are never issued twice.
 * - A missing counter is seeded from the highest seq PostgreSQL knows (persisted or allocated in
 *   degraded mode) and the active list's tail; if Redis lost its data (the generation key is gone),
 *   every chat's next seed jumps a gap, because the lost counter may have issued unpersisted seqs.
 * - After degraded mode, each counter that still exists is raised past what PostgreSQL allocated,
 *   the degraded messages' clientMsgIds are written back so retries stay idempotent, and the
 *   copies Redis holds of messages changed meanwhile are replaced by PostgreSQL's.
 */
export function createSeqGuard(deps: SeqGuardDeps) {
  const { redis, keys, log, direct } = deps;

  /** The generation this process last saw (null before its first look). */
  let known: string | null = null;

  /** Detects a Redis that lost its data; marks every chat for a gapped re-seed before going on. */
  async function ensureGeneration(): Promise<void> {
    let current = await redis.get(keys.generation());
    if (current === null) {
      // Flags first, key second: no seed can run without the gap while the key is absent.
      const marked = await direct.markAllForReseedGap();
      await redis.set(keys.generation(), `${new Date().toISOString()} ${randomUUID()}`, 'NX');
      current = await redis.get(keys.generation());
      if (marked > 0) deps.logger.warn({ chats: marked }, 'redis lost its data: counters will re-seed above a gap');
    }
    // Another process may have set the new generation first: a change is a loss all the same.
    // `known` moves only once the loss is handled, so a failed replay is tried at the next look.
    if (known !== null && current !== known) await deps.onDataLoss?.();
    known = current;
  }

  return {
    ensureGeneration,

    /** Seeds the chat's missing counter; `not_found` when the chat does not exist. */
    async seed(chatId: string): Promise<void> {
      await ensureGeneration();
      const floor = await direct.seedFloor(chatId);
      if (!floor) throw new AppError('not_found', 'no such chat');
      const gap = floor.gap ? deps.seqGap : 0;
      const value = floor.top + gap;
      const seeded = await log.seedSeq(chatId, { seq: value, rev: floor.topRev + gap });
      if (floor.gap && seeded >= value) await direct.clearReseedGap(chatId);
    },

    /** Recovery step after degraded mode: raise counters, restore idempotency keys, close runs. */
    async closeDegradedRuns(opts: { afterOutage?: boolean } = {}): Promise<number> {
      // Back after an outage, first: a process still degraded opens no new run for a moment
      // (direct-message-store.ts). Not at startup, where no process is degraded on account of it.
      if (opts.afterOutage) await direct.markRedisBack();
      const open = await direct.openDegraded();
      for (const chatId of open) {
        await direct.closeDegraded(chatId, async ({ degradedSeq, degradedRev, messages, changed }) => {
          await log.raiseSeq(chatId, { seq: degradedSeq, rev: degradedRev });
          // Redis's copies of messages changed meanwhile are older: the changes must not be lost
          // to a later change computed from them.
          await log.refreshCopies(chatId, changed);
          await log.restoreIdempotency(messages);
        });
      }
      if (open.length > 0) deps.logger.info({ chats: open.length }, 'degraded runs closed');
      return open.length;
    },
  };
}

export type SeqGuard = ReturnType<typeof createSeqGuard>;
