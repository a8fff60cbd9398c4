import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Keys } from '../redis/keys.js';
import type { AuthService } from './auth-service.js';

export interface SessionRevocationDeps {
  /** The command connection (publishes). */
  redis: Pick<Redis, 'publish'>;
  keys: Pick<Keys, 'channels'>;
  auth: Pick<AuthService, 'revoke' | 'forget'>;
  logger: Logger;
}

/**
 * Logout that takes effect on every api process at once: the session row goes first (PostgreSQL
 * is the truth), then the token's hash is published on `channel:session-revoked`; each process
 * drops it from its auth cache and closes the sockets opened with it. Only the hash travels,
 * never the token.
 */
export function createSessionRevocation(deps: SessionRevocationDeps) {
  const listeners: ((tokenHash: string) => void)[] = [];

  /** This process forgets the session; runs for our own revocations and for published ones. */
  function ended(tokenHash: string): void {
    deps.auth.forget(tokenHash);
    for (const listener of listeners) listener(tokenHash);
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

    async revoke(token: string): Promise<void> {
      const tokenHash = await deps.auth.revoke(token);
      ended(tokenHash);
      try {
        await deps.redis.publish(deps.keys.channels.sessionRevoked, tokenHash);
      } catch (err) {
        // The row is gone, so every other process refuses the token once its cache entry lapses
        // (AuthServiceDeps.cacheMs); only the immediate effect elsewhere is lost.
        deps.logger.warn({ err }, 'session revocation not published (Redis unavailable)');
      }
    },
  };
}

export type SessionRevocation = ReturnType<typeof createSessionRevocation>;
