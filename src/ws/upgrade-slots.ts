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

/** The upgrades under way: in all, and per user. */
interface Opening {
  total: number;
  readonly of: Map<string, number>;
}

/** What one upgrade holds on its way to a socket; `release` gives it all back, once. */
export class UpgradeSlot {
  private userId: string | undefined;
  private connectionId = '';
  private admitted = false;
  private registered = false;
  private done = false;

  constructor(
    private readonly deps: UpgradeSlotsDeps,
    private readonly opening: Opening,
  ) {
    opening.total++;
  }

  /** True once released (or handed to the socket). */
  get settled(): boolean {
    return this.done;
  }

  /** Counts the connection against the user's cap (across processes); throws `rate_limited` when over. */
  async admit(userId: string, connectionId: string): Promise<void> {
    const { limits, registry, admission } = this.deps;
    this.userId = userId;
    this.connectionId = connectionId;
    this.opening.of.set(userId, (this.opening.of.get(userId) ?? 0) + 1);
    const verdict = admission ? await admission.admit(userId, connectionId, limits.maxPerUser) : 'unreachable';
    this.admitted = verdict === 'admitted';
    // Not counted across processes (Redis away): this process's, its upgrades under way included.
    const here = registry.connectionsOf(userId).size + (this.opening.of.get(userId) ?? 0);
    if (verdict === 'full' || (verdict === 'unreachable' && here > limits.maxPerUser)) {
      throw new AppError('rate_limited', `at most ${limits.maxPerUser} connections per user`);
    }
  }

  /** Registers the user's socket-to-be before its chats are read (see ConnectionRegistry.begin). */
  async register(loadChats: () => Promise<string[]>): Promise<void> {
    if (this.userId === undefined) throw new Error('register before admit');
    this.registered = true;
    try {
      await this.deps.registry.begin(this.userId, loadChats);
    } catch (err) {
      this.registered = false; // begin gave its registration back itself
      throw err;
    }
  }

  /** The socket opened: it holds the admission and the registration from now on (its close gives them back). */
  opened(): void {
    this.admitted = this.registered = false;
    this.release();
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.opening.total--;
    const { userId } = this;
    if (userId === undefined) return;
    const n = (this.opening.of.get(userId) ?? 1) - 1;
    if (n > 0) this.opening.of.set(userId, n);
    else this.opening.of.delete(userId);
    if (this.admitted) this.deps.admission?.abandon(userId, this.connectionId);
    if (this.registered) this.deps.registry.abandon(userId);
  }
}

/**
 * The caps on connections, checked before the upgrade so that one too many never gets a socket.
 * Upgrades under way count too: a burst of them cannot overshoot a cap while they wait on Redis
 * or PostgreSQL.
 */
export function createUpgradeSlots(deps: UpgradeSlotsDeps) {
  const opening: Opening = { total: 0, of: new Map() };
  return {
    /** A slot for one upgrade, or null when this process holds all the connections it may. */
    take(): UpgradeSlot | null {
      if (deps.registry.size + opening.total >= deps.limits.maxConnections) return null;
      return new UpgradeSlot(deps, opening);
    },
  };
}
