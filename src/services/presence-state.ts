import type { PresenceChange } from '../domain/events.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';

export interface PresenceStateDeps {
  redis: RedisClient;
  scripts: Scripts;
  keys: Keys;
  /** How long a connection counts as alive without a heartbeat, in ms. */
  ttlMs: number;
}

/** The connection set outlives its newest entry by this much, so that a late sweep still sees it. */
const SET_GRACE_MS = 3_600_000;
/** Redis keeps a last-seen time this long; PostgreSQL has it a moment after the offline. */
const SEEN_TTL_MS = 86_400_000;

/**
 * Presence in Redis, shared by the api (connections, heartbeats) and the worker (the sweep).
 * A user is online while their connection set (`presence:{id}:conns`, id -> expiry) is not
 * empty; `presence:{id}` mirrors it with a TTL for readers. Every transition is decided inside
 * one Lua script on the user's keys, so it is reported exactly once however many processes race.
 * The index (`presence-index`, user -> newest expiry) lets the sweep find users whose connections
 * all stopped heartbeating. It is raised before the set is touched, so it is never behind it
 * for long: a crash between the two leaves an index entry the sweep drops, never a missed user.
 */
export function createPresenceState(deps: PresenceStateDeps) {
  const { scripts, keys, ttlMs } = deps;
  const index = keys.presenceIndex();
  const userKeys = (userId: string): [string, string, string] => [
    keys.presence(userId),
    keys.presenceConns(userId),
    keys.presenceSeen(userId),
  ];

  return {
    /** Registers or renews connections; `cameOnline` when the user had none before. */
    async connect(userId: string, connIds: string[]): Promise<{ cameOnline: boolean; at: number }> {
      await scripts.presenceIndex(index, ['bump', userId, ttlMs]);
      const [presence, conns] = userKeys(userId);
      const [online, now] = await scripts.presenceConnect([presence, conns], ttlMs, SET_GRACE_MS, 0, connIds);
      return { cameOnline: online === 1, at: now };
    },

    /**
     * Registers one new connection unless the user already holds `max` live ones (on any
     * process): null when refused. Atomic, so racing upgrades on many processes never pass it.
     */
    async admit(userId: string, connId: string, max: number): Promise<{ cameOnline: boolean; at: number } | null> {
      await scripts.presenceIndex(index, ['bump', userId, ttlMs]);
      const [presence, conns] = userKeys(userId);
      const [online, now] = await scripts.presenceConnect([presence, conns], ttlMs, SET_GRACE_MS, max, [connId]);
      return online === -1 ? null : { cameOnline: online === 1, at: now };
    },

    /**
     * Forgets a closed connection (or, with null, only expired ones: the sweep);
     * `wentOffline` when that left the user with none, with the time they were last seen.
     */
    async disconnect(userId: string, connId: string | null): Promise<{ wentOffline: boolean; lastSeen: number }> {
      const [offline, lastSeen, newest] = await scripts.presenceDisconnect(
        userKeys(userId),
        ttlMs,
        SEEN_TTL_MS,
        connId ?? '',
      );
      // Keep the index at least as late as the set's newest entry, or let it go once it has passed.
      if (newest > 0) await scripts.presenceIndex(index, ['raise', userId, newest]);
      else await scripts.presenceIndex(index, ['drop', userId]);
      return { wentOffline: offline === 1, lastSeen };
    },

    /** Users whose newest connection has expired (the sweep's candidates). */
    async due(limit: number): Promise<string[]> {
      return (await scripts.presenceIndex(index, ['due', limit])) as string[];
    },

    /** Online with the last heartbeat, or offline with the last-seen time Redis still has (or null). */
    async status(userId: string): Promise<{ online: boolean; lastSeen: number | null }> {
      const [presence, , seen] = userKeys(userId);
      const [now, last] = await deps.redis.mget(presence, seen);
      if (now) return { online: true, lastSeen: Number(now) };
      return { online: false, lastSeen: last ? Number(last) : null };
    },

    async publish(change: PresenceChange): Promise<void> {
      await deps.redis.publish(keys.channels.userPresence, JSON.stringify(change));
    },
  };
}

export type PresenceState = ReturnType<typeof createPresenceState>;
