import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { AuthService } from './auth-service.js';

export interface SessionRevocationDeps {
  /** The command connection (publishes). */
  redis: Pick<RedisClient, 'publish'>;
  keys: Pick<Keys, 'channels'>;
  auth: Pick<AuthService, 'revoke' | 'revokeAll' | 'forget'>;
  logger: Logger;
}

/** Hashes published at once at most (a user may hold many sessions; each is one small message). */
const PUBLISH_CHUNK = 500;

/**
 * Logout that takes effect on every api process at once: the session rows go first (PostgreSQL
 * is the truth), then each token's hash is published on `channel:session-revoked`; each process
 * drops it from its auth cache and closes the sockets opened with it. Only hashes travel, never
 * tokens.
 */
export function createSessionRevocation(deps: SessionRevocationDeps) {
  const listeners: ((tokenHash: string) => void)[] = [];

  /** This process forgets the session; runs for our own revocations and for published ones. */
  function ended(tokenHash: string): void {
    deps.auth.forget(tokenHash);
    for (const listener of listeners) listener(tokenHash);
  }

  async function endEverywhere(tokenHashes: string[]): Promise<void> {
    for (const tokenHash of tokenHashes) ended(tokenHash);
    try {
      for (let i = 0; i < tokenHashes.length; i += PUBLISH_CHUNK) {
        const chunk = tokenHashes.slice(i, i + PUBLISH_CHUNK);
        await Promise.all(chunk.map((tokenHash) => deps.redis.publish(deps.keys.channels.sessionRevoked, tokenHash)));
      }
    } catch (err) {
      // The rows are gone, so every other process refuses the tokens once their cache entries
      // lapse (AuthServiceDeps.cacheMs); only the immediate effect elsewhere is lost.
      deps.logger.warn({ err }, 'session revocation not published (Redis unavailable)');
    }
  }

  return {
    /** Calls `listener` with the hash of every session that ends here (the gateway closes sockets). */
    onEnded(listener: (tokenHash: string) => void): void {
      listeners.push(listener);
    },

    /** The pub/sub handler of `channel:session-revoked`. */
    received(payload: string): void {
      if (/^[0-9a-f]{64}$/.test(payload)) ended(payload);
    },

    /** Ends one session (DELETE /api/sessions/current). */
    async revoke(token: string): Promise<void> {
      await endEverywhere([await deps.auth.revoke(token)]);
    },

    /** Ends every session of the user, on every process (DELETE /api/sessions). */
    async revokeAll(userId: string): Promise<void> {
      await endEverywhere(await deps.auth.revokeAll(userId));
    },
  };
}

export type SessionRevocation = ReturnType<typeof createSessionRevocation>;
