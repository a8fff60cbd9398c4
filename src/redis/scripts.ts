import type { RedisClient } from './client.js';
import { loadLua } from './lua.js';

/** The Lua scripts, loaded once and run by SHA (ioredis falls back to EVAL on NOSCRIPT). */
const SCRIPTS = {
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

/** [1 when the user came online else 0, now ms, newest expiry ms], or [-1, now ms, live count] when refused; see presence-connect.lua. */
export type PresenceConnectReply = [number, number, number];
/** [1 when the user went offline else 0, last seen ms, newest remaining expiry ms]; see presence-disconnect.lua. */
export type PresenceDisconnectReply = [number, number, number];
export type ReadAdvanceReply = ['OK', number] | ['SAME', number] | ['NOSEQ'] | ['NOREAD'];

export interface Scripts {
  /** [1, 0] when the tokens were taken, [0, ms until they would be there]; see rate-limit.lua. */
  rateLimit(key: string, capacity: number, perSecond: number, cost: number): Promise<[number, number]>;
  /** `max` > 0: `connIds` is one new connection, refused when the user holds `max` live ones already. */
  presenceConnect(
    keys: [string, string],
    ttlMs: number,
    graceMs: number,
    max: number,
    connIds: string[],
  ): Promise<PresenceConnectReply>;
  presenceDisconnect(
    keys: [string, string, string],
    ttlMs: number,
    seenTtlMs: number,
    connId: string,
  ): Promise<PresenceDisconnectReply>;
  /** 1/0 for bump, raise and drop; user ids for due; see presence-index.lua. */
  presenceIndex(key: string, args: (string | number)[]): Promise<number | string[]>;
  readAdvance(keys: [string, string], args: (string | number)[]): Promise<ReadAdvanceReply>;
  /** 1 when forwarded, 0 when thinned out; see typing.lua. */
  typing(keys: [string, string], ttlMs: number, throttleMs: number, channel: string, payload: string): Promise<number>;
  /** [1 when allowed else 0, count after the call, ms until the window ends]; see window-limit.lua. */
  windowLimit(
    key: string,
    limit: number,
    windowMs: number,
    cost: number,
    countOver: boolean,
  ): Promise<[number, number, number]>;
  /** Drops a cached copy and replaces its version token; see cache-invalidate.lua. */
  cacheInvalidate(keys: [string, string], token: string, ttlSeconds: number): Promise<number>;
  /** 1 when the member set was written, 0 when its version changed since `token` was read; see members-fill.lua. */
  membersFill(keys: [string, string], token: string, ttlSeconds: number, memberIds: string[]): Promise<number>;
  /** 1 when the copy was written, 0 when its version changed since `token` was read; see userchats-fill.lua. */
  userChatsFill(keys: [string, string], token: string, ttlSeconds: number, json: string): Promise<number>;
}

/** Defines the scripts on a client (idempotent) and returns typed callers. */
export function createScripts(redis: RedisClient): Scripts {
  const fns = {} as Record<ScriptName, ScriptFn>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    if (!(name in redis)) {
      const lua = loadLua(new URL(`./scripts/${FILES[name]}`, import.meta.url));
      redis.defineCommand(name, { numberOfKeys: SCRIPTS[name], lua });
    }
    const fn = (redis as unknown as Record<ScriptName, ScriptFn>)[name];
    fns[name] = fn.bind(redis);
  }
  return {
    rateLimit: (key, capacity, perSecond, cost) =>
      fns.parleyRateLimit(key, capacity, perSecond, cost) as Promise<[number, number]>,
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
    cacheInvalidate: (keys, token, ttlSeconds) =>
      fns.parleyCacheInvalidate(...keys, token, ttlSeconds) as Promise<number>,
    membersFill: (keys, token, ttlSeconds, memberIds) =>
      fns.parleyMembersFill(...keys, token, ttlSeconds, ...memberIds) as Promise<number>,
    userChatsFill: (keys, token, ttlSeconds, json) =>
      fns.parleyUserChatsFill(...keys, token, ttlSeconds, json) as Promise<number>,
  };
}
