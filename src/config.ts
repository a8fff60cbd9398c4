import { z } from 'zod';

/**
 * The only reader of `process.env`. Every setting has a safe default except where a wrong default
 * would be dangerous; every problem is reported at once, and the result is frozen.
 * `.env.example` lists each key (a unit test keeps the two in step).
 */
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
const optionalSecret = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));
/** An optional setting where empty means unset. */
const optionalText = optionalSecret;
/** Shortest operator secret accepted: what guards the admin routes and Bull Board must not be guessable online. */
const OPERATOR_SECRET_MIN_CHARS = 16;
const operatorSecret = optionalSecret.refine((v) => v === undefined || v.length >= OPERATOR_SECRET_MIN_CHARS, {
  message: `must be at least ${OPERATOR_SECRET_MIN_CHARS} characters long (or unset)`,
});

export const configSchema = z
  .object({
    /** Log level for pino. */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Interface the HTTP/WebSocket server binds to. */
    HOST: z.string().min(1).default('127.0.0.1'),
    /** Port of the HTTP/WebSocket server; 0 picks a free one (tests). */
    PORT: int(3000).pipe(z.number().max(65535)),
    /** Port of the worker process's /metrics endpoint (0 picks a free one; unset disables). */
    WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),

    /**
     * Redis connection URL (redis://host:port/db). Unset (and no REDIS_CLUSTER_NODES), `npm start`
     * runs a redis-server of its own under PARLEY_DATA_DIR; `npm run api` and `npm run worker` use
     * this default.
     */
    REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
    /**
     * Comma-separated `host:port` seeds of a Redis Cluster: set, every process runs on the cluster
     * (REDIS_URL is ignored) and `npm start` runs no redis-server of its own. QUEUE_PREFIX must then
     * hold a hash tag (the default does).
     */
    REDIS_CLUSTER_NODES: z
      .string()
      .optional()
      .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.split(',').map((s) => s.trim())))
      .refine(
        (nodes) => nodes === undefined || nodes.every((n) => /^(\[[0-9a-fA-F:.]+\]|[^\s:,[\]]+):\d{1,5}$/.test(n)),
        {
          message: 'must be comma-separated host:port seeds',
        },
      ),
    /**
     * false: PostgreSQL-only mode. The api serves degraded from the start (sends go straight to
     * PostgreSQL, fan-out through LISTEN/NOTIFY, presence and typing unavailable) and never opens a
     * Redis connection; the workers, which only run on Redis, refuse to start. `npm start` sets it
     * when it finds no redis-server to run.
     */
    REDIS_ENABLED: bool(true),
    /** Redis password, when not in the URL. Never logged. */
    REDIS_PASSWORD: optionalSecret,
    /** How long a Redis connection attempt may take, in ms. */
    REDIS_CONNECT_TIMEOUT: int(2000, 1),
    /** How long one Redis command may take on the api's fail-fast connection, in ms. */
    REDIS_COMMAND_TIMEOUT: int(1000, 1),
    /**
     * Replicas that must hold a new message or change before it is acked (Redis WAIT after the
     * script, in the same round trip). 0 (the default): acked once its master holds it. With 1 on
     * a Redis (or a cluster) whose masters have a replica each, an ack survives the master's
     * death: the replica that takes over holds it.
     */
    REDIS_WAIT_REPLICAS: int(0, 0),
    /** How long an ack waits for REDIS_WAIT_REPLICAS, in ms; past it, it is acked on the master's copy alone. */
    REDIS_WAIT_TIMEOUT_MS: int(100, 1),
    /** Prefix of every Parley key and pub/sub channel (tests use one per file). */
    REDIS_KEY_PREFIX: z.string().default(''),
    /** BullMQ prefix; keep it hash-tagged ({...}) so that it works on Redis Cluster. */
    QUEUE_PREFIX: z.string().min(1).default('{parley}'),

    /** Interval of PING probes while Redis is unreachable (degraded mode), in ms. */
    REDIS_PROBE_MS: int(500, 50),
    /** Consecutive failed Redis commands that switch the api to degraded mode. */
    REDIS_FAILURE_THRESHOLD: int(3, 1),
    /**
     * How far above PostgreSQL's newest seq a chat's seqs jump when PostgreSQL allocates them
     * (degraded mode) or Redis lost its data: more than Redis can have issued without persisting.
     */
    DEGRADED_SEQ_GAP: int(1_000_000, 1),

    /**
     * PostgreSQL connection URL. Unset, `npm start` runs an embedded PostgreSQL under
     * PARLEY_DATA_DIR; `npm run api`, `npm run worker` and `npm run migrate` use this default.
     */
    DATABASE_URL: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/parley'),
    /** Connections in each process's PostgreSQL pool. */
    PG_POOL_MAX: int(10, 1),

    /** Most messages an active list keeps once they are persisted. */
    ACTIVE_LIST_MAX: int(1000, 1),
    /** Persisted messages older than this (seconds) leave the active list at the next archive run. */
    ACTIVE_LIST_MAX_AGE_S: int(86_400, 1),
    /** TTL (seconds) put on a chat's keys once everything in them is persisted. */
    ACTIVE_TTL_S: int(7 * 86_400, 1),
    /** How often (ms) the archive job runs (trim, TTLs, repair sweep); 0 registers no schedule. */
    ARCHIVE_INTERVAL_MS: int(60_000, 0),
    /** A chat holding an unpersisted message older than this (ms) gets a new persist job from the archive sweep. */
    ARCHIVE_REPAIR_GRACE_MS: int(30_000, 0),
    /** A persistence-lag sample younger than this (ms) is reused by /metrics instead of scanning Redis again. */
    METRICS_LAG_MAX_AGE_MS: int(5000, 0),
    /** How long (seconds) a clientMsgId is remembered in Redis for idempotent retries. */
    IDEMPOTENCY_TTL_S: int(86_400, 60),
    /** How long (seconds) a membership set is cached in Redis. */
    MEMBERSHIP_TTL_S: int(3600, 1),

    /** Most rows per INSERT; also the most chats the persist worker takes into one batch. */
    PERSIST_BATCH_SIZE: int(500, 1),
    /**
     * How many queues the persist work (and the receipts) is split into, a chat's jobs always in
     * the same one (src/queues/shards.ts): each queue is one Redis Cluster hash slot, so on a
     * cluster more shards spread the queue load over more Redis nodes. Every worker consumes every
     * shard. The same value on every api and worker process; 1 keeps the single `persist` and
     * `receipts` queues of earlier versions.
     */
    PERSIST_SHARDS: z.coerce.number().int().min(1).max(1024).default(1),
    /**
     * How long a persist job waits (ms) before it reads its chat's pending messages, so that one
     * INSERT takes everything sent meanwhile, in every chat whose job arrived. Persistence lag is
     * about this plus the INSERT; larger batches cost Redis and the worker less per message.
     */
    PERSIST_BATCH_WAIT_MS: int(100, 0),
    /**
     * How long (ms) a worker keeps writing a busy chat under one persist job before it hands the
     * chat on through the queue. Longer: fewer jobs per message; shorter: fairer turns when more
     * chats are busy than a worker holds at once (PERSIST_BATCH_SIZE).
     */
    PERSIST_HOLD_MS: int(1000, 0),
    /**
     * How long (ms) a worker keeps a chat it holds after a batch first found nothing pending for it:
     * a chat that sends in bursts costs one job per hold, not one per burst. An idle chat costs one
     * read per batch meanwhile.
     */
    PERSIST_IDLE_MS: int(250, 0),
    /**
     * TTL (ms) of a chat's persist ticket, held while the chat's persist job waits or runs. It only
     * matters when that job is lost (deleted by hand, say): the next send after this time adds a
     * new one. Keep it above PERSIST_BACKOFF_CAP_MS, so that a job retrying through an outage keeps
     * its ticket and the chat gets no second job.
     */
    PERSIST_TICKET_MS: int(60_000, 100),
    /**
     * TTL (ms) of a send's claim on a free persist ticket, between its script and its job add (the
     * claim then becomes the ticket). An api that dies in between delays the chat's persistence by
     * about this much, until the next send (or the archive sweep) adds the job.
     */
    PERSIST_TICKET_CLAIM_MS: int(2000, 100),
    /** Attempts of a persistence job before it lands in the failed set. */
    PERSIST_ATTEMPTS: int(1000, 1),
    /** First retry delay of a persistence job, in ms (exponential, capped). */
    PERSIST_BACKOFF_MS: int(500, 1),
    /** Longest retry delay of a persistence job, in ms: how soon after PostgreSQL returns it catches up. */
    PERSIST_BACKOFF_CAP_MS: int(10_000, 1),
    /**
     * How long a worker's lock on a persist job lasts (ms); BullMQ renews it every half of it while
     * the job runs, so it only runs out when its worker died or stalled that long. A dead worker's
     * jobs are redone by another within about this plus PERSIST_STALLED_MS.
     */
    PERSIST_LOCK_MS: int(5_000, 500),
    /**
     * How often (ms) the workers look for persist jobs whose lock ran out and put them back in the
     * queue (one check per interval across all workers).
     */
    PERSIST_STALLED_MS: int(2_000, 100),
    /**
     * How many times a persist job may be taken back from a worker that died with it before it
     * fails. Persist jobs are idempotent, so a stall costs a redo, never a duplicate; the limit only
     * stops a job that kills every worker that takes it.
     */
    PERSIST_MAX_STALLS: int(20, 1),
    /**
     * Completed persistence jobs kept for Bull Board. 0 deletes each job as it completes (keeping
     * and later trimming them costs Redis work on every job for little use).
     */
    QUEUE_KEEP_COMPLETED: int(0, 0),
    /** Failed persistence jobs kept (an operator retries them from Bull Board). */
    QUEUE_KEEP_FAILED: int(10_000, 0),

    /**
     * How long (ms) an api process keeps each message it acked, so that it can write them to
     * PostgreSQL itself should Redis lose its data (restarted empty, without AOF) before a worker
     * did. Cover the persistence lag you can tolerate; 0 keeps none.
     */
    RECENT_ACKS_MS: int(30_000, 0),
    /** Most acked messages an api process keeps for that (the oldest go first). */
    RECENT_ACKS_MAX: int(200_000, 0),

    /** Largest message body, in characters. */
    MESSAGE_MAX_CHARS: int(4000, 1),
    /** Largest WebSocket frame, in bytes. */
    WS_MAX_PAYLOAD: int(64 * 1024, 1024),
    /** Largest HTTP request body, in bytes. */
    HTTP_BODY_MAX: int(64 * 1024, 1024),
    /** Interval of WebSocket ping/pong liveness checks, in ms. */
    WS_HEARTBEAT_MS: int(30_000, 100),
    /** Most members a chat may have. */
    CHAT_MAX_MEMBERS: int(1000, 2),

    /** Sends one user may make at once (the burst of a token bucket shared by every api process); 0 turns the send limit off. */
    SEND_RATE_BURST: int(200, 0),
    /** Sends per second one user may keep up (the bucket's refill, fractions allowed); 0 turns the send limit off. */
    SEND_RATE_PER_S: z.coerce.number().min(0).default(50),
    /** Frames one WebSocket connection may send at once (an in-memory bucket per connection); 0 turns the limit off. */
    WS_FRAME_BURST: int(300, 0),
    /** Frames per second one WebSocket connection may keep up (fractions allowed); 0 turns the limit off. */
    WS_FRAME_RATE_PER_S: z.coerce.number().min(0).default(100),
    /** Rate-limited frames a connection may send per WS_FLOOD_WINDOW_MS; one more closes it with 1008. */
    WS_FLOOD_MAX_REFUSED: int(100, 0),
    /** The window (ms) over which WS_FLOOD_MAX_REFUSED counts. */
    WS_FLOOD_WINDOW_MS: int(10_000, 100),
    /** Bytes waiting to be written to one socket past which typing/presence frames are dropped and sync waits. */
    WS_SEND_BUFFER_SOFT: int(512 * 1024, 64 * 1024),
    /** Bytes waiting to be written to one socket past which it is closed as a slow consumer (4008). */
    WS_SEND_BUFFER_MAX: int(4 * 1024 * 1024, 128 * 1024),

    /**
     * How long a connection counts as online without a heartbeat, in ms. Each api process renews
     * its connections every third of it; a killed process's users go offline within this plus
     * PRESENCE_SWEEP_MS.
     */
    PRESENCE_TTL_MS: int(30_000, 300),
    /** How often (ms) a worker looks for users whose last connection stopped heartbeating. */
    PRESENCE_SWEEP_MS: int(5_000, 100),
    /** How long a typing indicator lasts without a new `typing` frame, in ms. */
    TYPING_TTL_MS: int(5_000, 100),
    /** A member's `typing` frames in one chat are forwarded at most once per this window, in ms. */
    TYPING_THROTTLE_MS: int(1_000, 1),
    /** Jobs the receipts worker takes at once (read positions, last-seen times); also the most rows per UPDATE. */
    RECEIPTS_BATCH_SIZE: int(500, 1),
    /** Longest a parked receipts job waits for its batch to fill, in ms. */
    RECEIPTS_BATCH_WAIT_MS: int(20, 0),

    /**
     * Most WebSocket connections one user may hold, across every api process (counted in Redis;
     * while Redis is unreachable, per process). One more is refused with 429 before the upgrade.
     */
    WS_MAX_CONNECTIONS_PER_USER: int(20, 1),
    /** Most WebSocket connections one api process holds; one more is refused with 503 before the upgrade. */
    WS_MAX_CONNECTIONS: int(20_000, 1),
    /** Most chats one user may be a member of; adding them to one more is refused (409). */
    CHATS_PER_USER_MAX: int(10_000, 1),
    /** Most chats one `sync` frame may name (a larger frame is refused with validation_failed). */
    SYNC_MAX_CHATS: int(500, 1),
    /** Failed logins per username per minute (across processes); past it, 429 with Retry-After. */
    LOGIN_FAILURES_PER_MIN: int(10, 1),
    /** Login attempts per client address per minute (across processes). */
    LOGINS_PER_MIN: int(60, 1),
    /** Registrations per client address per minute (across processes). */
    REGISTRATIONS_PER_MIN: int(10, 1),
    /** Chats one user may create per minute (across processes). */
    CHATS_CREATED_PER_MIN: int(30, 1),
    /** Members one user may add per minute, chat creation's memberIds included (across processes). */
    MEMBER_ADDS_PER_MIN: int(120, 1),
    /**
     * Take the client address from the last X-Forwarded-For entry (the one the proxy in front of
     * Parley added) instead of the socket. Only behind a proxy you control: clients can send the header.
     */
    TRUST_PROXY: bool(false),
    /** Password hashes (scrypt) computed at once per process; more wait, so a login flood cannot starve the libuv pool. */
    PASSWORD_HASH_CONCURRENCY: int(2, 1),
    /** Hashes that may wait for a slot per process; past it, logins and registrations answer 503 at once. */
    PASSWORD_HASH_QUEUE_MAX: int(64, 0),

    /** How long a client may take to send a request's headers, in ms (slowloris); at most HTTP_REQUEST_TIMEOUT_MS. */
    HTTP_HEADERS_TIMEOUT_MS: int(10_000, 100),
    /** How long a client may take to send a whole request, body included, in ms. */
    HTTP_REQUEST_TIMEOUT_MS: int(30_000, 100),
    /** How long an idle keep-alive connection stays open, in ms. */
    HTTP_KEEPALIVE_TIMEOUT_MS: int(5_000, 100),
    /** Most open HTTP connections per process (WebSockets not included); past it new ones are refused. */
    HTTP_MAX_CONNECTIONS: int(10_000, 1),

    /**
     * External identity (docs/protocol.md "External identity"): a JWT signed HS256 with this
     * secret is accepted wherever a session token is, its `sub` the Parley user's id. At least 32
     * characters (HS256 wants 256 bits); unset, HS256 JWTs are refused. Never logged.
     */
    JWT_SECRET: optionalSecret.refine((v) => v === undefined || v.length >= 32, {
      message: 'must be at least 32 characters long (or unset)',
    }),
    /**
     * URL of a JWKS document: JWTs signed RS256 or ES256 with one of its keys are accepted. The
     * keys are cached, and fetched again (at most once per JWT_JWKS_COOLDOWN_MS) when a token names
     * a `kid` the cache does not hold (key rotation).
     */
    JWT_JWKS_URL: z
      .string()
      .optional()
      .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()))
      .refine((v) => v === undefined || /^https?:\/\/[^\s]+$/.test(v), { message: 'must be an http(s) URL' }),
    /** When set, a JWT's `iss` must equal it. */
    JWT_ISSUER: optionalText,
    /** When set, a JWT's `aud` must be (or contain) it. */
    JWT_AUDIENCE: optionalText,
    /** Seconds of clock skew allowed on a JWT's `exp` and `nbf`. */
    JWT_CLOCK_TOLERANCE_S: int(5, 0),
    /** Least time between two JWKS fetches, in ms (a token with an unknown `kid` triggers one). */
    JWT_JWKS_COOLDOWN_MS: int(30_000, 0),
    /** Longest a JWKS fetch may take, in ms; past it the request answers 503. */
    JWT_JWKS_TIMEOUT_MS: int(5_000, 1),

    /** Lifetime of a session token, in seconds. */
    TOKEN_TTL_S: int(30 * 86_400, 60),
    /** How often a worker deletes expired sessions from PostgreSQL, in ms (0: this worker does not schedule it). */
    SESSION_PURGE_INTERVAL_MS: int(3_600_000, 0),
    /** Expired sessions deleted per statement of a purge (short statements, short locks). */
    SESSION_PURGE_BATCH: int(1000, 1),
    /** scrypt cost parameter N (a power of two) for password hashes. */
    PASSWORD_HASH_COST: int(16_384, 1024),

    /** Serve the web chat app (dist/web, from `npm run build`) at GET / and /app/*; false: / answers 404. */
    WEB_APP: bool(true),

    /** Bull Board basic auth; with no password Bull Board is not mounted. The password needs 16 characters or more. */
    BULL_BOARD_USER: z.string().default('admin'),
    BULL_BOARD_PASSWORD: operatorSecret,
    /** Token for admin routes; with none they answer 403. It needs 16 characters or more. */
    ADMIN_TOKEN: operatorSecret,

    /**
     * Webhook receivers (docs/protocol.md "Integrations"): comma-separated http(s) URLs, each sent
     * every event through its own queue (`webhooks`, or `webhooks-N` with several). Unset: none.
     */
    WEBHOOK_URLS: z
      .string()
      .optional()
      .transform((v) =>
        v === undefined
          ? []
          : v
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== ''),
      )
      .pipe(
        z.array(
          z
            .string()
            .url()
            .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must be an http or https URL' }),
        ),
      ),
    /** The HMAC-SHA256 key of the `Parley-Signature` header (required with WEBHOOK_URLS; never logged). */
    WEBHOOK_SECRET: optionalSecret,
    /** How long one delivery may take (connect, send, answer), in ms, before it counts as failed. */
    WEBHOOK_TIMEOUT_MS: int(5_000, 100),
    /** Deliveries of an event to one receiver before it goes to the dead-letter (failed) set. */
    WEBHOOK_ATTEMPTS: int(20, 1),
    /** First retry delay of a delivery, in ms (doubling, capped: with the defaults about 9 hours in all). */
    WEBHOOK_BACKOFF_MS: int(1_000, 1),
    /** Longest retry delay of a delivery, in ms. */
    WEBHOOK_BACKOFF_CAP_MS: int(3_600_000, 1),
    /**
     * Deliveries (POSTs) in flight at once per receiver and worker process, shared by the jobs of
     * its queue the process works on (at most this many jobs at once, too).
     */
    WEBHOOK_CONCURRENCY: int(16, 1),
    /** Most events in one delivery job (a persist batch's events for one receiver; beyond it, several jobs). */
    WEBHOOK_JOB_MAX_EVENTS: int(500, 1),
    /** At most one `notification.needed` per user and chat within this many ms. */
    NOTIFY_DEBOUNCE_MS: int(60_000, 1),
    /** Characters of the message body a `notification.needed` carries as its preview. */
    NOTIFY_PREVIEW_CHARS: int(100, 0),

    /**
     * Where `npm start` keeps the data of the servers it runs itself (an embedded PostgreSQL, a
     * redis-server), relative to the working directory. Deleting it resets them.
     */
    PARLEY_DATA_DIR: z.string().min(1).default('./.parley'),

    /** Bring the schema up to date before serving (`npm start` sets it). */
    RUN_MIGRATIONS: bool(false),
  })
  .refine((c) => c.HTTP_HEADERS_TIMEOUT_MS <= c.HTTP_REQUEST_TIMEOUT_MS, {
    // Node's HTTP server refuses to start otherwise: the headers are part of the request.
    message: 'must not be above HTTP_REQUEST_TIMEOUT_MS',
    path: ['HTTP_HEADERS_TIMEOUT_MS'],
  })
  .refine((c) => c.WEBHOOK_URLS.length === 0 || c.WEBHOOK_SECRET !== undefined, {
    // An unsigned event could not be told from a forged one.
    message: 'must be set when WEBHOOK_URLS is',
    path: ['WEBHOOK_SECRET'],
  });

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses an environment (process.env by default), reporting every problem at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  return Object.freeze(result.data);
}

