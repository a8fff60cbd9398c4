import { parseArgs } from 'node:util';
import type { Runtime } from './setup.js';

export type ScenarioName = 'small' | 'stress' | 'idle';
/** What a run measures: Parley, the floor (bench/floor/: a bare relay), or both, the floor first. */
export type TargetName = 'parley' | 'floor' | 'both';

/** Everything `npm run bench -- ...` accepts, with the scenario's defaults filled in. */
export interface BenchOptions {
  scenario: ScenarioName;
  /** both (small and stress by default): each run starts the floor, measures it, stops it, then does the same with Parley. */
  target: TargetName;
  /** Base URLs of a running Parley's api processes; empty: the bench starts its own. */
  urls: string[];
  /** With --url: the workers' /metrics URLs (rows per INSERT), a database URL (row counts), pids (CPU/RSS). */
  workerMetricsUrls: string[];
  databaseUrl: string | undefined;
  pids: number[];
  /** Processes the bench starts (ignored with --url). */
  apis: number;
  workers: number;
  /** Parley as `npm start` runs it: the api and the workers in one process (scripts/start.ts). */
  allInOne: boolean;
  /**
   * Run the started processes on a private local 3-master Redis Cluster (REDIS_CLUSTER_NODES set
   * to its seeds) instead of REDIS_URL. Parley only: the floor speaks to one Redis.
   */
  redisCluster: boolean;
  /**
   * Place every member of a chat on one api process (chat c's on api c % apis) instead of client
   * i on api i % apis, which spreads every chat over every api: with it, each api holds members of
   * a subset of the chats, and its inbound traffic from Redis shows whether fan-out goes only where
   * the members are.
   */
  chatAffinity: boolean;
  /** Repetitions; figures are reported per run and as medians. */
  runs: number;
  /** small: the measured load; stress: the length of each step; in seconds. */
  durationS: number;
  /** Sends per second over all clients (stress: the first step). */
  rate: number;
  /** Un-reported load at the measured rate before the measurement (JIT, caches), in seconds. */
  warmupS: number;
  clients: number;
  chatSize: number;
  /** Characters per message body. */
  bodyChars: number;
  /**
   * small and stress: share of the operations that edit or react to one of the client's own recent
   * messages (0: sends only). Parley only: the floor does not speak these frames.
   */
  changes: number;
  /** stress: how much each step adds, the rate it stops at, the fan-out p99 and drain time a step must stay under. */
  stepRate: number;
  maxRate: number;
  p99LimitMs: number;
  drainLimitMs: number;
  /** idle: connections, the users they belong to, and how long the heartbeat CPU is measured. */
  connections: number;
  users: number;
  idleS: number;
  /** WS_HEARTBEAT_MS of the api the bench starts (undefined: the api's default). */
  heartbeatMs: number | undefined;
  /** How long to wait for outstanding acks and deliveries once the load stops, in ms. */
  drainTimeoutMs: number;
  /** How often the api's /metrics is polled for persistence lag, in ms. */
  scrapeMs: number;
  /** Extra environment for the processes the bench starts (--env KEY=VALUE, repeatable). */
  env: Record<string, string>;
  /** Start the processes with --cpu-prof (profiles land in .bench/profiles). */
  cpuProf: boolean;
  /** How the started processes run: compiled from dist/ (the default, as in production) or from the sources through tsx (--tsx). */
  runtime: Runtime;
  json: boolean;
}

