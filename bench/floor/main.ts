/**
 * The floor: a bare relay the load benchmark measures Parley against (BENCHMARKS.md, "The
 * floor"). Started by the bench as a child process, like Parley's entry points: it prints
 * `floor relay listening on URL` once it serves, and stops on SIGTERM. Settings come from the
 * environment the bench sets (FLOOR_*), so that nothing of Parley's configuration applies.
 */
import { Redis } from 'ioredis';
import { createRelay } from './relay.js';

/**
 * Read by hand rather than with zod, so that the floor carries nothing but ws and ioredis (zod
 * alone is ~5 MB of RSS, which would count against the floor).
 */
function setting(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`floor: ${name} must be set`);
  return value;
}
const port = Number(setting('FLOOR_PORT', '0'));
if (!Number.isInteger(port) || port < 0 || port > 65535)
  throw new Error(`floor: FLOOR_PORT must be a port number, not ${process.env.FLOOR_PORT}`);
const env = {
  FLOOR_REDIS_URL: setting('FLOOR_REDIS_URL'),
  FLOOR_REDIS_PASSWORD: process.env.FLOOR_REDIS_PASSWORD || undefined,
  /** Every key and channel of this floor starts with it (the bench removes them afterwards). */
  FLOOR_KEY_PREFIX: setting('FLOOR_KEY_PREFIX'),
  FLOOR_HOST: setting('FLOOR_HOST', '127.0.0.1'),
  FLOOR_PORT: port,
};

// As Parley's api does: commands are pipelined automatically, and a subscriber has its own connection.
// No auto-pipelining: measured faster for this load (ack p99 2-4 ms against 3-5, 118 µs of CPU per
// message against 152), so the floor is the best a bare relay does here.
const options = { password: env.FLOOR_REDIS_PASSWORD, enableAutoPipelining: false, maxRetriesPerRequest: 3 };
const redis = new Redis(env.FLOOR_REDIS_URL, { ...options, connectionName: 'floor-relay' });
const subscriber = new Redis(env.FLOOR_REDIS_URL, { ...options, connectionName: 'floor-relay-sub' });
for (const client of [redis, subscriber])
  client.on('error', (err: Error) => console.error(`floor: redis: ${err.message}`));

const relay = createRelay({ redis, subscriber, keyPrefix: env.FLOOR_KEY_PREFIX });
await relay.start();
const url = await relay.listen(env.FLOOR_PORT, env.FLOOR_HOST);
console.log(`floor relay listening on ${url}`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void relay
      .close()
      .then(() => Promise.all([redis.quit(), subscriber.quit()]))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}
