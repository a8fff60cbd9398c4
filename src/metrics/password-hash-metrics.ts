import { Counter, Gauge, type Registry } from 'prom-client';

/** The counts the password hash gate (services/hash-gate.ts) keeps, read at each scrape. */
type HashCounts = Readonly<Record<'active' | 'waiting' | 'activeMax' | 'refused', number>>;

const GAUGES: [name: string, help: string, field: 'active' | 'waiting' | 'activeMax'][] = [
  ['parley_password_hashes_active', 'Password hashes being computed now', 'active'],
  ['parley_password_hashes_waiting', 'Password hashes waiting for a slot', 'waiting'],
  // Stays at PASSWORD_HASH_CONCURRENCY or below: the proof that the bound holds under a flood.
  ['parley_password_hashes_active_max', 'Most password hashes computed at once since the process started', 'activeMax'],
];

/** The password hash gate on /metrics, read from its stats at each scrape. */
export function createPasswordHashMetrics(registry: Registry, stats: () => HashCounts): void {
  const registers = [registry];
  for (const [name, help, field] of GAUGES) {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(stats()[field]);
      },
    });
  }
  let reported = 0;
  new Counter({
    name: 'parley_password_hashes_refused_total',
    help: 'Logins and registrations refused (503) because the hash queue was full',
    registers,
    collect() {
      const refused = stats().refused;
      this.inc(refused - reported);
      reported = refused;
    },
  });
}
