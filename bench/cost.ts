import type { ProcStats } from './proc-stats.js';

/** What the load cost the target's servers (and, beside them, Redis and PostgreSQL). */
export interface CostStats {
  /** The server processes (api and workers, the one all-in-one process, or the floor's relays), as labelled. */
  servers: string[];
  /** Their CPU seconds (user + system) over the load. */
  serverCpuSeconds: number | null;
  /** Those CPU seconds per message sent, in µs. */
  cpuUsPerMessage: number | null;
  /** The shared services watched beside them (redis, postgres: those that run on this machine). */
  services: string[];
  /**
   * The same with those services' CPU added: what the whole system spent per message. They are
   * shared with whatever else runs on the machine.
   */
  systemCpuUsPerMessage: number | null;
  /** RSS of the server processes together at the end of the load, in MB (api + worker, or the one process). */
  serverRssMB: number | null;
}

/** Labels of the shared services a target uses (measure.ts watches them beside the servers). */
export const SERVICE_LABELS = ['redis', 'postgres'];

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The sum of `pick` over the processes labelled `labels`; null when one of them could not be read. */
function sumOver(
  ps: readonly ProcStats[],
  labels: readonly string[],
  pick: (p: ProcStats) => number | null,
): number | null {
  let sum = 0;
  for (const label of labels) {
    const p = ps.find((x) => x.label === label);
    const v = p ? pick(p) : null;
    if (v === null) return null;
    sum += v;
  }
  return sum;
}

/**
 * CPU per message and RSS of a phase: `servers` are the target's process labels, `sent` the
 * messages sent over the window the CPU was measured in. Services that were not watched (a
 * Redis elsewhere) are left out of the system figure rather than making it null.
 */
export function costOf(ps: readonly ProcStats[], servers: readonly string[], sent: number): CostStats {
  const cpu = sumOver(ps, servers, (p) => p.cpuSeconds);
  const services = SERVICE_LABELS.filter((l) => ps.some((p) => p.label === l));
  const serviceCpu = sumOver(ps, services, (p) => p.cpuSeconds);
  const perMessage = (seconds: number | null) =>
    seconds === null || sent <= 0 ? null : round1((seconds * 1e6) / sent);
  const rss = sumOver(ps, servers, (p) => p.rssMB);
  return {
    servers: [...servers],
    serverCpuSeconds: cpu,
    services,
    cpuUsPerMessage: perMessage(cpu),
    systemCpuUsPerMessage: perMessage(cpu === null || serviceCpu === null ? null : cpu + serviceCpu),
    serverRssMB: rss === null ? null : round1(rss),
  };
}
