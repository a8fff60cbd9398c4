import { createHash } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';

/** One abuse limit: at most `limit` per `windowMs` for each id it counts. */
export interface WindowRule {
  /** Names the limit in its Redis key and in the error message. */
  name: string;
  limit: number;
  windowMs: number;
}

export interface WindowLimiterDeps {
  scripts: Pick<Scripts, 'windowLimit'>;
  keys: Pick<Keys, 'windowLimit'>;
  /** True while Redis is known to be down (the circuit): count locally at once instead of timing out. */
  redisDown?: () => boolean;
  now?: () => number;
}

/** Local windows kept while Redis is unreachable; past this many, expired ones are forgotten. */
const FALLBACK_MAX = 10_000;

/** Ids that could hold anything (a username as typed) are hashed into their key. */
export const hashedId = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 32);

/**
 * Fixed-window counters for the abuse limits (docs/protocol.md "Configuration"): one counter per rule
 * and id in Redis (window-limit.lua), so a limit holds across api processes. While Redis is
 * unreachable each process counts on its own: looser, but an outage neither blocks logins nor
 * lifts every limit. Over a limit is `rate_limited` with `retryAfterMs` (HTTP adds Retry-After).
 */
export function createWindowLimiter(deps: WindowLimiterDeps) {
  const now = deps.now ?? Date.now;
  const local = new Map<string, { count: number; endsAt: number }>();

  function countLocally(key: string, rule: WindowRule, cost: number, countOver: boolean): [boolean, number] {
    const t = now();
    let w = local.get(key);
    if (!w || w.endsAt <= t) {
      if (local.size >= FALLBACK_MAX) for (const [k, v] of local) if (v.endsAt <= t) local.delete(k);
      if (local.size >= FALLBACK_MAX) local.clear();
      local.set(key, (w = { count: 0, endsAt: t + rule.windowMs }));
    }
    const allowed = cost === 0 ? w.count < rule.limit : w.count + cost <= rule.limit;
    if (cost > 0 && (allowed || countOver)) w.count += cost;
    else if (cost < 0) w.count = Math.max(0, w.count + cost);
    return [allowed, Math.max(1, w.endsAt - t)];
  }

  async function count(rule: WindowRule, id: string, cost: number, countOver: boolean): Promise<[boolean, number]> {
    const key = deps.keys.windowLimit(rule.name, id);
    if (deps.redisDown?.()) return countLocally(key, rule, cost, countOver);
    try {
      const [allowed, , ttl] = await deps.scripts.windowLimit(key, rule.limit, rule.windowMs, cost, countOver);
      if (local.size > 0) local.clear(); // Redis answers again: it is the one truth
      return [allowed === 1, Math.max(1, ttl)];
    } catch {
      return countLocally(key, rule, cost, countOver);
    }
  }

  function refuse(rule: WindowRule, retryAfterMs: number): never {
    throw new AppError(
      'rate_limited',
      `too many attempts (${rule.name}); retry in ${Math.ceil(retryAfterMs / 1000)} s`,
      {
        retryAfterMs,
      },
    );
  }

  return {
    /** Counts `cost` against the id's window; throws `rate_limited` (counting nothing) when it would pass the limit. */
    async take(rule: WindowRule, id: string, cost = 1): Promise<void> {
      const [allowed, retryAfterMs] = await count(rule, id, cost, false);
      if (!allowed) refuse(rule, retryAfterMs);
    },

    /** Throws `rate_limited` when the id's window is already full; counts nothing. */
    async check(rule: WindowRule, id: string): Promise<void> {
      const [allowed, retryAfterMs] = await count(rule, id, 0, false);
      if (!allowed) refuse(rule, retryAfterMs);
    },

    /** Counts one event against the id's window without refusing it (a failed login). */
    async record(rule: WindowRule, id: string): Promise<void> {
      await count(rule, id, 1, true);
    },

    /**
     * Gives back one event `take` counted in advance that turned out not to count (a login
     * attempt reserved as a failure that succeeded). Never below zero; a window that ended meanwhile
     * is not recreated.
     */
    async refund(rule: WindowRule, id: string): Promise<void> {
      await count(rule, id, -1, false);
    },
  };
}

export type WindowLimiter = ReturnType<typeof createWindowLimiter>;

/** The abuse rules of the config, per minute as docs/protocol.md names them. */
export function abuseRules(config: {
  LOGIN_FAILURES_PER_MIN: number;
  LOGINS_PER_MIN: number;
  REGISTRATIONS_PER_MIN: number;
  CHATS_CREATED_PER_MIN: number;
  MEMBER_ADDS_PER_MIN: number;
}) {
  const perMinute = (name: string, limit: number): WindowRule => ({ name, limit, windowMs: 60_000 });
  return {
    /** Per username (hashed, case-folded): failed logins. */
    loginFailures: perMinute('login-failures', config.LOGIN_FAILURES_PER_MIN),
    /** Per client address: login attempts. */
    logins: perMinute('logins', config.LOGINS_PER_MIN),
    /** Per client address: registrations. */
    registrations: perMinute('registrations', config.REGISTRATIONS_PER_MIN),
    /** Per user: chats created. */
    chatsCreated: perMinute('chats-created', config.CHATS_CREATED_PER_MIN),
    /** Per user: members added (a new chat's memberIds count too). */
    memberAdds: perMinute('member-adds', config.MEMBER_ADDS_PER_MIN),
  } as const;
}

export type AbuseRules = ReturnType<typeof abuseRules>;
