import type { Redis } from 'ioredis';
import type { MessageTemplate } from './encoding.js';
import type { LogKeys } from './keys.js';
import { loadLua } from './lua.js';

/** Settings the scripts take on every call (config values, fixed for a process). */
export interface LogSettings {
  /** How long a clientMsgId is remembered for idempotent retries, in seconds. */
  idempotencyTtlS: number;
  /** TTL of a chat's read-position hash, renewed by every send, in seconds. */
  readsTtlS: number;
  /** TTL of a claim on a persist ticket (until its job add confirms it), in ms. */
  claimMs: number;
  /** TTL of a confirmed persist ticket, in ms. */
  ticketMs: number;
  /** Most persisted messages an active list keeps. */
  listMax: number;
}

export type AppendReply =
  /** Accepted with `seq`; `claimed`: this call took the chat's free persist ticket. */
  | { kind: 'accepted'; seq: number; claimed: boolean }
  /** The sender's bucket had no token: nothing was written. */
  | { kind: 'rate-limited'; retryAfterMs: number }
  /** A repeated clientMsgId: the original's JSON ('' once it left the active list). */
  | { kind: 'duplicate'; json: string; claimed: boolean }
  | { kind: 'forbidden' }
  /** The member set is not cached: load it and append again. */
  | { kind: 'no-members' }
  /** The seq counter is missing: seed it and append again. */
  | { kind: 'no-seq' };

export interface AppendInput {
  chatId: string;
  senderId: string;
  clientMsgId: string | null;
  template: MessageTemplate;
  /** The token of the ticket claim this call may take (unique per call). */
  claimToken: string;
  /** The sender's send bucket to take a token from in the same step, or null (taken elsewhere, or no limit). */
  bucket: { capacity: number; perSecond: number } | null;
}

export interface HistoryReply {
  /** The list's first seq (0 when empty). */
  head: number;
  /** The list holds every seq from its head to the counter, so it alone answers that range. */
  complete: boolean;
  /** The chat's counter (-1 when missing). */
  counter: number;
  jsons: string[];
}

type Raw = (...args: (string | number)[]) => Promise<unknown>;
type Queued = Record<ScriptName, (...args: (string | number)[]) => unknown>;

/** name → [file, number of keys]. Loaded once per client and run by SHA (EVAL on NOSCRIPT). */
const SCRIPTS = {
  logAppend: ['append.lua', 8],
  logReadPending: ['read-pending.lua', 3],
  logMarkPersisted: ['mark-persisted.lua', 3],
  logClaim: ['claim.lua', 1],
  logHistory: ['history.lua', 2],
  logArchiveTrim: ['archive-trim.lua', 3],
  logSeedSeq: ['seed-seq.lua', 2],
  logRaiseSeq: ['raise-seq.lua', 1],
} as const;

type ScriptName = keyof typeof SCRIPTS;

/**
 * The message log's scripts with named fields: callers never build KEYS or ARGV by position, and
 * each script's marshalling is written once, here, beside the script's own header.
 */