export const USAGE = `npm run bench -- [options]
  --scenario small|stress|idle   what to run (default small)
  --target parley|floor|both     what to measure: Parley, the floor (a bare ws + Redis relay,
                                 bench/floor/), or both in each run, the floor first, with the
                                 ratios Parley / floor (default both; idle and --url: parley)
  --url URL[,URL...]             talk to a running Parley instead of starting one
  --worker-metrics URL[,URL...]  with --url: worker /metrics URLs (rows per INSERT)
  --database-url URL             with --url: count stored rows to time the persistence drain
  --pid PID                      with --url: a server process to report CPU/RSS of (repeatable)
  --apis N --workers N           processes to start (default 1 and 1; the floor: N relays)
  --all-in-one                   run Parley as npm start does: api and workers in one process
  --redis-cluster                start a private local 3-master Redis Cluster and run the
                                 processes on it (REDIS_CLUSTER_NODES) instead of REDIS_URL
                                 (Parley only; not with --url)
  --chat-affinity                connect every member of a chat to one api (chat c's members on
                                 api c % apis) instead of client i on api i % apis (every chat
                                 spread over every api): each api then holds a subset of the
                                 chats, and its inbound messages from Redis show it
  --runs N                       repeat and print medians (default 1)
  --duration S                   seconds of measured load (stress: per step)
  --rate N                       sends per second (stress: the first step)
  --warmup S                     seconds of unmeasured load at --rate first (default 2)
  --clients N --chat-size N      WebSocket clients, members per chat (default 200, 10)
  --body-chars N                 message body length (default 100)
  --changes SHARE                small, stress: this share of the operations (e.g. 0.1) edit or
                                 react to the client's own recent messages instead of sending;
                                 their ack and message.updated fan-out are reported apart
                                 (Parley only: the floor has no such frames; default 0)
  --step N --max-rate N          stress: rate added per step, last step (default 1000, 20000)
  --p99-limit MS --drain-limit MS  stress: a step holds if fan-out p99 <= 50 ms and the lag drains in <= 2000 ms
  --connections N --users N      idle: connections (default 20000) over users (default 200)
  --idle S --heartbeat-ms MS     idle: seconds of idleness measured (default 30), WS_HEARTBEAT_MS of the api
  --drain-timeout MS             wait for late acks/deliveries after the load (default 10000)
  --scrape-ms MS                 poll the api's /metrics for persistence lag (default 1000)
  --env KEY=VALUE                extra environment for the started processes (repeatable)
  --cpu-prof                     run the started processes with --cpu-prof (.bench/profiles)
  --tsx                          run the started processes from the sources through tsx
                                 (default: the compiled dist/, built first when stale)
  --json                         print one JSON document on stdout (progress goes to stderr)`;

const DEFAULTS: Record<ScenarioName, { durationS: number; rate: number; warmupS: number }> = {
  small: { durationS: 10, rate: 1000, warmupS: 2 },
  stress: { durationS: 5, rate: 1000, warmupS: 2 },
  idle: { durationS: 0, rate: 0, warmupS: 0 },
};

