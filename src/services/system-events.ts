import { AppError } from '../domain/errors.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';

/** System-wide notices: published once, written by every api process to every client it holds. */
export function createSystemEvents(deps: { redis: RedisClient; keys: Keys }) {
  return {
    /** Returns how many api processes received it. */
    async broadcast(event: string, data: unknown): Promise<number> {
      try {
        return await deps.redis.publish(deps.keys.channels.systemEvents, JSON.stringify({ event, data: data ?? null }));
      } catch {
        throw new AppError('unavailable', 'system events are unavailable, try again');
      }
    },
  };
}

export type SystemEvents = ReturnType<typeof createSystemEvents>;
