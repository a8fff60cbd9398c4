import type { Queue } from 'bullmq';
import type { JobsOptions } from 'bullmq';
import type { Connection } from '../domain/connection.js';
import { AppError, errorText, isUnavailableError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { RECEIPT_JOBS } from '../queues/receipt-jobs.js';
import { shardFor } from '../queues/shards.js';
import type { LastSeenStore } from '../stores/last-seen-store.js';
import type { PresenceState } from './presence-state.js';

export interface PresenceServiceDeps {
  state: PresenceState;
  lastSeen: LastSeenStore;
  /** The user's chats, whose members hear of an offline (an online uses the connection's chats). */
  chatIdsOf: (userId: string) => Promise<string[]>;
  /**
   * The `receipts` queues, one per shard: a last-seen time, which has no chat, goes to its user's
   * shard (the same hash of the user id), and reaches PostgreSQL through it.
   */
  receiptsQueues: readonly Queue[];
  /** The receipts queue's own job options (receiptJobOptions in src/queues/receipt-jobs.ts). */
  jobOptions: JobsOptions;
  /** Renewal interval of this process's connections, in ms (a third of the presence TTL). */
  heartbeatMs: number;
  logger: Logger;
}

export interface PresenceView {
  userId: string;
  status: 'online' | 'offline';
  lastSeenAt: string | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Slices a heartbeat period's renewals are spread over. */
const RENEW_SLICES = 10;

/** What `admit` decided: `unreachable` when Redis could not count (the caller counts locally). */
export type Admission = 'admitted' | 'full' | 'unreachable';

/**
 * The api's side of presence: registers this process's connections in Redis, renews them while
 * they are open (so a killed process stops renewing and the worker's sweep notices), and
 * publishes the transitions the scripts report. Operations of one user run one after another in
 * this process, so a close never overtakes its own connect or a heartbeat.
 *
 * A connection is recorded before its upgrade (`admit`): the record is also the per-user count
 * across processes, and a client that got `ready` is online for whoever asks at once. Its online
 * transition is announced once the socket is open and its chats are known (`connected`).
 */
export function createPresenceService(deps: PresenceServiceDeps) {
  const { state, logger } = deps;
  /** userId -> this process's open connections of that user. */
  const local = new Map<string, Map<string, Connection>>();
  const chains = new Map<string, Promise<void>>();
  /** Connections recorded by `admit` that have not opened (or been abandoned) yet. */
  const admitted = new Set<string>();
  /** Users whose online transition an admission reported, not yet announced: userId -> when. */
  const unannounced = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let beating = false;

  function serial(userId: string, op: () => Promise<void>): Promise<void> {
    const next = (chains.get(userId) ?? Promise.resolve()).then(op).catch((err: unknown) => {
      // Presence is best effort: a Redis outage must not touch the connection itself.
      logger.warn({ err: errorText(err), userId }, 'presence update failed');
    });
    chains.set(userId, next);
    void next.then(() => chains.get(userId) === next && chains.delete(userId));
    return next;
  }

  /** `conn`: any connection of the user here (they share one chat set). */
  async function online(userId: string, at: number, conn: Connection): Promise<void> {
    await state.publish({ userId, status: 'online', lastSeenAt: iso(at), chatIds: [...conn.chats] });
  }

  async function offline(userId: string, lastSeen: number): Promise<void> {
    const at = iso(lastSeen);
    await state.publish({ userId, status: 'offline', lastSeenAt: at, chatIds: await deps.chatIdsOf(userId) });
    await shardFor(deps.receiptsQueues, userId).add(RECEIPT_JOBS.seen, { userId, at }, deps.jobOptions);
  }

  /**
   * Renews the connections of some of this process's users; a user the sweep had already let go
   * comes back online. Every user is renewed once per heartbeatMs, a slice at a time
   * (RENEW_SLICES per period), so that the renewals of thousands of users do not land on Redis and
   * on the event loop in one burst, in the middle of live traffic.
   */
  let round: string[] = [];
  let tick = 0;
  async function heartbeat(): Promise<void> {
    const slot = tick++ % RENEW_SLICES;
    if (slot === 0) round = [...local.keys()];
    if (beating) return;
    beating = true;
    try {
      const size = Math.ceil(round.length / RENEW_SLICES);
      const slice = round.slice(slot * size, (slot + 1) * size);
      await Promise.all(
        slice.map((userId) =>
          serial(userId, async () => {
            const conns = local.get(userId);
            if (!conns || conns.size === 0) return;
            const r = await state.connect(userId, [...conns.keys()]);
            // Any of the user's connections here will do; if all closed meanwhile, their close announces the offline.
            const first = conns.values().next();
            if (r.cameOnline && !first.done) await online(userId, r.at, first.value);
          }),
        ),
      );
    } finally {
      beating = false;
    }
  }

  return {
    /**
     * Records a connection about to open, unless the user holds `max` live connections already
     * (on any process). Redis unreachable: `unreachable`, and `connected` records it later.
     */
    async admit(userId: string, connId: string, max: number): Promise<Admission> {
      let r: Awaited<ReturnType<PresenceState['admit']>>;
      try {
        r = await state.admit(userId, connId, max);
      } catch (err) {
        logger.warn({ err: errorText(err), userId }, 'connection not recorded before its upgrade');
        return 'unreachable';
      }
      if (!r) return 'full';
      admitted.add(connId);
      if (r.cameOnline) unannounced.set(userId, r.at);
      return 'admitted';
    },

    /** An admitted connection that never opened (its handshake failed): forgotten quietly. */
    abandon(userId: string, connId: string): void {
      if (!admitted.delete(connId)) return;
      void serial(userId, async () => {
        const r = await state.disconnect(userId, connId);
        // Nobody was told it came online, so nobody is told it went offline.
        if (r.wentOffline && !unannounced.delete(userId)) await offline(userId, r.lastSeen);
      });
    },

    /** The gateway's onOpen hook. */
    connected(conn: Connection): void {
      let conns = local.get(conn.userId);
      if (!conns) local.set(conn.userId, (conns = new Map()));
      conns.set(conn.id, conn);
      const recorded = admitted.delete(conn.id);
      void serial(conn.userId, async () => {
        if (recorded) {
          // Announced even if it closed already: its close, queued behind, announces the offline.
          const at = unannounced.get(conn.userId);
          unannounced.delete(conn.userId);
          if (at !== undefined) await online(conn.userId, at, conn);
          return;
        }
        if (!local.get(conn.userId)?.has(conn.id)) return; // closed before it was registered
        const r = await state.connect(conn.userId, [conn.id]);
        if (r.cameOnline) await online(conn.userId, r.at, conn);
      });
    },

    /** The gateway's onClose hook. */
    disconnected(conn: Connection): void {
      const conns = local.get(conn.userId);
      conns?.delete(conn.id);
      if (conns?.size === 0) local.delete(conn.userId);
      void serial(conn.userId, async () => {
        const r = await state.disconnect(conn.userId, conn.id);
        if (r.wentOffline) await offline(conn.userId, r.lastSeen);
      });
    },

    /** GET /api/users/:userId/presence. */
    async status(userId: string): Promise<PresenceView> {
      let live: { online: boolean; lastSeen: number | null };
      try {
        live = await state.status(userId);
      } catch (err) {
        if (isUnavailableError(err)) throw new AppError('unavailable', 'presence is unavailable, try again');
        throw err;
      }
      if (live.online) return { userId, status: 'online', lastSeenAt: iso(live.lastSeen ?? Date.now()) };
      const stored = await deps.lastSeen.find(userId);
      if (!stored) throw new AppError('not_found', 'no such user');
      // Redis has the newest offline time at once; PostgreSQL has it once its batch ran.
      const lastSeenAt = live.lastSeen !== null ? iso(live.lastSeen) : stored.lastSeenAt;
      return { userId, status: 'offline', lastSeenAt };
    },

    start(): void {
      timer = setInterval(() => void heartbeat(), Math.max(1, Math.floor(deps.heartbeatMs / RENEW_SLICES)));
      timer.unref();
    },

    /** Stops renewing and waits for the updates under way (the closes of a shutdown included). */
    async close(): Promise<void> {
      clearInterval(timer);
      while (chains.size > 0) await Promise.all(chains.values());
    },
  };
}

export type PresenceService = ReturnType<typeof createPresenceService>;