export function createLogScripts(redis: Redis, keys: LogKeys, settings: LogSettings) {
  const fn = {} as Record<ScriptName, Raw>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const [file, numberOfKeys] = SCRIPTS[name];
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua: loadLua(file) });
    fn[name] = (redis as unknown as Record<ScriptName, Raw>)[name].bind(redis);
  }

  /**
   * Runs one script for each of `calls` in one pipeline (one write to Redis, one read back),
   * where a worker's batch would otherwise cost a round trip per chat; rejects on the first error.
   */
  async function many<T>(
    name: ScriptName,
    calls: readonly (string | number)[][],
    parse: (reply: unknown) => T,
  ): Promise<T[]> {
    if (calls.length === 0) return [];
    const pipeline = redis.pipeline();
    const queue = (pipeline as unknown as Queued)[name];
    if (!queue) throw new Error(`script ${name} is not defined on this connection`);
    for (const args of calls) queue.apply(pipeline, args);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return parse(reply);
    });
  }

  const readPendingArgs = (chatId: string, max: number, releaseIfNone: boolean) => [
    keys.pending(chatId),
    keys.active(chatId),
    keys.ticket(chatId),
    max,
    releaseIfNone ? '1' : '0',
  ];
  const parsePending = (reply: unknown) => {
    const [found, orphans] = reply as [string[], string[]];
    return { found, orphans };
  };
  const markArgs = (chatId: string, seqs: readonly (number | string)[], ticket: 'keep' | 'leave') => [
    keys.pending(chatId),
    keys.active(chatId),
    keys.ticket(chatId),
    settings.listMax,
    ticket,
    settings.ticketMs,
    ...seqs,
  ];
  const parseMark = (reply: unknown) => {
    const [trimmed, more] = reply as [number, number];
    return { trimmed, more: more === 1 };
  };

  return {
    async append(i: AppendInput): Promise<AppendReply> {
      const { chatId } = i;
      const reply = (await fn.logAppend(
        keys.seq(chatId),
        keys.active(chatId),
        keys.members(chatId),
        i.clientMsgId ? keys.idempotency(chatId, i.senderId, i.clientMsgId) : keys.seq(chatId),
        keys.pending(chatId),
        keys.reads(chatId),
        keys.ticket(chatId),
        i.bucket ? keys.rateLimit(i.senderId) : keys.seq(chatId),
        i.senderId,
        i.template.head,
        i.template.tail,
        keys.channel,
        chatId,
        i.clientMsgId ? '1' : '0',
        settings.idempotencyTtlS,
        settings.readsTtlS,
        settings.claimMs,
        i.claimToken,
        i.bucket?.capacity ?? 0,
        i.bucket?.perSecond ?? 0,
      )) as [string, number | string, number];
      switch (reply[0]) {
        case 'OK':
          return { kind: 'accepted', seq: reply[1] as number, claimed: reply[2] === 1 };
        case 'DUP':
          return { kind: 'duplicate', json: reply[1] as string, claimed: reply[2] === 1 };
        case 'LIMITED':
          return { kind: 'rate-limited', retryAfterMs: reply[1] as number };
        case 'FORBIDDEN':
          return { kind: 'forbidden' };
        case 'NOMEMBERS':
          return { kind: 'no-members' };
        default:
          return { kind: 'no-seq' };
      }
    },

    /**
     * Each chat's lowest pending messages (up to `max`), and pending seqs the list lost, in one
     * pipeline. A chat read with `releaseIfNone` and nothing pending has its ticket released in
     * the same step.
     */
    readPending(
      reads: readonly { chatId: string; max: number; releaseIfNone: boolean }[],
    ): Promise<{ found: string[]; orphans: string[] }[]> {
      return many(
        'logReadPending',
        reads.map((r) => readPendingArgs(r.chatId, r.max, r.releaseIfNone)),
        parsePending,
      );
    },

    /**
     * Removes `seqs` from the pending set and trims the list (`more`: messages are still pending).
     * `keep`: the caller's job holds the chat: the ticket is renewed. `leave`: it is left alone
     * (reconciliation).
     */
    async markPersisted(
      chats: readonly { chatId: string; seqs: readonly (number | string)[] }[],
      ticket: 'keep' | 'leave',
    ): Promise<{ trimmed: number; more: boolean }[]> {
      return many(
        'logMarkPersisted',
        chats.map((c) => markArgs(c.chatId, c.seqs, ticket)),
        parseMark,
      );
    },

    /** Makes a claim the chat's ticket (its job was added); false when it no longer was the claim. */
    async confirmClaim(chatId: string, token: string): Promise<boolean> {
      return (await fn.logClaim(keys.ticket(chatId), 'confirm', token, settings.ticketMs)) === 1;
    },

    /** Frees the chat's ticket if it still is this claim (its job add failed). */
    async releaseClaim(chatId: string, token: string): Promise<boolean> {
      return (await fn.logClaim(keys.ticket(chatId), 'release', token, 0)) === 1;
    },

    /** A page of the active list by seq: after `bound` ascending, or the newest below it. */
    async history(chatId: string, mode: 'after' | 'before', bound: number, count: number): Promise<HistoryReply> {
      const [head, complete, counter, ...jsons] = (await fn.logHistory(
        keys.active(chatId),
        keys.seq(chatId),
        mode,
        bound,
        count,
      )) as [number, number, number, ...string[]];
      return { head, complete: complete === 1, counter, jsons };
    },

    /**
     * The archive's trim: persisted messages over the bound or created before `ageCutoffIso`,
     * never above `checkedSeq` (PostgreSQL was seen to hold the list up to it) nor at or above the
     * lowest pending seq; `ttlS` > 0 lets the chat's keys expire when nothing is pending.
     */
    async archiveTrim(
      chatId: string,
      o: { ageCutoffIso: string; checkedSeq: number; ttlS: number },
    ): Promise<{ trimmed: number; expiring: boolean }> {
      const [trimmed, expiring] = (await fn.logArchiveTrim(
        keys.active(chatId),
        keys.pending(chatId),
        keys.seq(chatId),
        settings.listMax,
        o.ageCutoffIso,
        o.checkedSeq,
        o.ttlS,
      )) as [number, number];
      return { trimmed, expiring: expiring === 1 };
    },

    /** Seeds a missing counter at `floor` or the list's last seq; returns the counter's value. */
    async seedSeq(chatId: string, floor: number): Promise<number> {
      return (await fn.logSeedSeq(keys.seq(chatId), keys.active(chatId), floor)) as number;
    },

    /** Raises an existing counter to at least `floor`; -1 when it is missing. */
    async raiseSeq(chatId: string, floor: number): Promise<number> {
      return (await fn.logRaiseSeq(keys.seq(chatId), floor)) as number;
    },
  };
}

export type LogScripts = ReturnType<typeof createLogScripts>;

/** The log's settings from the config's keys. */
export function logSettingsOf(config: {
  IDEMPOTENCY_TTL_S: number;
  ACTIVE_TTL_S: number;
  PERSIST_TICKET_CLAIM_MS: number;
  PERSIST_TICKET_MS: number;
  ACTIVE_LIST_MAX: number;
}): LogSettings {
  return {
    idempotencyTtlS: config.IDEMPOTENCY_TTL_S,
    // A chat's read positions live as long as its other keys once idle.
    readsTtlS: config.ACTIVE_TTL_S,
    claimMs: config.PERSIST_TICKET_CLAIM_MS,
    ticketMs: config.PERSIST_TICKET_MS,
    listMax: config.ACTIVE_LIST_MAX,
  };
}
