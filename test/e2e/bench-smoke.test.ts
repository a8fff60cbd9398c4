import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { MeasuredPhase } from '../../bench/measure.js';
import { formatText, type Summary } from '../../bench/report.js';
import type { SmallResult } from '../../bench/scenarios/small.js';
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

// Timing stays out of the suite: this checks that the bench runs, counts, prints and cleans up.
describe('npm run bench (a short smoke run)', () => {
  it('runs the small scenario with nothing lost or duplicated, prints percentiles, and removes what it made', async () => {
    const { code, stdout, stderr } = await runBench(['--scenario', 'small', '--clients', '20', '--chat-size', '10', '--rate', '200', '--duration', '2', '--warmup', '0', '--json']);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.ok).toBe(true);
    expect(summary.problems).toEqual([]);

    const phase: MeasuredPhase = (summary.runs[0] as SmallResult).phase;
    expect(phase.sent).toBe(400);
    expect(phase.acked).toBe(400);
    expect(phase.unanswered).toBe(0);
    expect(phase.lostDeliveries).toBe(0);
    expect(phase.duplicates).toBe(0);
    expect(phase.misrouted).toBe(0);
    // Every send acked once; every message reached the 9 other members of its chat.
    expect(phase.ack.count).toBe(400);
    expect(phase.fanout.count).toBe(400 * 9);
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

    const text = formatText(summary);
    expect(text).toMatch(/p50\s+p90\s+p99\s+p99\.9\s+max/);
    expect(text).toMatch(/^\s+fan-out\s+\d+\.\d+/m);
    expect(text).toContain('OK: nothing lost, nothing duplicated');

    // Its throwaway database and keys are gone.
    const made = summary.throwaway[0]!;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    const dbs = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [made.database]);
    await admin.end();
    expect(dbs.rowCount).toBe(0);
    const redis = new Redis(REDIS_URL);
    const left: string[] = [];
    for (const pattern of [`${made.keyPrefix}*`, `${made.queuePrefix}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
        cursor = next;
        left.push(...keys);
      } while (cursor !== '0');
    }
    redis.disconnect();
    expect(left).toEqual([]);
  }, 120_000);
});
