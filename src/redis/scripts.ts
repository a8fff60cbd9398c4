import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** The Lua scripts, loaded once and run by SHA (ioredis falls back to EVAL on NOSCRIPT). */
const SCRIPTS = {
  parleySend: 7,
  parleySeedSeq: 2,
  parleyHistory: 2,
  parleyMarkPersisted: 3,
  parleyPendingMessages: 2,
  parleyConfirmTicket: 1,
  parleyRaiseSeq: 1,
  parleyArchiveTrim: 3,
  parleyRateLimit: 1,
  parleyPresenceConnect: 2,
  parleyPresenceDisconnect: 3,
  parleyPresenceIndex: 1,
  parleyReadAdvance: 2,
  parleyTyping: 2,
  parleyWindowLimit: 1,
  parleyCacheInvalidate: 2,
  parleyMembersFill: 2,
  parleyUserChatsFill: 2,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

const FILES: Record<ScriptName, string> = {
  parleySend: 'send.lua',
  parleySeedSeq: 'seed-seq.lua',
  parleyHistory: 'history.lua',
  parleyMarkPersisted: 'mark-persisted.lua',
  parleyPendingMessages: 'pending-messages.lua',
  parleyConfirmTicket: 'confirm-ticket.lua',
  parleyRaiseSeq: 'raise-seq.lua',
  parleyArchiveTrim: 'archive-trim.lua',
  parleyRateLimit: 'rate-limit.lua',
  parleyPresenceConnect: 'presence-connect.lua',
  parleyPresenceDisconnect: 'presence-disconnect.lua',
  parleyPresenceIndex: 'presence-index.lua',
  parleyReadAdvance: 'read-advance.lua',
  parleyTyping: 'typing.lua',
  parleyWindowLimit: 'window-limit.lua',
  parleyCacheInvalidate: 'cache-invalidate.lua',
  parleyMembersFill: 'members-fill.lua',
  parleyUserChatsFill: 'userchats-fill.lua',
};

/**
 * The last element of OK and DUP is 1 when the call took the chat's persist ticket (see send.lua);
 * DUP's JSON is '' when the original has left the active list (PostgreSQL holds it).
 */
export type SendReply = ['OK', number, 0 | 1] | ['DUP', string, 0 | 1] | ['FORBIDDEN'] | ['NOMEMBERS'] | ['NOSEQ'];
/** A short claim on a chat's persist ticket: its token and TTL, until its job add confirms it. */
export interface TicketClaim {
  token: string;
  ttlMs: number;
}
/** [head seq, complete (1/0), counter (-1 when missing), ...message JSON]. */
export type HistoryReply = [number, number, number, ...string[]];
/** [1 when the user came online else 0, now ms, newest expiry ms], or [-1, now ms, live count] when refused; see presence-connect.lua. */
export type PresenceConnectReply = [number, number, number];
/** [1 when the user went offline else 0, last seen ms, newest remaining expiry ms]; see presence-disconnect.lua. */
export type PresenceDisconnectReply = [number, number, number];
export type ReadAdvanceReply = ['OK', number] | ['SAME', number] | ['NOSEQ'] | ['NOREAD'];

export interface Scripts {
  send(keys: [string, string, string, string, string, string, string], args: (string | number)[]): Promise<SendReply>;
  seedSeq(keys: [string, string], pgMaxSeq: number): Promise<number>;
  history(keys: [string, string], mode: 'after' | 'before', bound: number, count: number): Promise<HistoryReply>;
  /**
   * [messages trimmed, 1 when the caller must add the chat's next persist job and then confirm
   * `claim`]; with `claim` null the ticket is left alone. See mark-persisted.lua.
   */
  markPersisted(keys: [string, string, string], keep: number, claim: TicketClaim | null, seqs: (number | string)[]): Promise<[number, 0 | 1]>;
  /** [message JSON of the lowest pending seqs, pending seqs whose message is gone]; see pending-messages.lua. */
  pendingMessages(keys: [string, string], max: number): Promise<[string[], string[]]>;
  /** Makes a ticket claim (`token`) a ticket of `ttlMs` once its job is added; 1 when it still was this claim. */
  confirmTicket(ticketKey: string, token: string, ttlMs: number): Promise<number>;
  /** Raises an existing counter to at least `floor`; -1 when it is missing. */
  raiseSeq(seqKey: string, floor: number): Promise<number>;
  /** [messages trimmed, 1 when the keys may expire]; see archive-trim.lua. */
  archiveTrim(keys: [string, string, string], keep: number, ageCutoffIso: string, checkedSeq: number, ttlSeconds: number): Promise<[number, number]>;
  /** [1, 0] when the tokens were taken, [0, ms until they would be there]; see rate-limit.lua. */
  rateLimit(key: string, capacity: number, perSecond: number, cost: number): Promise<[number, number]>;
  /** `max` > 0: `connIds` is one new connection, refused when the user holds `max` live ones already. */
  presenceConnect(keys: [string, string], ttlMs: number, graceMs: number, max: number, connIds: string[]): Promise<PresenceConnectReply>;
  presenceDisconnect(keys: [string, string, string], ttlMs: number, seenTtlMs: number, connId: string): Promise<PresenceDisconnectReply>;
  /** 1/0 for bump, raise and drop; user ids for due; see presence-index.lua. */
  presenceIndex(key: string, args: (string | number)[]): Promise<number | string[]>;
  readAdvance(keys: [string, string], args: (string | number)[]): Promise<ReadAdvanceReply>;
  /** 1 when forwarded, 0 when thinned out; see typing.lua. */
  typing(keys: [string, string], ttlMs: number, throttleMs: number, channel: string, payload: string): Promise<number>;
  /** [1 when allowed else 0, count after the call, ms until the window ends]; see window-limit.lua. */
  windowLimit(key: string, limit: number, windowMs: number, cost: number, countOver: boolean): Promise<[number, number, number]>;
  /** Drops a cached copy and replaces its version token; see cache-invalidate.lua. */
  cacheInvalidate(keys: [string, string], token: string, ttlSeconds: number): Promise<number>;
  /** 1 when the member set was written, 0 when its version changed since `token` was read; see members-fill.lua. */
  membersFill(keys: [string, string], token: string, ttlSeconds: number, memberIds: string[]): Promise<number>;
  /** 1 when the copy was written, 0 when its version changed since `token` was read; see userchats-fill.lua. */
  userChatsFill(keys: [string, string], token: string, ttlSeconds: number, json: string): Promise<number>;
}

/** Defines the scripts on a client (idempotent) and returns typed callers. */
export function createScripts(redis: Redis): Scripts {
  const fns = {} as Record<ScriptName, ScriptFn>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    if (!(name in redis)) {
      const lua = readFileSync(new URL(`./scripts/${FILES[name]}`, import.meta.url), 'utf8');
      redis.defineCommand(name, { numberOfKeys: SCRIPTS[name], lua });
    }
    const fn = (redis as unknown as Record<ScriptName, ScriptFn>)[name];
    fns[name] = fn.bind(redis);
  }
  return {
    send: (keys, args) => fns.parleySend(...keys, ...args) as Promise<SendReply>,
    seedSeq: (keys, pgMaxSeq) => fns.parleySeedSeq(...keys, pgMaxSeq) as Promise<number>,
    history: (keys, mode, bound, count) => fns.parleyHistory(...keys, mode, bound, count) as Promise<HistoryReply>,
    markPersisted: (keys, keep, claim, seqs) =>
      fns.parleyMarkPersisted(...keys, keep, claim?.ttlMs ?? 0, claim?.token ?? '', ...seqs) as Promise<[number, 0 | 1]>,
    pendingMessages: (keys, max) => fns.parleyPendingMessages(...keys, max) as Promise<[string[], string[]]>,
    confirmTicket: (ticketKey, token, ttlMs) => fns.parleyConfirmTicket(ticketKey, token, ttlMs) as Promise<number>,
    raiseSeq: (seqKey, floor) => fns.parleyRaiseSeq(seqKey, floor) as Promise<number>,
    archiveTrim: (keys, keep, ageCutoffIso, checkedSeq, ttlSeconds) =>
      fns.parleyArchiveTrim(...keys, keep, ageCutoffIso, checkedSeq, ttlSeconds) as Promise<[number, number]>,
    rateLimit: (key, capacity, perSecond, cost) => fns.parleyRateLimit(key, capacity, perSecond, cost) as Promise<[number, number]>,
    presenceConnect: (keys, ttlMs, graceMs, max, connIds) =>
      fns.parleyPresenceConnect(...keys, ttlMs, graceMs, max, ...connIds) as Promise<PresenceConnectReply>,
    presenceDisconnect: (keys, ttlMs, seenTtlMs, connId) =>
      fns.parleyPresenceDisconnect(...keys, ttlMs, seenTtlMs, connId) as Promise<PresenceDisconnectReply>,
    presenceIndex: (key, args) => fns.parleyPresenceIndex(key, ...args) as Promise<number | string[]>,
    readAdvance: (keys, args) => fns.parleyReadAdvance(...keys, ...args) as Promise<ReadAdvanceReply>,
    typing: (keys, ttlMs, throttleMs, channel, payload) =>
      fns.parleyTyping(...keys, ttlMs, throttleMs, channel, payload) as Promise<number>,
    windowLimit: (key, limit, windowMs, cost, countOver) =>
      fns.parleyWindowLimit(key, limit, windowMs, cost, countOver ? '1' : '0') as Promise<[number, number, number]>,
    cacheInvalidate: (keys, token, ttlSeconds) => fns.parleyCacheInvalidate(...keys, token, ttlSeconds) as Promise<number>,
    membersFill: (keys, token, ttlSeconds, memberIds) =>
      fns.parleyMembersFill(...keys, token, ttlSeconds, ...memberIds) as Promise<number>,
    userChatsFill: (keys, token, ttlSeconds, json) => fns.parleyUserChatsFill(...keys, token, ttlSeconds, json) as Promise<number>,
  };
}
