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

export const configSchema = z.object({
  /** Log level for pino. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Interface the HTTP/WebSocket server binds to. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Port of the HTTP/WebSocket server; 0 picks a free one (tests). */
  PORT: int(3000).pipe(z.number().max(65535)),
  /** Port of the worker process's /metrics endpoint (0 picks a free one; unset disables). */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),

  /** Redis connection URL (redis://host:port/db). */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Redis password, when not in the URL. Never logged. */
  REDIS_PASSWORD: optionalSecret,
  /** How long a Redis connection attempt may take, in ms. */
  REDIS_CONNECT_TIMEOUT: int(2000, 1),
  /** How long one Redis command may take on the api's fail-fast connection, in ms. */
  REDIS_COMMAND_TIMEOUT: int(1000, 1),
  /** Prefix of every Parley key and pub/sub channel (tests use one per file). */
  REDIS_KEY_PREFIX: z.string().default(''),
  /** BullMQ prefix; keep it hash-tagged ({...}) so that it works on Redis Cluster. */
  QUEUE_PREFIX: z.string().min(1).default('{parley}'),

  /** PostgreSQL connection URL. */
  DATABASE_URL: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/parley'),
  /** Connections in each process's PostgreSQL pool. */
  PG_POOL_MAX: int(10, 1),

  /** Most messages an active list keeps once they are persisted. */
  ACTIVE_LIST_MAX: int(1000, 1),
  /** Persisted messages older than this (seconds) leave the active list at the next archive run. */
  ACTIVE_LIST_MAX_AGE_S: int(86_400, 1),
  /** TTL (seconds) put on a chat's keys once everything in them is persisted. */
  ACTIVE_TTL_S: int(7 * 86_400, 1),
  /** How long (seconds) a clientMsgId is remembered in Redis for idempotent retries. */
  IDEMPOTENCY_TTL_S: int(86_400, 60),
  /** How long (seconds) a membership set is cached in Redis. */
  MEMBERSHIP_TTL_S: int(3600, 1),

  /** Jobs the persist worker takes at once; also the most rows per INSERT. */
  PERSIST_BATCH_SIZE: int(500, 1),
  /** Longest a parked persistence job waits for its batch to fill, in ms. */
  PERSIST_BATCH_WAIT_MS: int(20, 0),
  /** Attempts of a persistence job before it lands in the failed set. */
  PERSIST_ATTEMPTS: int(1000, 1),
  /** First retry delay of a persistence job, in ms (exponential, capped). */
  PERSIST_BACKOFF_MS: int(500, 1),
  /**
   * How long a worker's lock on a job lasts (ms). A worker that dies holding jobs is noticed, and
   * its jobs are redone by another, within about this time.
   */
  PERSIST_LOCK_MS: int(30_000, 500),
  /** Completed/failed persistence jobs kept for Bull Board. */
  QUEUE_KEEP_COMPLETED: int(1000, 0),
  QUEUE_KEEP_FAILED: int(10_000, 0),

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

  /** Lifetime of a session token, in seconds. */
  TOKEN_TTL_S: int(30 * 86_400, 60),
  /** scrypt cost parameter N (a power of two) for password hashes. */
  PASSWORD_HASH_COST: int(16_384, 1024),

  /** Bull Board basic auth; with no password Bull Board is not mounted. */
  BULL_BOARD_USER: z.string().default('admin'),
  BULL_BOARD_PASSWORD: optionalSecret,
  /** Token for admin routes; with none they answer 403. */
  ADMIN_TOKEN: optionalSecret,

  /** Bring the schema up to date before serving (`npm start` sets it). */
  RUN_MIGRATIONS: bool(false),
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
