/**
 * What Redis spends per message: `INFO commandstats` (calls and CPU µs per command, as Redis
 * itself counts them) before and after a phase. Redis is shared, so this is only meaningful
 * while nothing else uses it heavily; BENCHMARKS.md says so.
 */

export type CommandStats = Map<string, { calls: number; usec: number }>;

export function parseCommandStats(info: string): CommandStats {
  const out: CommandStats = new Map();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

export interface RedisCost {
  /** Redis CPU in command execution (not its network I/O) per acked message, in µs. */
  usecPerMessage: number;
  /** Commands per acked message (a script's own redis.call()s are counted too), and script calls (EVALSHA/EVAL/FCALL). */
  callsPerMessage: number;
  scriptsPerMessage: number;
  /** The commands that took most of that time, e.g. `evalsha 71%, scan 5%`. */
  top: string;
}

export function redisCost(before: CommandStats, after: CommandStats, messages: number): RedisCost | null {
  if (messages <= 0) return null;
  const delta = [...after].map(([cmd, a]) => {
    const b = before.get(cmd) ?? { calls: 0, usec: 0 };
    return { cmd, calls: a.calls - b.calls, usec: a.usec - b.usec };
  });
  const usec = delta.reduce((s, d) => s + d.usec, 0);
  const calls = delta.reduce((s, d) => s + d.calls, 0);
  const scripts = delta.filter((d) => /^(evalsha|eval|fcall)/.test(d.cmd)).reduce((s, d) => s + d.calls, 0);
  const round1 = (x: number) => Math.round(x * 10) / 10;
  return {
    usecPerMessage: round1(usec / messages),
    callsPerMessage: round1(calls / messages),
    scriptsPerMessage: round1(scripts / messages),
    top: delta
      .filter((d) => d.usec > 0)
      .sort((x, y) => y.usec - x.usec)
      .slice(0, 4)
      .map((d) => `${d.cmd} ${Math.round((100 * d.usec) / Math.max(1, usec))}%`)
      .join(', '),
  };
}

/** Several nodes' commandstats added up per command (a cluster's masters). */
export function mergeCommandStats(all: readonly CommandStats[]): CommandStats {
  const out: CommandStats = new Map();
  for (const stats of all) {
    for (const [cmd, s] of stats) {
      const seen = out.get(cmd);
      out.set(cmd, seen ? { calls: seen.calls + s.calls, usec: seen.usec + s.usec } : { ...s });
    }
  }
  return out;
}
