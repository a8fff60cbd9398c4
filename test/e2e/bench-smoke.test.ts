import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { FIGURES } from '../../bench/compare.js';
import type { MeasuredPhase } from '../../bench/measure.js';
import { formatText, type Summary } from '../../bench/report.js';
import type { SmallResult } from '../../bench/scenarios/small.js';
import type { Throwaway } from '../../bench/setup.js';
import * as config from '../../src/config.js';
import { ADMIN_URL, databaseUrl, REDIS_URL } from '../helpers/pg.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `npm run bench` (its entry point) to the end; resolves with its exit code and output. */
function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
    cwd: ROOT,
    // The bench makes its own database on this server and its own prefixes on this Redis.
    env: { ...process.env, DATABASE_URL: databaseUrl('postgres'), REDIS_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** Every send of a 400-message run in chats of 10 was acked once and reached the 9 other members of its chat. */
function expectComplete(phase: MeasuredPhase): void {
  expect(phase.sent).toBe(400);
  expect(phase.acked).toBe(400);
  expect(phase.unanswered).toBe(0);
  expect(phase.lostDeliveries).toBe(0);
  expect(phase.duplicates).toBe(0);
  expect(phase.misrouted).toBe(0);
  expect(phase.ack.count).toBe(400);
  expect(phase.fanout.count).toBe(400 * 9);
}

/** The throwaway database and keys of a run are gone. */
async function expectRemoved(made: Throwaway): Promise<void> {
  if (made.database) {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    const dbs = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [made.database]);
    await admin.end();
    expect(dbs.rowCount).toBe(0);
  }
  const redis = new Redis(REDIS_URL);
  const left: string[] = [];
  for (const pattern of [`${made.keyPrefix}*`, ...(made.queuePrefix ? [`${made.queuePrefix}*`] : [])]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
      cursor = next;
      left.push(...keys);
    } while (cursor !== '0');
  }
  redis.disconnect();
  expect(left).toEqual([]);
}

const TINY = [
  '--scenario',
  'small',
  '--clients',
  '20',
  '--chat-size',
  '10',
  '--rate',
  '200',
  '--duration',
  '2',
  '--warmup',
  '0',
  '--json',
];

/**
 * Whether the api and the workers refuse REDIS_CLUSTER_NODES at start (config.ts assertSupported,
 * as before the cluster was wired through the processes) with a hash-tagged QUEUE_PREFIX, as the
 * bench gives them: the cluster run waits for it.
 */
const clusterRefused = (() => {
  const assertSupported = (config as Record<string, unknown>).assertSupported;
  if (typeof assertSupported !== 'function') return false;
  try {
    assertSupported({ REDIS_CLUSTER_NODES: ['127.0.0.1:7000'], QUEUE_PREFIX: '{bench}' });
    return false;
  } catch {
    return true;
  }
})();

/** 30 clients in 3 chats of 10 on 3 apis, each chat on one api: each api receives its own chat's messages only. */
function expectInboundPerApi(phase: MeasuredPhase): void {
  expectComplete(phase);
  const s = phase.scale;
  expect(s).toMatchObject({ messages: 400, delivered: 4000, chats: 3, fanoutFactor: 10 });
  expect(s.apis.map((a) => a.chats)).toEqual([1, 1, 1]);
  expect(s.apis.reduce((n, a) => n + a.expectedMessages, 0)).toBe(400);
  for (const a of s.apis) {
    expect(a.expectedMessages).toBeGreaterThan(0);
    expect(a.expectedMessages).toBeLessThan(400);
    // What it received from Redis is its chat's messages, not the system's 400.
    expect(a.received?.message, a.label).toBe(a.expectedMessages);
    expect(a.framesWritten).toBe(a.delivered);
    expect(a.delivered).toBe(a.expectedMessages * 10);
  }
  expect(s.processes.map((p) => p.label)).toEqual(['api1', 'api2', 'api3', 'worker1', 'servers']);
  for (const p of s.processes) expect(p.cpuUsPerDelivered).toBeGreaterThan(0);
}

// The last --clients counts (node:util parseArgs).
const AFFINITY = [...TINY, '--clients', '30', '--target', 'parley', '--apis', '3', '--chat-affinity'];