/**
 * Settings a process refuses to run with, however valid each is alone. Thrown by the api and the
 * workers at start, so that nothing runs on something other than what the operator asked for.
 */
export function assertSupported(config: Config): void {
  // BullMQ's scripts touch several keys of a queue at once: on a cluster they must share a slot.
  if (config.REDIS_CLUSTER_NODES !== undefined && !/\{[^}]+\}/.test(config.QUEUE_PREFIX)) {
    throw new ConfigError([
      `QUEUE_PREFIX: on Redis Cluster it must hold a hash tag, e.g. {${config.QUEUE_PREFIX}} (every key of a queue in one slot)`,
    ]);
  }
}

/**
 * Which servers `npm start` runs itself (docs/protocol.md's embedded defaults): PostgreSQL when
 * DATABASE_URL is unset, Redis when REDIS_URL and REDIS_CLUSTER_NODES are unset and Redis is
 * not turned off (an empty URL is refused by the schema, as before). Read from the raw
 * environment, since the schema's defaults hide whether a key was set.
 */
export function embeddedServers(
  config: Config,
  env: Record<string, string | undefined> = process.env,
): { postgres: boolean; redis: boolean } {
  return {
    postgres: env.DATABASE_URL === undefined,
    redis: env.REDIS_URL === undefined && config.REDIS_CLUSTER_NODES === undefined && config.REDIS_ENABLED,
  };
}
