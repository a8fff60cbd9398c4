import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Message } from '../domain/types.js';
import { pipelineBySlot, type RedisClient } from '../redis/client.js';
import { scanKeys } from '../redis/scan.js';
import { changedPrefix, decodeMessage, encodeMessage, fillTemplate, messageTemplate, seqOf } from './encoding.js';
import { CHAT_PAYLOAD, createLogKeys } from './keys.js';
import { type Claim, createPersistTicket, type PersistQueue } from './persist-ticket.js';
import type { AppendReply, ChangesSinceReply, HistoryReply, LogSettings, PersistedChat } from './script-io.js';
import { createLogScripts } from './scripts.js';

export type { Claim, PersistQueue } from './persist-ticket.js';
export type { ChangesSinceReply, PersistedChat } from './script-io.js';
export { type HistoryReply, type LogSettings, logSettingsOf } from './script-io.js';

export interface MessageLogDeps {
  /** A command connection: the api's fail-fast one, or a worker's. */
  redis: RedisClient;
  /** The key prefix (REDIS_KEY_PREFIX). */
  prefix: string;
  /** Where persist jobs go (omit where no job is ever added, e.g. a read-only tool). */
  queue?: PersistQueue;
  settings: LogSettings;
}

/** A message to append, before its seq and rev are known. */
export type AppendMessage = Omit<Message, 'seq' | 'rev'>;

/**
 * What a change makes of a message: its next state (any rev), `null` when it changes nothing
 * (reacting twice, deleting a tombstone); it throws to refuse (permissions, tombstones). It may
 * be async, to look up what only some changes need (the chat's creator, for a delete).
 */
export type ApplyChange = (current: Message) => Message | null | Promise<Message | null>;

export interface ChangeRequest {
  chatId: string;
  actorId: string;
  seq: number;
  clientMsgId: string | null;
  apply: ApplyChange;
  /** The message as PostgreSQL holds it (null: no such message), for one Redis has no copy of. */
  loadStored: () => Promise<Message | null>;
  bucket: { capacity: number; perSecond: number } | null;
}

export type ChangeResult =
  /** `json` is the new state, as stored and published; `claim` must be enqueued before the ack. */
  | { kind: 'changed'; message: Message; json: string; claim: Claim | null }
  /** Nothing to change: the message as it is. */
  | { kind: 'unchanged'; message: Message; json: string }
  /** A repeated clientMsgId: the message it changed, as it is now ('' when only PostgreSQL holds it). */
  | { kind: 'duplicate'; seq: number; json: string }
  | { kind: 'not-found' }
  | { kind: 'rate-limited'; retryAfterMs: number }
  | { kind: 'forbidden' }
  | { kind: 'no-members' }
  | { kind: 'no-seq' };

export type AppendResult =
  /** `json` is byte for byte what Redis stores and publishes; `claim` must be enqueued before the ack. */
  | { kind: 'accepted'; message: Message; json: string; claim: Claim | null }
  /** A repeated clientMsgId: the original's JSON, or '' once it left Redis (read it from PostgreSQL). */
  | { kind: 'duplicate'; json: string; claim: Claim | null }
  /** The sender's send bucket had no token (see `append`'s `bucket`): nothing was written. */
  | { kind: 'rate-limited'; retryAfterMs: number }
  /** `replyTo` names a seq the chat has not issued: nothing was written. */
  | { kind: 'bad-reply' }
  | { kind: 'forbidden' }
  | { kind: 'no-members' }
  | { kind: 'no-seq' };

/** One chat's share of a persist batch, as Redis holds it. */
export interface PendingChat {
  chatId: string;
  /** The lowest pending messages, ascending seq, with their exact stored JSON. */
  messages: { message: Message; json: string }[];
  /** Pending seqs whose message Redis no longer holds (its data was lost there). */
  orphans: string[];
  /** The messages with the oldest pending changes, in their state now. */
  changes: { message: Message; json: string }[];
}