// Timing stays out of the suite: this checks that the bench runs, counts, prints and cleans up.
describe('npm run bench (a short smoke run)', () => {
  it('runs the small scenario on the floor and on Parley with nothing lost or duplicated, prints both and the ratios, and removes what it made', async () => {
    const { code, stdout, stderr } = await runBench(TINY);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.ok).toBe(true);
    expect(summary.problems).toEqual([]);

    // The floor ran first, the same load, through the same checks.
    expect(stderr.indexOf('small, floor')).toBeGreaterThan(-1);
    expect(stderr.indexOf('small, floor')).toBeLessThan(stderr.indexOf('small, parley'));
    const floor: MeasuredPhase = (summary.floor!.runs[0] as SmallResult).phase;
    expectComplete(floor);
    expect(floor.processes.map((p) => p.label)).toEqual(expect.arrayContaining(['relay1', 'generator']));
    expect(floor.cost.servers).toEqual(['relay1']);
    expect(floor.persistence.drainBy).toBeNull(); // it stores nothing

    const phase: MeasuredPhase = (summary.runs[0] as SmallResult).phase;
    expectComplete(phase);
    for (const p of [phase.ack, phase.fanout]) {
      for (const v of [p.p50, p.p90, p.p99, p.p999, p.max]) expect(Number.isFinite(v) && v > 0).toBe(true);
      expect(p.p50).toBeLessThanOrEqual(p.p99);
      expect(p.p99).toBeLessThanOrEqual(p.max);
    }
    // Persistence was followed: PostgreSQL held every acked message once the load stopped.
    expect(phase.persistence.drainBy).toBe('rows');
    expect(phase.persistence.drainMs).not.toBeNull();
    expect(phase.persistence.rowsPerInsert).toBeGreaterThan(0);
    expect(phase.processes.map((p) => p.label)).toEqual(expect.arrayContaining(['api1', 'worker1', 'generator']));
    expect(phase.cost.servers).toEqual(['api1', 'worker1']);
    // The api's and the worker's event loop and GC, from their /metrics histograms.
    expect(phase.runtime.map((r) => r.label)).toEqual(['api1', 'worker1']);
    for (const r of phase.runtime) expect(r.loopSamples).toBeGreaterThan(50); // 2 s at one sample per 10 ms

    // Every figure for both, and Parley / floor: CPU per message and RSS measured on both sides.
    const c = summary.comparison!.runs[0]!;
    expect(c.rate).toBe(200);
    expect(Object.keys(c.figures)).toEqual(Object.keys(FIGURES).filter((k) => k !== 'heldRate'));
    for (const pair of Object.values(c.figures)) {
      expect(pair.floor).toBeGreaterThan(0);
      expect(pair.parley).toBeGreaterThan(0);
      expect(pair.ratio).toBeCloseTo(pair.parley! / pair.floor!, 1);
    }
    expect(c.figures.cpuUsPerMessage!.floor).toBeCloseTo((floor.cost.serverCpuSeconds! * 1e6) / 400, 0);

    const text = formatText(summary);
    expect(text).toMatch(/p50\s+p90\s+p99\s+p99\.9\s+max/);
    expect(text).toMatch(/^\s+fan-out\s+\d+\.\d+/m);
    expect(text).toContain('OK: nothing lost, nothing duplicated');
    expect(text).toContain('run 1 of 1, floor:');
    expect(text).toMatch(/^\s+parley \/ floor at 200 msg\/s\s+floor\s+parley\s+ratio$/m);
    expect(text).toMatch(/^\s+CPU per message, servers \(µs\)\s+\d+\s+\d+\s+\d+\.\d\d×$/m);
    expect(text).toMatch(/event loop and GC over the load .*api1 loop delay mean .* · worker1 loop delay/);

    // The throwaway database and keys of both are gone.
    await expectRemoved(summary.throwaway[0]!);
    await expectRemoved(summary.floor!.throwaway[0]!);
  }, 120_000);

  it("with --changes 0.1, makes a tenth of the operations edits and reactions of the clients' own messages, on Parley only, and measures their acks and message.updated fan-out apart", async () => {
    const { code, stdout, stderr } = await runBench([...TINY, '--changes', '0.1']);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.ok, summary.problems.join('; ')).toBe(true);
    expect(summary.floor).toBeNull(); // the floor has no edit or react frames
    expect(stderr).not.toContain('small, floor');
    const phase: MeasuredPhase = (summary.runs[0] as SmallResult).phase;
    const c = phase.changes!;
    expect(phase.sent + c.sent).toBe(400);
    // About a tenth (seeded: the same every run), edits and reactions alternating.
    expect(c.sent).toBeGreaterThan(20);
    expect(c.sent).toBeLessThan(60);
    expect(Math.abs(c.edits - c.reactions)).toBeLessThanOrEqual(1);
    expect(c).toMatchObject({ acked: c.sent, refused: 0, unanswered: 0, lostUpdates: 0, strayUpdates: 0 });
    // Each change's message.updated reached the 9 other members of its chat; the messages theirs.
    expect(c.ack.count).toBe(c.sent);
    expect(c.fanout.count).toBe(c.sent * 9);
    expect(phase).toMatchObject({ acked: phase.sent, unanswered: 0, lostDeliveries: 0, duplicates: 0, misrouted: 0 });
    expect(phase.fanout.count).toBe(phase.sent * 9);
    for (const p of [c.ack, c.fanout]) expect(p.p50 > 0 && p.p50 <= p.max).toBe(true);
    const text = formatText(summary);
    expect(text).toMatch(/^\s+change ack\s+\d+\.\d+/m);
    expect(text).toMatch(/^\s+change fan-out \(message\.updated\)\s+\d+\.\d+/m);
    expect(text).toMatch(/changes: \d+ \(\d+ edits, \d+ reactions on or off/);
    await expectRemoved(summary.throwaway[0]!);
  }, 120_000);

  it("with --apis 3 --chat-affinity, each api receives from Redis only the messages of the chat whose members it holds, and says what each process's CPU per delivered message was", async () => {
    const { code, stdout, stderr } = await runBench(AFFINITY);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.ok, summary.problems.join('; ')).toBe(true);
    expectInboundPerApi((summary.runs[0] as SmallResult).phase);
    const text = formatText(summary);
    expect(text).toMatch(
      /api1: members of 1 of 3 chats · from Redis \d+ messages \(its chats' \d+, the system's 400\)/,
    );
    expect(text).not.toContain('inbound is not');
    await expectRemoved(summary.throwaway[0]!);
  }, 120_000);

  it.skipIf(clusterRefused)(
    'with --redis-cluster, runs the same on a private 3-master Redis Cluster and removes it',
    async () => {
      const { code, stdout, stderr } = await runBench([...AFFINITY, '--redis-cluster']);
      expect(code, stderr).toBe(0);
      const summary = JSON.parse(stdout) as Summary;
      expect(summary.ok, summary.problems.join('; ')).toBe(true);
      expect(stderr).toContain('on a private Redis Cluster');
      const phase = (summary.runs[0] as SmallResult).phase;
      expectInboundPerApi(phase);
      // Redis's figures add up the three masters: three redis-server processes watched as one.
      expect(phase.redis?.scriptsPerMessage).toBeGreaterThan(0);
      expect(phase.processes.filter((p) => p.label === 'redis')).toHaveLength(1);
      const seeds = summary.throwaway[0]!.redisCluster!;
      expect(seeds).toHaveLength(3);
      // Its nodes are gone.
      for (const seed of seeds) {
        const probe = new Redis(`redis://${seed}`, {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        probe.on('error', () => undefined);
        await expect(probe.connect()).rejects.toThrow();
        probe.disconnect();
      }
      await expectRemoved(summary.throwaway[0]!);
    },
    180_000,
  );

  it('runs Parley as npm start does, the api and the workers in one process', async () => {
    const { code, stdout, stderr } = await runBench([...TINY, '--target', 'parley', '--all-in-one']);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.ok).toBe(true);
    expect(summary.floor).toBeNull();
    const phase: MeasuredPhase = (summary.runs[0] as SmallResult).phase;
    expectComplete(phase);
    expect(phase.cost.servers).toEqual(['parley']);
    expect(phase.cost.serverRssMB).toBeGreaterThan(0);
    expect(phase.runtime.map((r) => r.label)).toEqual(['parley']);
    // Its workers persisted everything, and their /metrics was found in its output.
    expect(phase.persistence.drainBy).toBe('rows');
    expect(phase.persistence.rowsPerInsert).toBeGreaterThan(0);
    await expectRemoved(summary.throwaway[0]!);
  }, 120_000);
});
