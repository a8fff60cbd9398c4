import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { type RunningProcess, startProcess } from '../scripts/faults/processes.js';
import { loadConfig } from '../src/config.js';
import { parseCommandStats } from './redis-stats.js';
import { deleteKeys, isLocal, redisServerPid, type Runtime, stopProcess, type Target } from './setup.js';

const SOURCES = fileURLToPath(new URL('./floor/', import.meta.url));
/** Where the compiled floor goes (.bench/ is ignored by git); node finds ws and ioredis from there. */
const COMPILED = fileURLToPath(new URL('../.bench/floor/', import.meta.url));
const READY = /floor relay listening on (http:\/\/\S+)/;

export interface FloorOptions {
  /** Relay processes (the bench starts as many as Parley has api processes). */
  relays: number;
  cpuProf: boolean;
  profileDir: string;
  /** As for Parley: compiled JavaScript (the default), or the sources through tsx. */
  runtime: Runtime;
}

let compiled: Promise<string> | undefined;

/**
 * The floor's sources as plain JavaScript, so that it runs without a loader as Parley's compiled
 * entry points do (tsx costs ~20 MB of RSS). A per-file transpile, no type check: `npm run
 * typecheck` checks these files with the rest of the bench.
 */
function compileFloor(): Promise<string> {
  compiled ??= (async () => {
    const ts = (await import('typescript')).default;
    mkdirSync(COMPILED, { recursive: true });
    for (const name of readdirSync(SOURCES).filter((f) => f.endsWith('.ts'))) {
      const out = ts.transpileModule(readFileSync(join(SOURCES, name), 'utf8'), {
        fileName: name,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      });
      writeFileSync(join(COMPILED, name.replace(/\.ts$/, '.js')), out.outputText);
    }
    return join(COMPILED, 'main.js');
  })();
  return compiled;
}

/**
 * Starts the floor (bench/floor/): `relays` relay processes on REDIS_URL under a key prefix of
 * their own, which `stop()` removes. It has no database, no queues and no /metrics.
 */
export async function startFloorTarget(opts: FloorOptions): Promise<Target> {
  const base = loadConfig();
  const keyPrefix = `floor${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(base.REDIS_URL, { password: base.REDIS_PASSWORD, maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined); // commands report failures; stop() must not crash on them
  const procs: RunningProcess[] = [];

  async function stop(): Promise<void> {
    await Promise.all(procs.map((p) => stopProcess(p)));
    await deleteKeys(redis, [`${keyPrefix}*`]).catch((err: Error) =>
      console.error(`bench: could not delete keys ${keyPrefix}*: ${err.message}`),
    );
    redis.disconnect();
  }

  try {
    const file = opts.runtime === 'compiled' ? await compileFloor() : join(SOURCES, 'main.ts');
    const env: Record<string, string> = {
      FLOOR_REDIS_URL: base.REDIS_URL,
      FLOOR_KEY_PREFIX: keyPrefix,
      FLOOR_HOST: '127.0.0.1',
      FLOOR_PORT: '0',
      ...(base.REDIS_PASSWORD ? { FLOOR_REDIS_PASSWORD: base.REDIS_PASSWORD } : {}),
    };
    const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : [];
    if (opts.cpuProf) mkdirSync(opts.profileDir, { recursive: true });
    for (let i = 0; i < opts.relays; i++) procs.push(await startProcess(file, env, READY, 30_000, nodeArgs));
  } catch (err) {
    await stop();
    throw err;
  }

  const redisPid = isLocal(new URL(base.REDIS_URL).hostname) ? await redisServerPid(redis).catch(() => null) : null;
  return {
    kind: 'floor',
    apiUrls: procs.map((p) => p.url),
    apiLabels: procs.map((_, i) => `relay${i + 1}`),
    apiMetricsUrls: [],
    workerMetricsUrls: [],
    processes: procs.map((p, i) => ({ label: `relay${i + 1}`, pid: p.proc.pid! })),
    runtimeSources: [],
    services: () => (redisPid ? [{ label: 'redis', pid: redisPid }] : []),
    redisCommandStats: async () => parseCommandStats(await redis.info('commandstats')),
    countRows: null,
    throwaway: { database: null, keyPrefix, queuePrefix: null },
    stop,
  };
}
