import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { registerUsers } from '../accounts.js';
import type { BenchOptions } from '../cli.js';
import type { ClosedReport, OpenCommand, OpenedReport } from '../idle-holder.js';
import { cpuSeconds, fdUsage, rssKB } from '../proc-stats.js';
import { scrape, sumOf } from '../prom.js';
import type { Target } from '../setup.js';

export interface IdleResult {
  scenario: 'idle';
  requested: number;
  /** Connections opened and held (fewer than requested when the api's fd limit is lower). */
  connections: number;
  users: number;
  connectSeconds: number;
  /** The api's RSS before the connections and after them (settled), in MB; the difference per connection in KB. */
  rssBeforeMB: number | null;
  rssAfterMB: number | null;
  rssPerConnectionKB: number | null;
  /** The api's V8 heap in use (nodejs_heap_size_used_bytes) per connection, in KB. */
  heapPerConnectionKB: number | null;
  /** The api's and workers' CPU over the idle window, in % of one core. */
  idleS: number;
  apiCpuPct: number | null;
  workerCpuPct: number | null;
  heartbeatMs: string;
  /** Connections the server closed while idle (a heartbeat that failed them, say). */
  closedByServer: number;
  problems: string[];
}

const HOLDER = fileURLToPath(new URL('../idle-holder.ts', import.meta.url));
const PER_HOLDER = 5000;
/** File descriptors the api keeps for everything but client sockets (Redis, PostgreSQL, stdio...) plus slack. */
const FD_MARGIN = 50;
const SETTLE_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number | null) => (kb === null ? null : Math.round((kb / 1024) * 10) / 10);

async function heapUsed(apiUrl: string): Promise<number | null> {
  return scrape(`${apiUrl}/metrics`).then(
    (s) => sumOf(s, 'nodejs_heap_size_used_bytes'),
    () => null,
  );
}

/**
 * `idle`: N idle WebSocket connections on one api process (users × connections each), held by
 * helper processes; the api's RSS per connection, and its CPU over --idle seconds of idleness
 * (heartbeats and presence renewals are all it does then).
 */
export async function runIdle(opts: BenchOptions, target: Target, log: (line: string) => void): Promise<IdleResult> {
  const apiUrl = target.apiUrls[0]!;
  // api1, the one all-in-one process (parley), or the first --pid (server1).
  const api = target.processes.find((p) => p.label === 'api1' || p.label === 'parley' || p.label === 'server1');
  const workers = target.processes.filter((p) => p.label.startsWith('worker'));
  const problems: string[] = [];
  let n = opts.connections;
  const fds = api ? fdUsage(api.pid) : null;
  if (fds && n > fds.limit - fds.open - FD_MARGIN) {
    n = fds.limit - fds.open - FD_MARGIN;
    log(
      `the api may open ${fds.limit} files (ulimit -n) and has ${fds.open} open: holding ${n} connections instead of ${opts.connections}`,
    );
  }
  const users = await registerUsers([apiUrl], Math.min(opts.users, n));
  await sleep(2000);
  const rssBefore = api ? rssKB(api.pid) : null;
  const heapBefore = await heapUsed(apiUrl);

  const loopback = /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(apiUrl);
  const holders: ChildProcess[] = [];
  const t = performance.now();
  try {
    const jobs = [];
    for (let h = 0, start = 0; start < n; h++, start += PER_HOLDER) {
      const count = Math.min(PER_HOLDER, n - start);
      const holder = fork(HOLDER, [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      holders.push(holder);
      // Each holder its own source address: 20k sockets to one port need not share one address's ports.
      const cmd: OpenCommand = {
        type: 'open',
        url: apiUrl,
        tokens: Array.from({ length: count }, (_, k) => users[(start + k) % users.length]!.token),
        ...(loopback ? { localAddress: `127.0.0.${2 + h}` } : {}),
        concurrency: 50,
      };
      holder.send(cmd);
      jobs.push(once(holder, 'message').then(([r]) => r as OpenedReport));
    }
    const opened = await Promise.all(jobs);
    const connections = opened.reduce((s, r) => s + r.opened, 0);
    const failed = opened.reduce((s, r) => s + r.failed, 0);
    const connectSeconds = Math.round((performance.now() - t) / 100) / 10;
    if (failed > 0) problems.push(`${failed} connections failed (${opened.find((r) => r.firstError)?.firstError})`);
    log(`${connections} connections open in ${connectSeconds} s; settling ${SETTLE_MS / 1000} s`);
    await sleep(SETTLE_MS);
    const rssAfter = api ? rssKB(api.pid) : null;
    const heapAfter = await heapUsed(apiUrl);

    log(`idle for ${opts.idleS} s`);
    const cpu0 = api ? cpuSeconds(api.pid) : null;
    const wcpu0 = workers.map((w) => cpuSeconds(w.pid) ?? 0);
    const w0 = performance.now();
    await sleep(opts.idleS * 1000);
    const seconds = (performance.now() - w0) / 1000;
    const cpu1 = api ? cpuSeconds(api.pid) : null;
    const wcpu1 = workers.map((w) => cpuSeconds(w.pid) ?? 0);

    const reports = await Promise.all(
      holders.map((h) => {
        const r = once(h, 'message').then(([m]) => m as ClosedReport);
        h.send({ type: 'close' });
        return r;
      }),
    );
    const closedByServer = reports.reduce((s, r) => s + r.closedByServer, 0);
    if (closedByServer > 0) problems.push(`${closedByServer} idle connections closed by the server`);
    const perConn = (before: number | null, after: number | null, unit: number) =>
      before !== null && after !== null && connections > 0
        ? Math.round(((after - before) / unit / connections) * 100) / 100
        : null;
    return {
      scenario: 'idle',
      requested: opts.connections,
      connections,
      users: users.length,
      connectSeconds,
      rssBeforeMB: mb(rssBefore),
      rssAfterMB: mb(rssAfter),
      rssPerConnectionKB: perConn(rssBefore, rssAfter, 1),
      heapPerConnectionKB: perConn(heapBefore, heapAfter, 1024),
      idleS: opts.idleS,
      apiCpuPct: cpu0 !== null && cpu1 !== null ? Math.round(((cpu1 - cpu0) / seconds) * 1000) / 10 : null,
      workerCpuPct: workers.length
        ? Math.round(((wcpu1.reduce((a, b) => a + b, 0) - wcpu0.reduce((a, b) => a + b, 0)) / seconds) * 1000) / 10
        : null,
      heartbeatMs:
        opts.urls.length > 0
          ? "the server's"
          : String(opts.heartbeatMs ?? opts.env.WS_HEARTBEAT_MS ?? '30000 (default)'),
      closedByServer,
      problems,
    };
  } finally {
    for (const h of holders) if (h.exitCode === null) h.kill('SIGKILL');
  }
}
