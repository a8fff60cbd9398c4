import type { JobsOptions, Queue } from 'bullmq';
import { AppError } from '../domain/errors.js';
import { payloadUserId } from '../domain/events.js';
import type { Logger } from '../logger.js';
import { CHAT_PAYLOAD } from '../message-log/keys.js';
import { RECEIPT_JOBS } from '../queues/receipt-jobs.js';
import { shardFor } from '../queues/shards.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { ReadAdvanceReply, Scripts } from '../redis/scripts.js';
import type { MessageStore } from '../stores/message-store.js';
import type { ReadStore } from '../stores/read-store.js';
import type { MembershipService } from './membership-service.js';

export interface ReceiptServiceDeps {
  redis: RedisClient;
  scripts: Scripts;
  keys: Keys;
  membership: MembershipService;
  reads: ReadStore;
  messages: Pick<MessageStore, 'maxSeq'>;
  /** The `receipts` queues, one per shard (a read goes to its chat's): read positions reach PostgreSQL through them. */
  receiptsQueues: readonly Queue[];
  /** The receipts queue's own job options (receiptJobOptions in src/queues/receipt-jobs.ts). */
  jobOptions: JobsOptions;
  /** TTL of a chat's read-position hash, renewed by every move, in seconds. */
  ttlSeconds: number;
  logger: Logger;
}

/** How often one read may have to fill in what Redis lacks (the counter, the position) first. */
const MAX_ATTEMPTS = 3;

/**
 * Read positions. Redis (`chat:{id}:reads`) holds the live value and PostgreSQL
 * (chat_members.last_read_seq) the durable one; both only move forward, so the true position is
 * always the larger of the two, and a reader never needs them to agree.
 *
 * unreadCount = the chat's last seq - the member's read position. Only other members' messages
 * count because a member's own send moves their own position to that message (the reasonable
 * reading of "I answered, so I have read what came before"): here in Redis right after the ack,
 * off the send's path, and in PostgreSQL by the persist worker's batch (workers/persist-worker.ts),
 * so no send pays an extra job or round trip, and nothing ever counts rows of `messages`.
 */
export function createReceiptService(deps: ReceiptServiceDeps) {
  const { scripts, keys } = deps;

  async function advance(
    chatId: string,
    userId: string,
    seq: number,
    opts: { floor: number | null; publish: boolean; lastSeq: number | null },
  ): Promise<ReadAdvanceReply> {
    try {
      return await scripts.readAdvance(
        [keys.reads(chatId), keys.seq(chatId)],
        [
          userId,
          seq,
          opts.floor ?? '',
          deps.ttlSeconds,
          opts.publish ? keys.channels.chat(chatId) : '',
          chatId,
          opts.lastSeq ?? '',
          CHAT_PAYLOAD.event,
          payloadUserId(userId),
        ],
      );
    } catch {
      throw new AppError('unavailable', 'read receipts are unavailable, try again');
    }
  }

  return {
    /** The `read` frame and POST /api/chats/:chatId/read: moves forward only, clamped to the last seq. */
    async markRead(userId: string, chatId: string, seq: number): Promise<void> {
      await deps.membership.requireMember(chatId, userId);
      const opts = { floor: null as number | null, publish: true, lastSeq: null as number | null };
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const reply = await advance(chatId, userId, seq, opts);
        switch (reply[0]) {
          case 'OK':
            try {
              await shardFor(deps.receiptsQueues, chatId).add(
                RECEIPT_JOBS.read,
                { chatId, userId, seq: reply[1] },
                deps.jobOptions,
              );
            } catch (err) {
              // Redis holds the position (and is what readers use first); PostgreSQL catches up
              // with the member's next read, whose job carries the larger seq.
              deps.logger.warn({ err, chatId, userId }, 'read position not queued for PostgreSQL');
            }
            return;
          case 'SAME':
            return;
          case 'NOSEQ':
            // An idle chat's counter expired: PostgreSQL holds every message then.
            opts.lastSeq = await deps.messages.maxSeq(chatId);
            break;
          case 'NOREAD':
            opts.floor = (await deps.reads.position(chatId, userId)) ?? 0;
            break;
        }
      }
      throw new AppError('unavailable', 'could not store the read position, try again');
    },

    /** The member's live positions in these chats (Redis); chats it does not know are left out. */
    async positions(userId: string, chatIds: string[]): Promise<Map<string, number>> {
      const values = await Promise.all(
        chatIds.map(async (chatId) => [chatId, await deps.redis.hget(keys.reads(chatId), userId)] as const),
      );
      const out = new Map<string, number>();
      for (const [chatId, v] of values) if (v !== null) out.set(chatId, Number(v));
      return out;
    },
  };
}

export type ReceiptService = ReturnType<typeof createReceiptService>;