/** The chat keys whose presence means a chat has state worth managing. */
const MANAGED_SUFFIXES = [':messages:active', ':seq', ':pending', ':changes:pending'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Chat ids are UUIDs; anything else under a chat pattern is not one of ours. */
export const isChatId = (id: string | null): id is string => id !== null && UUID.test(id);

/**
 * The Redis message log: each chat's recent messages (the active list), its seq counter, its
 * pending set and its persist ticket, shared by the api (append, history) and the workers
 * (persist, archive). It owns the key layout (keys.ts), the message's encoding (encoding.ts and
 * lua/message.lua), every script's KEYS/ARGV (scripts.ts) and the persist-ticket protocol
 * (persist-ticket.ts); callers use its named operations and never touch those keys themselves.
 */
export function createMessageLog(deps: MessageLogDeps) {
  const { redis } = deps;
  const keys = createLogKeys(deps.prefix);
  const scripts = createLogScripts(redis, keys, deps.settings);
  const ticket = createPersistTicket({
    redis,
    keys,
    scripts,
    settings: deps.settings,
    queue: deps.queue ?? { add: () => Promise.reject(new Error('this message log has no persist queue')) },
  });

  /** Messages of the list by seq: its index is its seq minus the head's unless seqs were skipped. */
  async function readBySeqs(chatId: string, seqs: readonly number[]): Promise<Map<number, string>> {
    const found = new Map<number, string>();
    const first = seqs[0];
    const last = seqs[seqs.length - 1];
    if (first === undefined || last === undefined) return found;
    const key = keys.active(chatId);
    const head = await redis.lindex(key, 0);
    if (head === null) return found;
    const headSeq = seqOf(head);
    const wanted = new Set(seqs);
    const collect = (items: string[]) => {
      for (const json of items) {
        const seq = seqOf(json);
        if (wanted.has(seq)) found.set(seq, json);
      }
    };
    if (last >= headSeq) collect(await redis.lrange(key, Math.max(0, first - headSeq), last - headSeq));
    // The guess missed (a gap, or the head moved between the reads): the whole list, once.
    if (found.size < seqs.filter((s) => s >= headSeq).length) collect(await redis.lrange(key, 0, -1));
    return found;
  }

  return {
    keys,

    /**
     * Appends a message (membership, idempotency, seq, list, pending set, publish, ticket claim:
     * append.lua). An accepted append with a `claim` must be enqueued before it is acked. With a
     * `bucket`, the sender's send token is taken in the same step (where the sender's bucket may
     * share a script with the chat's keys: not on Redis Cluster).
     */
    async append(
      m: AppendMessage,
      bucket: { capacity: number; perSecond: number } | null = null,
    ): Promise<AppendResult> {
      const template = messageTemplate(m);
      // Unique per attempt already: the message's id is drawn for each send.
      const token = `send-${m.id}`;
      const reply: AppendReply = await scripts.append({
        chatId: m.chatId,
        senderId: m.senderId,
        clientMsgId: m.clientMsgId,
        replyTo: m.replyTo,
        template,
        claimToken: token,
        bucket,
      });
      switch (reply.kind) {
        case 'accepted':
          return {
            kind: 'accepted',
            message: { ...m, seq: reply.seq, rev: reply.rev },
            json: fillTemplate(template, reply.seq, reply.rev),
            claim: reply.claimed ? { chatId: m.chatId, token } : null,
          };
        case 'duplicate':
          return { kind: 'duplicate', json: reply.json, claim: reply.claimed ? { chatId: m.chatId, token } : null };
        default:
          return reply;
      }
    },

    /** The claim-enqueue-confirm step (persist-ticket.ts): adds the chats' jobs, confirms the claims. */
    enqueue: ticket.enqueue,

    /**
     * Changes a message (an edit, a delete, a reaction) the way an append adds one: read its state
     * now (Redis, else PostgreSQL), compute the next one (`apply`), and commit it only if nothing
     * changed in between (change.lua checks the rev; a message changed meanwhile is computed
     * again). The change takes the chat's next rev, is published, stays pending for PostgreSQL
     * under the chat's persist ticket like a new message, and a `claim` must be enqueued before
     * the ack.
     */
    async change(r: ChangeRequest): Promise<ChangeResult> {
      const read = await scripts.readMessage(r.chatId, r.seq, r.actorId);
      if (read.kind !== 'ok') return read;
      let json = read.json;
      let stored: string | null = null;
      const token = `change-${randomUUID()}`;
      for (let attempt = 0; attempt < 8; attempt++) {
        if (json === '') {
          const m = await r.loadStored();
          if (!m) return { kind: 'not-found' };
          json = stored = encodeMessage(m);
        }
        const current = decodeMessage(json);
        const next = await r.apply(current);
        const reply = await scripts.change({
          chatId: r.chatId,
          actorId: r.actorId,
          seq: r.seq,
          clientMsgId: r.clientMsgId,
          fromRev: current.rev,
          prefix: next ? changedPrefix({ ...next, id: current.id, chatId: current.chatId, seq: current.seq }) : null,
          stored,
          claimToken: token,
          bucket: r.bucket,
        });
        switch (reply.kind) {
          case 'changed':
            return {
              kind: 'changed',
              message: decodeMessage(reply.json),
              json: reply.json,
              claim: reply.claimed ? { chatId: r.chatId, token } : null,
            };
          case 'unchanged':
            return { kind: 'unchanged', message: decodeMessage(reply.json), json: reply.json };
          case 'stale':
            json = reply.json;
            stored = null;
            break;
          case 'not-loaded':
            json = '';
            break;
          default:
            return reply;
        }
      }
      throw new Error('message kept changing under this change: try again');
    },

    /** Messages up to `upToSeq` changed after `sinceRev`, in rev order, with the chat's rev now. */
    changesSince: (chatId: string, sinceRev: number, upToSeq: number, max: number): Promise<ChangesSinceReply> =>
      scripts.changesSince(chatId, sinceRev, upToSeq, max),

    /**
     * Messages as PostgreSQL returned them, each replaced by Redis's copy where Redis holds a later
     * change of it (not yet written): history and sync never show a stale copy.
     */
    async overlayChanges(chatId: string, messages: readonly Message[]): Promise<Message[]> {
      const copies = await scripts.changedCopies(
        chatId,
        messages.map((m) => m.seq),
      );
      return messages.map((m, i) => {
        const copy = copies[i];
        if (!copy) return m;
        const newer = decodeMessage(copy);
        return newer.rev > m.rev ? newer : m;
      });
    },

    /** Announces that PostgreSQL holds each chat's messages up to `seq` (one publish per chat). */
    async publishPersisted(chats: readonly { chatId: string; seq: number }[]): Promise<void> {
      await pipelineBySlot(
        redis,
        chats,
        (c) => keys.channel(c.chatId),
        (pipeline, c) => {
          pipeline.spublish(keys.channel(c.chatId), `${CHAT_PAYLOAD.persisted} ${c.seq}`);
          return 1;
        },
      );
    },

    /**
     * Each chat's lowest pending messages, up to `share` each, for a job that holds the chats. A
     * chat in `letGo` with nothing pending has its ticket released in the same step (its job may
     * complete; an append after this claims the ticket anew); any other keeps its ticket.
     */
    async readPending(
      chatIds: readonly string[],
      share: number,
      letGo: ReadonlySet<string> = new Set(chatIds),
    ): Promise<PendingChat[]> {
      const replies = await scripts.readPending(
        chatIds.map((chatId) => ({ chatId, max: share, releaseIfNone: letGo.has(chatId) })),
      );
      return chatIds.map((chatId, i) => {
        const reply = replies[i];
        if (!reply) throw new Error('a pending read had no reply');
        const decode = (json: string) => ({ message: decodeMessage(json), json });
        return {
          chatId,
          messages: reply.found.map(decode),
          orphans: reply.orphans,
          changes: reply.changes.map(decode),
        };
      });
    },

    /**
     * After PostgreSQL took each chat's `seqs`, for jobs that hold the chats: removes them from the
     * pending sets, trims the lists and renews the tickets (one pipeline); a job reads its chat again
     * next batch (`readPending` lets it go once nothing is pending), or hands it on with `requeue`.
     */
    markPersisted(
      chats: readonly PersistedChat[],
    ): Promise<{ trimmed: number; more: boolean; persistedSeq: number }[]> {
      return scripts.markPersisted(chats, 'keep');
    },

    /** Removes pending seqs PostgreSQL was found to hold, leaving the ticket alone (repair). */
    async reconcile(chatId: string, seqs: readonly number[]): Promise<void> {
      await scripts.markPersisted([{ chatId, seqs }], 'leave');
    },

    /**
     * Adds the next persist job of chats whose tickets the caller's jobs hold (a hand-on): the
     * tickets stay held, so the caller must let its jobs complete only after this resolved.
     */
    requeue: ticket.requeue,

    /** Extends the tickets of chats whose batch failed, while their jobs wait for their retry. */
    keepTickets: ticket.keep,

    /** Claims a chat's free ticket for a repair job, re-pending `repend` first (persist-ticket.ts). */
    claimForRepair: ticket.claimForRepair,

    /** Removes a stored message from the list (one that was never acked: its retry was stored). */
    async drop(chatId: string, json: string): Promise<void> {
      await redis.lrem(keys.active(chatId), 1, json);
    },

    /** A page of the active list by seq (history.lua). */
    history: (chatId: string, mode: 'after' | 'before', bound: number, count: number): Promise<HistoryReply> =>
      scripts.history(chatId, mode, bound, count),

    /** The chat's counter (null when missing) and newest message JSON (null when the list is empty). */
    async latest(chatId: string): Promise<{ counter: number | null; last: string | null }> {
      const [counter, last] = await Promise.all([redis.get(keys.seq(chatId)), redis.lindex(keys.active(chatId), -1)]);
      return { counter: counter === null ? null : Number(counter), last };
    },

    readBySeqs,

    /** Up to `count` messages from list index `start`, with their seqs. */
    async readRange(chatId: string, start: number, count: number): Promise<{ seq: number; json: string }[]> {
      const items = await redis.lrange(keys.active(chatId), start, start + count - 1);
      return items.map((json) => ({ seq: seqOf(json), json }));
    },

    /** The list's length and the lowest `max` pending seqs, read together. */
    async state(chatId: string, max: number): Promise<{ length: number; pending: number[] }> {
      const replies =
        (await redis
          .multi()
          .llen(keys.active(chatId))
          .zrange(keys.pending(chatId), '0', String(max - 1))
          .exec()) ?? [];
      const failed = replies.find(([err]) => err)?.[0];
      if (failed) throw failed;
      return { length: Number(replies[0]?.[1] ?? 0), pending: ((replies[1]?.[1] ?? []) as string[]).map(Number) };
    },

    /** Per chat: the counter (null when missing), how many seqs are pending, and the lowest one. */
    async pendingStats(
      chatIds: readonly string[],
    ): Promise<{ chatId: string; counter: number | null; pending: number; lowest: number | null }[]> {
      const replies = await pipelineBySlot(redis, chatIds, keys.seq, (pipeline, chatId) => {
        pipeline.get(keys.seq(chatId)).zcard(keys.pending(chatId)).zrange(keys.pending(chatId), '0', '0');
        return 3;
      });
      return chatIds.map((chatId, i) => {
        const [seq, card, lowest] = replies[i] ?? [];
        for (const r of [seq, card, lowest]) if (r?.[0]) throw r[0];
        const first = (lowest?.[1] as string[] | undefined)?.[0];
        return {
          chatId,
          counter: seq?.[1] == null ? null : Number(seq[1]),
          pending: Number(card?.[1] ?? 0),
          lowest: first === undefined ? null : Number(first),
        };
      });
    },

    /** The archive's trim and TTL step (archive-trim.lua). */
    archiveTrim: scripts.archiveTrim,
    seedSeq: scripts.seedSeq,
    raiseSeq: scripts.raiseSeq,

    /**
     * Replaces Redis's copies (in the active list, the changed hash) of messages PostgreSQL holds
     * at a later rev (changed in degraded mode), and indexes those changes for `sync`.
     */
    async refreshCopies(chatId: string, messages: readonly Message[]): Promise<void> {
      for (let i = 0; i < messages.length; i += 200) {
        const part = messages.slice(i, i + 200);
        await scripts.refreshCopies(
          chatId,
          part.map((m) => encodeMessage(m)),
        );
      }
    },

    /** Writes back the idempotency keys of messages stored elsewhere (PostgreSQL, degraded mode). */
    async restoreIdempotency(messages: readonly Message[]): Promise<void> {
      for (const m of messages) {
        if (!m.clientMsgId) continue;
        await redis.set(
          keys.idempotency(m.chatId, m.senderId, m.clientMsgId),
          String(m.seq),
          'EX',
          deps.settings.idempotencyTtlS,
          'NX',
        );
      }
    },

    /** The ids of chats that have a list, a counter or a pending set, each once, in batches. */
    async *chats(nodes: readonly Redis[], batchSize = 100): AsyncGenerator<string[]> {
      const seen = new Set<string>();
      let batch: string[] = [];
      for await (const found of scanKeys(nodes, keys.chatKeysPattern())) {
        for (const key of found) {
          if (!MANAGED_SUFFIXES.some((s) => key.endsWith(s))) continue;
          const chatId = keys.chatIdOfKey(key);
          if (!isChatId(chatId) || seen.has(chatId)) continue;
          seen.add(chatId);
          batch.push(chatId);
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
      }
      if (batch.length > 0) yield batch;
    },

    /** The ids of chats with a pending set (some message may lack PostgreSQL). */
    async *chatsWithPending(nodes: readonly Redis[]): AsyncGenerator<string[]> {
      for await (const found of scanKeys(nodes, keys.pendingPattern())) {
        const ids = found.map((key) => keys.chatIdOfKey(key)).filter(isChatId);
        if (ids.length > 0) yield ids;
      }
    },
  };
}

export type MessageLog = ReturnType<typeof createMessageLog>;

export { createdAtMsOf, decodeMessage, encodeMessage, revOf, seqOf, toWire, wireJson } from './encoding.js';
export { createLogKeys, type LogKeys } from './keys.js';
