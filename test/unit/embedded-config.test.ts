import { describe, expect, it } from 'vitest';
import { assertSupported, ConfigError, embeddedServers, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startApi } from '../../src/main.js';
import { startWorkers } from '../../workers/main.js';

describe('config for npm start on a bare machine', () => {
  it('runs its own servers exactly for the settings left unset', () => {
    const servers = (env: Record<string, string>) => embeddedServers(loadConfig(env), env);
    expect(servers({})).toEqual({ postgres: true, redis: true });
    expect(servers({ DATABASE_URL: 'postgres://db.example/parley' })).toEqual({ postgres: false, redis: true });
    expect(servers({ REDIS_URL: 'redis://cache.example:6379' })).toEqual({ postgres: true, redis: false });
    expect(servers({ REDIS_CLUSTER_NODES: 'a.example:7000,b.example:7001' })).toEqual({ postgres: true, redis: false });
    expect(servers({ REDIS_ENABLED: 'false' })).toEqual({ postgres: true, redis: false });
    expect(servers({ REDIS_CLUSTER_NODES: '' })).toEqual({ postgres: true, redis: true });
  });

  it('parses REDIS_CLUSTER_NODES as host:port seeds, and refuses a malformed one by name', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'a.example:7000, [::1]:7001' }).REDIS_CLUSTER_NODES).toEqual([
      'a.example:7000',
      '[::1]:7001',
    ]);
    expect(loadConfig({ REDIS_CLUSTER_NODES: '' }).REDIS_CLUSTER_NODES).toBeUndefined();
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a.example' })).toThrow(
      /REDIS_CLUSTER_NODES: must be comma-separated host:port seeds/,
    );
  });

  it('runs on a Redis Cluster only with a hash-tagged QUEUE_PREFIX (every key of a queue in one slot)', () => {
    const cluster = { REDIS_CLUSTER_NODES: 'a.example:7000' };
    expect(() => assertSupported(loadConfig(cluster))).not.toThrow();
    expect(() => assertSupported(loadConfig({ ...cluster, QUEUE_PREFIX: 'jobs' }))).toThrow(ConfigError);
    expect(() => assertSupported(loadConfig({ ...cluster, QUEUE_PREFIX: 'jobs' }))).toThrow(
      /QUEUE_PREFIX: on Redis Cluster it must hold a hash tag, e\.g\. \{jobs\}/,
    );
    expect(() => assertSupported(loadConfig({ ...cluster, QUEUE_PREFIX: 'app{jobs}' }))).not.toThrow();
    expect(() => assertSupported(loadConfig({ QUEUE_PREFIX: 'jobs' }))).not.toThrow();
  });

  it('has the api and the workers refuse what they cannot run, before they connect to anything', async () => {
    const logger = createLogger('silent', 'test');
    // Nothing listens on these: a process that tried to connect would fail otherwise, or hang.
    const nowhere = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1' };
    const cluster = { ...nowhere, REDIS_CLUSTER_NODES: 'a.example:7000', QUEUE_PREFIX: 'jobs' };
    await expect(startApi(loadConfig(cluster), logger)).rejects.toThrow(/QUEUE_PREFIX: on Redis Cluster/);
    await expect(startWorkers(loadConfig(cluster), logger)).rejects.toThrow(/QUEUE_PREFIX: on Redis Cluster/);
    await expect(startWorkers(loadConfig({ ...nowhere, REDIS_ENABLED: 'false' }), logger)).rejects.toThrow(
      /the workers need Redis/,
    );
  });

  it('keeps the data of its own servers in ./.parley unless told otherwise', () => {
    expect(loadConfig({}).PARLEY_DATA_DIR).toBe('./.parley');
    expect(loadConfig({}).REDIS_ENABLED).toBe(true);
  });
});