export function parseCli(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      scenario: { type: 'string', default: 'small' },
      target: { type: 'string' },
      'all-in-one': { type: 'boolean', default: false },
      'redis-cluster': { type: 'boolean', default: false },
      'chat-affinity': { type: 'boolean', default: false },
      url: { type: 'string' },
      'worker-metrics': { type: 'string' },
      'database-url': { type: 'string' },
      pid: { type: 'string', multiple: true },
      apis: { type: 'string' },
      workers: { type: 'string' },
      runs: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      warmup: { type: 'string' },
      clients: { type: 'string' },
      'chat-size': { type: 'string' },
      'body-chars': { type: 'string' },
      changes: { type: 'string' },
      step: { type: 'string' },
      'max-rate': { type: 'string' },
      'p99-limit': { type: 'string' },
      'drain-limit': { type: 'string' },
      connections: { type: 'string' },
      users: { type: 'string' },
      idle: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'scrape-ms': { type: 'string' },
      env: { type: 'string', multiple: true },
      'cpu-prof': { type: 'boolean', default: false },
      tsx: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const scenario = values.scenario as ScenarioName;
  if (!(scenario in DEFAULTS)) throw new Error(`--scenario must be small, stress or idle, not ${scenario}`);
  const d = DEFAULTS[scenario];
  const list = (raw: string | undefined) =>
    raw
      ? raw
          .split(',')
          .map((s) => s.trim().replace(/\/$/, ''))
          .filter(Boolean)
      : [];
  const urls = list(values.url);
  const changes = values.changes === undefined ? 0 : Number(values.changes);
  if (!(changes >= 0 && changes <= 1)) throw new Error(`--changes must be a share from 0 to 1, not ${values.changes}`);
  if (changes > 0 && scenario === 'idle') throw new Error('--changes: the idle scenario sends nothing');
  const redisCluster = values['redis-cluster'];
  if (redisCluster && urls.length > 0)
    throw new Error('--redis-cluster starts the processes on a cluster of its own: not with --url');
  // The floor has no idle scenario (no heartbeat, no /metrics), no edits or reactions, no Redis
  // Cluster, and --url names a Parley.
  const floorless = scenario === 'idle' || urls.length > 0 || changes > 0 || redisCluster;
  const target = (values.target ?? (floorless ? 'parley' : 'both')) as TargetName;
  if (!['parley', 'floor', 'both'].includes(target))
    throw new Error(`--target must be parley, floor or both, not ${target}`);
  if (target !== 'parley' && floorless)
    throw new Error(
      `--target ${target}: the floor runs small and stress only, without --changes (it has no edit or react frames), on one Redis (not --redis-cluster), and not with --url`,
    );
  const num = (name: string, raw: string | undefined, def: number, min = 0): number => {
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, not ${raw}`);
    return n;
  };
  const env: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--env takes KEY=VALUE, not ${kv}`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const opts: BenchOptions = {
    scenario,
    target,
    urls,
    workerMetricsUrls: list(values['worker-metrics']),
    databaseUrl: values['database-url'],
    pids: (values.pid ?? []).map((p) => num('pid', p, 0, 1)),
    apis: num('apis', values.apis, 1, 1),
    workers: num('workers', values.workers, 1, 0),
    allInOne: values['all-in-one'],
    redisCluster,
    chatAffinity: values['chat-affinity'],
    runs: num('runs', values.runs, 1, 1),
    durationS: num('duration', values.duration, d.durationS, 0.1),
    rate: num('rate', values.rate, d.rate, 1),
    warmupS: num('warmup', values.warmup, d.warmupS),
    clients: num('clients', values.clients, 200, 2),
    chatSize: num('chat-size', values['chat-size'], 10, 2),
    bodyChars: num('body-chars', values['body-chars'], 100, 1),
    changes,
    stepRate: num('step', values.step, 1000, 1),
    maxRate: num('max-rate', values['max-rate'], 20_000, 1),
    p99LimitMs: num('p99-limit', values['p99-limit'], 50),
    drainLimitMs: num('drain-limit', values['drain-limit'], 2000),
    connections: num('connections', values.connections, 20_000, 1),
    users: num('users', values.users, 200, 1),
    idleS: num('idle', values.idle, 30, 1),
    heartbeatMs: values['heartbeat-ms'] === undefined ? undefined : num('heartbeat-ms', values['heartbeat-ms'], 0, 100),
    drainTimeoutMs: num('drain-timeout', values['drain-timeout'], 10_000, 100),
    scrapeMs: num('scrape-ms', values['scrape-ms'], 1000, 50),
    env,
    cpuProf: values['cpu-prof'],
    runtime: values.tsx ? 'tsx' : 'compiled',
    json: values.json,
  };
  if (opts.chatSize > opts.clients) throw new Error('--chat-size cannot exceed --clients');
  if (opts.chatAffinity && scenario === 'idle') throw new Error('--chat-affinity: the idle scenario has no chats');
  if (opts.allInOne && (opts.apis !== 1 || opts.workers !== 1 || urls.length > 0)) {
    throw new Error('--all-in-one starts one process (the api and the workers): not with --apis, --workers or --url');
  }
  return opts;
}
