import type { Redis } from 'ioredis';
import { createdAtMsOf, type MessageLog } from '../message-log/message-log.js';
import { keyNodes, type RedisClient } from '../redis/client.js';
import type { MessageStore } from '../stores/message-store.js';

/** How far PostgreSQL is behind Redis for one chat. */
export interface ChatLag {
  chatId: string;
  /** The chat's seq counter in Redis: the newest seq acked (null when the counter is gone). */
  newestAckedSeq: number | null;
  /** The highest seq PostgreSQL holds for the chat. */
  newestPersistedSeq: number;
  /** newestAckedSeq - newestPersistedSeq, never below 0. */
  lagSeqs: number;
  /** Messages accepted but not yet known to be in PostgreSQL (the pending set's size). */
  pending: number;
  /** Age of the oldest of those, in seconds (0 when none). */
  oldestUnpersistedAgeS: number;
}

export interface LagSummary {
  /** When the sample was taken (ISO-8601). */
  sampledAt: string;
  /** Chats with at least one unpersisted message. */
  laggingChats: number;
  pendingMessages: number;
  /** Sum over chats of lagSeqs, and the largest. */
  lagSeqs: number;
  maxLagSeqs: number;
  /** The oldest unpersisted message anywhere, in seconds. */
  oldestUnpersistedAgeS: number;
  /** The chats furthest behind (oldest unpersisted message first). */
  worst: ChatLag[];
  /** True when more than `maxChats` chats lag and only that many were measured. */
  truncated: boolean;
}

export interface PersistenceLagDeps {
  /** A command connection (and, on Redis Cluster, every master to SCAN). */
  redis: RedisClient;
  scanNodes?: readonly Redis[];
  log: Pick<MessageLog, 'pendingStats' | 'readBySeqs' | 'chatsWithPending'>;
  messages: Pick<MessageStore, 'maxSeqs'>;
  /** Most lagging chats measured per summary; SCAN still visits the whole keyspace. */
  maxChats?: number;
  /** How many chats `worst` lists. */
  worstCount?: number;
  now?: () => number;
}

/**
 * Sync monitoring: Redis→PostgreSQL lag per chat and overall. Only chats with a pending set can
 * lag (an append adds every seq to it; the persist worker removes it after the INSERT), so the
 * summary visits exactly those. It costs a SCAN, so /metrics caches it (see metrics.ts).
 */
export function createPersistenceLag(deps: PersistenceLagDeps) {
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const maxChats = deps.maxChats ?? 10_000;

  async function measure(chatIds: string[]): Promise<ChatLag[]> {
    if (chatIds.length === 0) return [];
    const stats = await log.pendingStats(chatIds);
    const persisted = await deps.messages.maxSeqs(chatIds);
    const at = now();
    return Promise.all(
      chatIds.map(async (chatId, i) => {
        const stat = stats[i];
        if (!stat) throw new Error(`no pending stats for chat ${chatId}`);
        const { counter: acked, pending, lowest } = stat;
        const newestPersistedSeq = persisted.get(chatId) ?? 0;
        let oldestUnpersistedAgeS = 0;
        if (lowest !== null) {
          const json = (await log.readBySeqs(chatId, [lowest])).get(lowest);
          const createdAt = json ? createdAtMsOf(json) : Number.NaN;
          if (!Number.isNaN(createdAt)) oldestUnpersistedAgeS = Math.max(0, (at - createdAt) / 1000);
        }
        return {
          chatId,
          newestAckedSeq: acked,
          newestPersistedSeq,
          lagSeqs: acked === null ? 0 : Math.max(0, acked - newestPersistedSeq),
          pending,
          oldestUnpersistedAgeS,
        };
      }),
    );
  }

  return {
    /** The lag of one chat. */
    async forChat(chatId: string): Promise<ChatLag> {
      const [lag] = await measure([chatId]);
      if (!lag) throw new Error(`chat ${chatId} not measured`);
      return lag;
    },

    /** Every lagging chat (up to maxChats), summed. */
    async summary(): Promise<LagSummary> {
      const ids = new Set<string>();
      let truncated = false;
      for await (const found of log.chatsWithPending(deps.scanNodes ?? keyNodes(deps.redis))) {
        for (const chatId of found) ids.add(chatId);
        if (ids.size > maxChats) {
          truncated = true;
          break;
        }
      }
      const chatIds = [...ids].slice(0, maxChats);
      const lags: ChatLag[] = [];
      for (let i = 0; i < chatIds.length; i += 200) lags.push(...(await measure(chatIds.slice(i, i + 200))));
      const lagging = lags.filter((l) => l.pending > 0 || l.lagSeqs > 0);
      lagging.sort((a, b) => b.oldestUnpersistedAgeS - a.oldestUnpersistedAgeS || b.lagSeqs - a.lagSeqs);
      return {
        sampledAt: new Date(now()).toISOString(),
        laggingChats: lagging.length,
        pendingMessages: lagging.reduce((n, l) => n + l.pending, 0),
        lagSeqs: lagging.reduce((n, l) => n + l.lagSeqs, 0),
        maxLagSeqs: lagging.reduce((n, l) => Math.max(n, l.lagSeqs), 0),
        oldestUnpersistedAgeS: lagging[0]?.oldestUnpersistedAgeS ?? 0,
        worst: lagging.slice(0, deps.worstCount ?? 20),
        truncated,
      };
    },
  };
}

export type PersistenceLag = ReturnType<typeof createPersistenceLag>;
