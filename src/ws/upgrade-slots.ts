import { AppError } from '../domain/errors.js';
import type { ConnectionRegistry } from '../realtime/connection-registry.js';

/** Connection caps (config WS_MAX_CONNECTIONS, WS_MAX_CONNECTIONS_PER_USER). */
export interface ConnectionLimits {
  /** Most connections this process holds, upgrades under way included; one more gets 503. */
  maxConnections: number;
  /** Most connections one user holds across processes (here alone while they cannot be counted); one more gets 429. */
  maxPerUser: number;
}

/** The cross-process side of the per-user cap (presence records every connection in Redis). */
export interface ConnectionAdmission {
  /**
   * Records a connection about to open: `full` when the user holds `max` already,
   * `unreachable` when the count cannot be kept now (this process's connections are counted instead).
   */
  admit(userId: string, connectionId: string, max: number): Promise<'admitted' | 'full' | 'unreachable'>;
  /** An admitted connection that did not open. */
  abandon(userId: string, connectionId: string): void;
}

export interface UpgradeSlotsDeps {
  limits: ConnectionLimits;
  registry: Pick<ConnectionRegistry, 'size' | 'connectionsOf' | 'begin' | 'abandon'>;
  admission?: ConnectionAdmission;
}

/** What one upgrade holds on its way to a socket; `release` gives it all back, once. */
export interface UpgradeSlot {
  /** Counts the connection against the user's cap (across processes); throws `rate_limited` when over. */
  admit(userId: string, connectionId: string): Promise<void>;
  /** Registers the user's socket-to-be before its chats are read (see ConnectionRegistry.begin). */
  register(loadChats: () => Promise<string[]>): Promise<void>;
  /** The socket opened: it holds the admission and the registration from now on (its close gives them back). */
  opened(): void;
  release(): void;
  readonly settled: boolean;
}

/**
 * The caps on connections, checked before the upgrade so that one too many never gets a socket.
 * Upgrades under way count too: a burst of them cannot overshoot a cap while they wait on Redis
 * or PostgreSQL.
 */
export function createUpgradeSlots(deps: UpgradeSlotsDeps) {
  const { limits, registry } = deps;
  let opening = 0;
  const openingOf = new Map<string, number>();

  return {
    /** A slot for one upgrade, or null when this process holds all the connections it may. */
    take(): UpgradeSlot | null {
      if (registry.size + opening >= limits.maxConnections) return null;
      opening++;
      let userId: string | undefined;
      let connectionId = '';
      let admitted = false;
      let registered = false;
      let settled = false;

      function forgetUser(): void {
        if (userId === undefined) return;
        const n = (openingOf.get(userId) ?? 1) - 1;
        if (n > 0) openingOf.set(userId, n);
        else openingOf.delete(userId);
      }

      const slot: UpgradeSlot = {
        async admit(uid, connId) {
          userId = uid;
          connectionId = connId;
          openingOf.set(uid, (openingOf.get(uid) ?? 0) + 1);
          const verdict = deps.admission ? await deps.admission.admit(uid, connId, limits.maxPerUser) : 'unreachable';
          admitted = verdict === 'admitted';
          // Not counted across processes (Redis away): this process's, its upgrades under way included.
          const here = registry.connectionsOf(uid).size + (openingOf.get(uid) ?? 0);
          if (verdict === 'full' || (verdict === 'unreachable' && here > limits.maxPerUser)) {
            throw new AppError('rate_limited', `at most ${limits.maxPerUser} connections per user`);
          }
        },

        async register(loadChats) {
          if (userId === undefined) throw new Error('register before admit');
          registered = true;
          try {
            await registry.begin(userId, loadChats);
          } catch (err) {
            registered = false; // begin gave its registration back itself
            throw err;
          }
        },

        opened() {
          admitted = registered = false;
          slot.release();
        },

        release() {
          if (settled) return;
          settled = true;
          opening--;
          forgetUser();
          if (userId === undefined) return;
          if (admitted) deps.admission?.abandon(userId, connectionId);
          if (registered) registry.abandon(userId);
        },

        get settled() {
          return settled;
        },
      };
      return slot;
    },
  };
}
