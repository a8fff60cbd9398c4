import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPU and memory of processes on this machine, read from /proc (Linux only): CPU% is the
 * delta of utime+stime over wall time (100% = one core), RSS is VmRSS.
 */

/** USER_HZ, the unit of utime/stime in /proc/PID/stat; 100 on every mainstream Linux build. */
const CLK_TCK = 100;

export interface WatchedProcess {
  /** e.g. api1, worker1, generator. */
  label: string;
  pid: number;
}

export interface ProcStats extends WatchedProcess {
  /** Percent of one core over the window. */
  cpuPct: number | null;
  /** CPU seconds (user + system) over the window, in steps of 1/USER_HZ (10 ms). */
  cpuSeconds: number | null;
  /** RSS at the end of the window, and the largest seen, in MB. */
  rssMB: number | null;
  rssMaxMB: number | null;
}

interface Sample {
  at: number;
  ticks: number;
  rssKB: number;
}

function sample(pid: number): Sample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { at: performance.now(), ticks, rssKB: rss ? Number(rss[1]) : 0 };
  } catch {
    return null; // gone, or not Linux
  }
}

/** RSS of a process in KB (null when it cannot be read). */
export function rssKB(pid: number): number | null {
  return sample(pid)?.rssKB ?? null;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number | null {
  const s = sample(pid);
  return s ? s.ticks / CLK_TCK : null;
}

/** Open file descriptors of a process, and its soft limit (null when unreadable). */
export function fdUsage(pid: number): { open: number; limit: number } | null {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return { open: readdirSync(`/proc/${pid}/fd`).length, limit: m ? Number(m[1]) : Number.POSITIVE_INFINITY };
  } catch {
    return null;
  }
}

/** The machine's CPU time so far, from the first line of /proc/stat (in ticks). */
function machineTicks(): { busy: number; steal: number; total: number } | null {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.slice(0, 8).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq!;
    return { busy, steal: steal!, total: busy + idle! + iowait! + steal! };
  } catch {
    return null;
  }
}

/** What the whole machine did over a window, in % of one core (so up to 100 × cores). */
export interface MachineCpu {
  cores: number;
  busyPct: number;
  /** Time the hypervisor gave to others while we wanted to run. */
  stealPct: number;
  /**
   * Busy time not accounted to a watched process: the kernel's own work (softirqs of loopback
   * networking, part of it) and anything else running. A large value means interference.
   */
  otherPct: number;
}

/** Pids of the processes whose command name (/proc/PID/comm) is `name`, e.g. every `postgres`. */
export function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Watches processes over a window: `start()` takes the first sample, then RSS is sampled every
 * `everyMs` for its maximum, and `stop()` returns CPU% and RSS per process.
 */
export class ProcWatch {
  private first = new Map<number, Sample>();
  private machineFirst: ReturnType<typeof machineTicks> = null;
  /** The machine's CPU over the last start()..stop() window (null when /proc/stat is unreadable). */
  machine: MachineCpu | null = null;
  private maxRss = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly processes: readonly WatchedProcess[],
    private readonly everyMs = 1000,
  ) {}

  start(): void {
    this.machineFirst = machineTicks();
    for (const p of this.processes) {
      const s = sample(p.pid);
      if (s) {
        this.first.set(p.pid, s);
        this.maxRss.set(p.pid, s.rssKB);
      }
    }
    this.timer = setInterval(() => {
      for (const p of this.processes) {
        const s = sample(p.pid);
        if (s) this.maxRss.set(p.pid, Math.max(this.maxRss.get(p.pid) ?? 0, s.rssKB));
      }
    }, this.everyMs);
    this.timer.unref();
  }

  /** Per label: processes sharing one (every postgres backend) are added up. */
  stop(): ProcStats[] {
    clearInterval(this.timer);
    const m0 = this.machineFirst;
    const m1 = machineTicks();
    if (m0 && m1 && m1.total > m0.total) {
      const cores = availableParallelism();
      const pct = (x: number) => round1((x / (m1.total - m0.total)) * 100 * cores);
      this.machine = { cores, busyPct: pct(m1.busy - m0.busy), stealPct: pct(m1.steal - m0.steal), otherPct: 0 };
    }
    const each = this.processes.map((p) => {
      const a = this.first.get(p.pid);
      const b = sample(p.pid);
      if (!a || !b) return { ...p, cpuPct: null, cpuSeconds: null, rssMB: null, rssMaxMB: null };
      const seconds = (b.at - a.at) / 1000;
      const maxKB = Math.max(this.maxRss.get(p.pid) ?? 0, b.rssKB);
      return {
        ...p,
        cpuPct: seconds > 0 ? round1(((b.ticks - a.ticks) / CLK_TCK / seconds) * 100) : null,
        cpuSeconds: (b.ticks - a.ticks) / CLK_TCK,
        rssMB: round1(b.rssKB / 1024),
        rssMaxMB: round1(maxKB / 1024),
      };
    });
    const byLabel = new Map<string, ProcStats>();
    for (const p of each) {
      const seen = byLabel.get(p.label);
      if (!seen) byLabel.set(p.label, p);
      // Several processes (postgres and its backends) share memory: a sum of their RSS means nothing.
      else
        byLabel.set(p.label, {
          ...seen,
          cpuPct: add(seen.cpuPct, p.cpuPct),
          cpuSeconds: addSeconds(seen.cpuSeconds, p.cpuSeconds),
          rssMB: null,
          rssMaxMB: null,
        });
    }
    const stats = [...byLabel.values()];
    if (this.machine)
      this.machine.otherPct = round1(this.machine.busyPct - stats.reduce((sum, p) => sum + (p.cpuPct ?? 0), 0));
    return stats;
  }
}

const add = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : round1(a + b));
/** CPU seconds are whole ticks (1/100 s): their sum is kept to the tick. */
const addSeconds = (a: number | null, b: number | null) =>
  a === null ? b : b === null ? a : Math.round((a + b) * CLK_TCK) / CLK_TCK;

const round1 = (x: number) => Math.round(x * 10) / 10;
