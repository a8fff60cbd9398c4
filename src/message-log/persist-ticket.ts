import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/client.js';
import type { LogKeys } from './keys.js';
import type { LogSettings } from './script-io.js';
import type { LogScripts } from './scripts.js';

/**
 * Where persist jobs go: one job per chat names "write this chat's pending messages" (it carries
 * no message data, so a lost or repeated job costs nothing but a lookup). Over BullMQ:
 * src/queues/persist-queue.ts, a `persist` job per chat with the persist job options.
 */
export interface PersistQueue {
  /** Adds one persist job per chat; rejects when the jobs could not be added. */
  add(chatIds: readonly string[]): Promise<void>;
}

/** A claim on a chat's persist ticket: its holder must add the chat's job, then settle the claim. */
export interface Claim {
  chatId: string;
  token: string;
}

/** A fresh claim token; `by` says who took it, for whoever reads Redis (a send's is `send-<message id>`). */
export const claimToken = (by: 'repair'): string => `${by}-${randomUUID()}`;

/**
 * The persist-ticket protocol: how one persist job stands for every message a chat accepts while
 * it waits, without a message ever being left with no way to PostgreSQL.
 *
 * - The ticket (`chat:{id}:persist-ticket`) is held while the chat's job is queued, running, or
 *   about to be added by whoever holds a claim on it.
 * - Append (append.lua): a message is appended and its seq added to the pending set; if the
 *   ticket is free the same step claims it (`claimMs`), and the caller enqueues. A held ticket
 *   means a job that has yet to read the pending set is on its way: nothing more to do.
 * - Enqueue (`enqueue` below, the one claim-enqueue-confirm sequence): add the job, then confirm
 *   the claim into a ticket (`ticketMs`). If the add fails the claim is released, so the next
 *   append claims again (a client's retry with its clientMsgId does too); if the claimer dies in
 *   between, the claim runs out after `claimMs` and the next append claims it.
 * - Read pending, write, mark persisted (read-pending.lua, mark-persisted.lua): a worker holds a
 *   chat while its job is active, batch after batch. Each batch reads the chat's lowest pending
 *   messages; if there are none, the same step releases the ticket and the job completes (an
 *   append after that finds the ticket free and claims it). Else it writes them, then removes
 *   their seqs, trims the list (never at or above the lowest pending seq) and renews the ticket:
 *   appends meanwhile ride on the same job. A chat busy for long is handed on (`requeue`): its next
 *   job is added while the current one still holds the ticket, then the current one completes. A
 *   worker that dies holding a chat leaves its job active: the lock runs out and another worker
 *   redoes it.
 * - Keep: a batch whose INSERT failed extends its chats' tickets while its jobs wait to retry.
 * - Repair (`claimForRepair`): the archive sweep claims the free ticket of a chat holding a message
 *   PostgreSQL lacks past a grace period, puts such messages back into the pending set, and
 *   enqueues; a held ticket means a job is on its way (a lost job's ticket runs out after
 *   `ticketMs`).
 */
export function createPersistTicket(deps: {
  redis: RedisClient;
  keys: LogKeys;
  scripts: LogScripts;
  queue: PersistQueue;
  settings: LogSettings;
}) {
  const { redis, keys, scripts, settings } = deps;
  const noop = () => undefined;

  return {
    /**
     * Adds the claimed chats' jobs, then confirms the claims (off the caller's path: a claim left
     * unconfirmed runs out, and a later append adds a second job, which finds the messages
     * written). When the add fails the claims are released and the error is rethrown.
     */
    async enqueue(claims: readonly Claim[]): Promise<void> {
      if (claims.length === 0) return;
      try {
        await deps.queue.add(claims.map((c) => c.chatId));
      } catch (err) {
        await Promise.all(claims.map((c) => scripts.releaseClaim(c.chatId, c.token).catch(noop)));
        throw err;
      }
      for (const c of claims) scripts.confirmClaim(c.chatId, c.token).catch(noop);
    },

    /** Adds the next jobs of chats whose tickets are held by the caller's jobs (a hand-on). */
    async requeue(chatIds: readonly string[]): Promise<void> {
      if (chatIds.length > 0) await deps.queue.add(chatIds);
    },

    /** Extends the tickets of chats whose batch failed, while their jobs wait for their retry. */
    async keep(chatIds: readonly string[]): Promise<void> {
      await Promise.all(
        chatIds.map((chatId) => redis.set(keys.ticket(chatId), 'kept', 'PX', settings.ticketMs).catch(noop)),
      );
    },

    /**
     * The repair sweep's claim: puts `repend` seqs back into the pending set (the chat's keys made
     * permanent again, as an append does) and claims the free ticket. Null when it is held.
     */
    async claimForRepair(chatId: string, repend: readonly number[]): Promise<Claim | null> {
      const tx = redis.multi();
      if (repend.length > 0) {
        tx.zadd(keys.pending(chatId), ...repend.flatMap((seq) => [seq, seq]))
          .persist(keys.active(chatId))
          .persist(keys.seq(chatId));
      }
      const token = claimToken('repair');
      const replies = (await tx.set(keys.ticket(chatId), token, 'PX', settings.claimMs, 'NX').exec()) ?? [];
      const failed = replies.find(([err]) => err)?.[0];
      if (failed) throw failed;
      return replies[replies.length - 1]?.[1] === 'OK' ? { chatId, token } : null;
    },
  };
}

export type PersistTicket = ReturnType<typeof createPersistTicket>;
