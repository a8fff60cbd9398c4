import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterNode,
  type PrivateCluster,
  startPrivateCluster,
  sweepAbandonedClusters,
} from '../../scripts/faults/private-services.js';
import { loadConfig } from '../../src/config.js';
import { createRedisCluster } from '../../src/infra/clients.js';
import { clusterKeySlot } from '../../src/infra/cluster-slot.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The local Redis Cluster the cluster tests run on (scripts/faults/private-services.ts): three
 * masters with a replica each on free ports, reached through createRedisCluster's clients, with
 * what the code will rely on checked against it: slots and hash tags, scripts, sharded pub/sub,
 * BullMQ, a master SIGKILLed and its replica taking over, and nothing left behind.
 */
const run = promisify(execFile);

/** The pids of processes whose command line names one of the ports (pgrep -f). */
async function processesOn(ports: readonly number[]): Promise<string[]> {
  const found = await Promise.all(
    ports.map((port) =>
      run('pgrep', ['-f', `redis-server.*:${port}\\b`]).then(
        ({ stdout }) => stdout.split('\n').filter(Boolean),
        (err: { code?: number }) => {
          if (err.code === 1) return []; // pgrep: nothing matched
          throw err;
        },
      ),
    ),
  );
  return found.flat();
}

function connected(client: Cluster): Promise<Cluster> {
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('end', () => reject(new Error('the cluster client ended before ready')));
  });
}

/** A key (prefix + n) whose slot a given master serves. */
async function keyOn(cluster: PrivateCluster, master: ClusterNode, prefix: string): Promise<string> {
  for (let n = 0; ; n++) {
    const key = `${prefix}${n}`;
    if ((await cluster.masterOf(key)) === master) return key;
  }
}

describe('a private Redis Cluster of 3 masters with a replica each', () => {
  let cluster: PrivateCluster;
  let commands: Cluster;
  let subscriber: Cluster;
  const clients: Cluster[] = [];
  const errors: string[] = [];
  let masters: ClusterNode[];

  beforeAll(async () => {
    cluster = await startPrivateCluster({ masters: 3, replicasPerMaster: 1 });
    console.log(`cluster of 6 nodes (3 masters, 3 replicas) up in ${cluster.startupMs} ms`);
    const config = loadConfig({ REDIS_CLUSTER_NODES: cluster.seedList });
    const make = (role: 'command' | 'subscriber' | 'queue') => {
      const c = createRedisCluster(config, role, 'harness');
      c.on('error', (err: Error) => errors.push(`${role}: ${err.message}`));
      clients.push(c);
      return c;
    };
    [commands, subscriber] = await Promise.all([connected(make('command')), connected(make('subscriber'))]);
    const seen = new Set<ClusterNode>();
    for (let slot = 0; slot < 16384; slot += 1000) seen.add(await cluster.masterOf(slot));
    masters = [...seen];
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.destroy();
  });

  it('runs on free ports of its own, 3 masters each with one live replica, the seeds as REDIS_CLUSTER_NODES takes them', async () => {
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.nodes.map((n) => n.port)).not.toContain(6379);
    expect(cluster.seedList).toBe(cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(','));
    expect(loadConfig({ REDIS_CLUSTER_NODES: cluster.seedList }).REDIS_CLUSTER_NODES).toEqual(cluster.seeds);
    expect(masters).toHaveLength(3);
    for (const m of masters) expect(await cluster.replicasOf(m)).toHaveLength(1);
    expect(
      commands
        .nodes('master')
        .map((n) => n.options.port)
        .sort(),
    ).toEqual(masters.map((m) => m.port).sort());
  });

  it('computes the slot of a key as the server does, hash tags included', async () => {
    const keys = ['foo', '123456789', '{user1000}.following', 'x{}y', '{}{a}', 'a{b}{c}', '{', 'chat:{é}:log', ''];
    for (const key of keys) {
      expect(clusterKeySlot(key), key).toBe(await commands.cluster('KEYSLOT', key));
    }
    expect(clusterKeySlot('123456789')).toBe(0x31c3 % 16384);
    expect(clusterKeySlot('{chat:7}:messages')).toBe(clusterKeySlot('{chat:7}:rev'));
  });

  it('stores keys on the slots of every master; keys with one hash tag share a slot, and a command across slots is refused', async () => {
    const spread = await Promise.all(masters.map((m) => keyOn(cluster, m, 'spread:')));
    for (const key of spread) await commands.set(key, `v-${key}`);
    for (const key of spread) expect(await commands.get(key)).toBe(`v-${key}`);
    expect(new Set(spread.map(clusterKeySlot)).size).toBe(3);

    const tagged = ['{chat:42}:a', '{chat:42}:b'];
    expect(clusterKeySlot(tagged[0] ?? '')).toBe(clusterKeySlot(tagged[1] ?? ''));
    await commands.mset(tagged[0] ?? '', '1', tagged[1] ?? '', '2');
    expect(await commands.mget(...tagged)).toEqual(['1', '2']);

    await expect(commands.mget(...spread)).rejects.toThrow(/^CROSSSLOT/);
  });

  it('runs a Lua script over two keys of one hash tag (EVALSHA, loaded on first use), and refuses one over two slots', async () => {
    commands.defineCommand('harnessMove', {
      numberOfKeys: 2,
      lua: "local v = redis.call('GET', KEYS[1]); redis.call('SET', KEYS[2], v); redis.call('DEL', KEYS[1]); return v",
    });
    const move = (commands as unknown as Record<string, (...a: string[]) => Promise<unknown>>).harnessMove;
    if (!move) throw new Error('harnessMove not defined');
    await commands.set('{chat:9}:from', 'payload');
    expect(await move.call(commands, '{chat:9}:from', '{chat:9}:to')).toBe('payload');
    expect(await commands.get('{chat:9}:to')).toBe('payload');
    expect(await commands.exists('{chat:9}:from')).toBe(0);

    const [a, b] = await Promise.all([
      keyOn(cluster, masters[0] as ClusterNode, 'lua:'),
      keyOn(cluster, masters[1] as ClusterNode, 'lua:'),
    ]);
    await expect(move.call(commands, a, b)).rejects.toThrow(/^CROSSSLOT/);
  });

  it('refuses a pipeline whose keys live on two masters (ioredis checks before sending)', async () => {
    const [a, b] = await Promise.all([
      keyOn(cluster, masters[0] as ClusterNode, 'pipe:'),
      keyOn(cluster, masters[1] as ClusterNode, 'pipe:'),
    ]);
    await expect(commands.pipeline().set(a, '1').set(b, '2').exec()).rejects.toThrow(/same slots allocation group/);
    const results = await commands.pipeline().set('{chat:3}:x', '1').set('{chat:3}:y', '2').exec();
    expect(results?.map(([err]) => err)).toEqual([null, null]);
  });

  it('delivers SPUBLISH to SSUBSCRIBE on sharded channels of every master, each on its slot master', async () => {
    const channels = await Promise.all(masters.map((m) => keyOn(cluster, m, 'channel:chat-messages:{chat-')));
    const got: [string, string][] = [];
    subscriber.on('smessage', (channel: string, message: string) => got.push([channel, message]));
    for (const ch of channels) await subscriber.ssubscribe(ch);
    for (const [i, ch] of channels.entries()) {
      // One receiver: the subscriber's connection to the master of the channel's slot.
      expect(await commands.spublish(ch, `m${i}`)).toBe(1);
    }
    await waitFor(() => got.length === channels.length, 'three sharded messages');
    // Each on its own master's subscriber connection: in any order.
    expect([...got].sort()).toEqual(channels.map((ch, i): [string, string] => [ch, `m${i}`]).sort());
    for (const [i, ch] of channels.entries()) {
      const owner = masters[i] as ClusterNode;
      const reply = (await commands
        .nodes('master')
        .find((n) => n.options.port === owner.port)
        ?.call('PUBSUB', 'SHARDNUMSUB', ch)) as [string, number];
      expect(reply).toEqual([ch, 1]);
    }
    // ioredis takes several channels in one SSUBSCRIBE only when they share a slot.
    await expect(subscriber.ssubscribe(...channels)).rejects.toThrow(/same slot/);
    for (const ch of channels) await subscriber.sunsubscribe(ch);
    for (const ch of channels) expect(await commands.spublish(ch, 'after')).toBe(0);
  });

  it('also carries a classic channel (system events) on the same subscriber client: PUBLISH reaches it from any master', async () => {
    const got: string[] = [];
    subscriber.on('message', (ch: string, m: string) => ch === 'channel:system' && got.push(m));
    await subscriber.subscribe('channel:system');
    // Classic pub/sub goes over the cluster bus to every node: a PUBLISH on any master counts the
    // subscriber only where its connection is, and is delivered either way.
    for (const m of masters) {
      await commands
        .nodes('master')
        .find((n) => n.options.port === m.port)
        ?.publish('channel:system', `via ${m.port}`);
    }
    await waitFor(() => got.length === 3, 'the system messages through every master');
    // Each over its own node's bus hop: in any order.
    expect([...got].sort()).toEqual(masters.map((m) => `via ${m.port}`).sort());
    await subscriber.unsubscribe('channel:system');
  });

  it('runs BullMQ queues and workers on the queue-role cluster connection: a hash-tagged prefix, or hash-tagged queue names on masters of their own', async () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: cluster.seedList });
    const connection = createRedisCluster(config, 'queue', 'harness');
    clients.push(connection);
    // One prefix hash tag: every queue under it in one slot. Or a plain prefix and one hash tag
    // per queue name (`prefix:{name}:...`): queues spread over the masters.
    const [tagA, tagB] = await Promise.all([
      keyOn(cluster, masters[0] as ClusterNode, 'persist-'),
      keyOn(cluster, masters[1] as ClusterNode, 'persist-'),
    ]);
    const layouts = [
      { prefix: '{harness-q}', name: 'work' },
      { prefix: 'harness-q', name: `{${tagA}}` },
      { prefix: 'harness-q', name: `{${tagB}}` },
    ];
    const done: unknown[] = [];
    const running = layouts.map(({ prefix, name }) => ({
      queue: new Queue(name, { connection, prefix }),
      worker: new Worker(name, async (job) => (done.push(job.data), job.data as unknown), { connection, prefix }),
    }));
    try {
      for (const [i, { queue }] of running.entries()) {
        await queue.add('one', { q: i, n: 1 });
        await queue.add('two', { q: i, n: 2 });
      }
      await waitFor(() => done.length === 6, 'six jobs processed');
      expect(done).toHaveLength(6);
      for (let i = 0; i < 3; i++) {
        expect(done.filter((d) => (d as { q: number }).q === i)).toEqual([
          { q: i, n: 1 },
          { q: i, n: 2 },
        ]);
      }
      // The per-name hash tags put the two queues' keys on the two masters.
      expect(await cluster.masterOf(`harness-q:{${tagA}}:wait`)).toBe(masters[0]);
      expect(await cluster.masterOf(`harness-q:{${tagB}}:wait`)).toBe(masters[1]);
    } finally {
      for (const { worker, queue } of running) {
        await worker.close();
        await queue.close();
      }
    }
  });

  it('survives a master SIGKILLed: its replica takes over, a write acknowledged by WAIT is read back, sharded subscriptions move', async () => {
    const victim = masters[0] as ClusterNode;
    const [replica] = await cluster.replicasOf(victim);
    const key = await keyOn(cluster, victim, 'durable:');
    const channel = await keyOn(cluster, victim, 'channel:chat-messages:{fo-');
    const got: string[] = [];
    subscriber.on('smessage', (ch: string, message: string) => ch === channel && got.push(message));
    await subscriber.ssubscribe(channel);
    expect(await commands.spublish(channel, 'before')).toBe(1);
    await waitFor(() => got.includes('before'), 'the message before the failover');

    // Replication is asynchronous: WAIT, on the write's own connection (so in its pipeline:
    // WAIT has no key and would go to any node), returns once the replica holds the write.
    const replies = await commands.pipeline().set(key, 'kept').call('WAIT', 1, 5000).exec();
    expect(replies).toEqual([
      [null, 'OK'],
      [null, 1],
    ]);

    const killedAt = Date.now();
    await cluster.killMaster(key);
    expect(victim.alive()).toBe(false);
    // The command connection fails fast meanwhile (no offline queue, no retries): how fast is logged.
    const t0 = Date.now();
    const during = await commands.get(key).then(
      (v) => `answered ${String(v)}`,
      (err: Error) => `failed: ${err.message}`,
    );
    console.log(`GET on the killed master's slot: ${during} after ${Date.now() - t0} ms`);

    const promoted = await cluster.waitForFailover(key, victim);
    console.log(`failover: ${replica?.address} serves the slot ${Date.now() - killedAt} ms after the kill`);
    expect(promoted).toBe(replica);
    await waitFor(
      () => commands.get(key).catch(() => undefined),
      'the key through the command client after the failover',
    ).then((v) => expect(v).toBe('kept'));

    // The sharded subscriber re-subscribes on the new master (ioredis refreshes its slots when its
    // subscriber connection ends): a message published now arrives.
    await waitFor(
      async () => (await commands.spublish(channel, 'after').catch(() => 0)) === 1 && got.includes('after'),
      'a sharded message after the failover',
      { intervalMs: 100 },
    );

    // The killed node comes back as the new master's replica.
    await victim.start();
    await cluster.waitUntilOk();
    expect(await cluster.masterOf(key)).toBe(promoted);
    expect(await cluster.replicasOf(promoted)).toEqual([victim]);
  });

  it('destroy() leaves no redis-server and no directory behind', async () => {
    const ports = cluster.nodes.map((n) => n.port);
    expect(await processesOn(ports)).toHaveLength(6);
    await cluster.destroy();
    expect(await processesOn(ports)).toEqual([]);
    expect(cluster.nodes.every((n) => !n.alive())).toBe(true);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});

describe('a master without a replica SIGKILLed (3 masters, AOF fsynced on every write)', () => {
  let cluster: PrivateCluster;
  const clients: Cluster[] = [];

  beforeAll(async () => {
    cluster = await startPrivateCluster({ masters: 3, aof: 'always' });
    console.log(`cluster of 3 masters up in ${cluster.startupMs} ms`);
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.destroy();
  });

  it("fails only that master's slots, fast, and serves them again with their data and sharded subscriptions once it restarts", async () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: cluster.seedList });
    const errors: string[] = [];
    const make = (role: 'command' | 'subscriber') => {
      const c = createRedisCluster(config, role, 'harness');
      c.on('error', (err: Error) => errors.push(err.message));
      clients.push(c);
      return connected(c);
    };
    const [commands, subscriber] = await Promise.all([make('command'), make('subscriber')]);
    const victim = await cluster.masterOf(0);
    const survivor = await cluster.masterOf(16383);
    const [deadKey, liveKey, deadChannel, liveChannel] = await Promise.all([
      keyOn(cluster, victim, 'k:'),
      keyOn(cluster, survivor, 'k:'),
      keyOn(cluster, victim, 'channel:chat-messages:{c-'),
      keyOn(cluster, survivor, 'channel:chat-messages:{c-'),
    ]);
    await commands.set(deadKey, 'on-disk');
    await commands.set(liveKey, 'live');
    const got: [string, string][] = [];
    subscriber.on('smessage', (ch: string, m: string) => got.push([ch, m]));
    await subscriber.ssubscribe(deadChannel);
    await subscriber.ssubscribe(liveChannel);

    await cluster.killMaster(victim);
    const t0 = Date.now();
    await expect(commands.get(deadKey)).rejects.toThrow();
    console.log(`a command on the dead master's slot failed after ${Date.now() - t0} ms`);
    // The other masters serve on, past the node timeout (the dead master's FAIL): no CLUSTERDOWN.
    await waitFor(
      async () =>
        /cluster_state:ok/.test(
          String(
            await commands
              .nodes('master')
              .find((n) => n.options.port === survivor.port)
              ?.cluster('INFO'),
          ),
        ) &&
        (await cluster.masterOf(0).then(
          () => false,
          () => true,
        )),
      'the dead master flagged FAIL, the cluster still ok',
    );
    expect(await commands.get(liveKey)).toBe('live');
    await commands.set(liveKey, 'still live');
    expect(await commands.spublish(liveChannel, 'while one master is dead')).toBe(1);
    await waitFor(() => got.some(([, m]) => m === 'while one master is dead'), 'a sharded message on a live master');
    await expect(commands.get(deadKey)).rejects.toThrow();

    await victim.start();
    await cluster.waitUntilOk();
    expect(await cluster.masterOf(0)).toBe(victim);
    await waitFor(() => commands.get(deadKey).catch(() => undefined), 'the dead slot served again').then((v) =>
      expect(v).toBe('on-disk'),
    );
    await waitFor(
      async () =>
        (await commands.spublish(deadChannel, 'back').catch(() => 0)) === 1 && got.some(([, m]) => m === 'back'),
      'the sharded subscription on the restarted master',
      { intervalMs: 100 },
    );
    expect(got.filter(([ch]) => ch === deadChannel).map(([, m]) => m)).toEqual(expect.arrayContaining(['back']));
  });
});

describe('a cluster whose owner was SIGKILLed', () => {
  it('is swept, its redis-servers killed, by the next start (sweepAbandonedClusters)', async () => {
    // A process that starts a cluster, prints it, and is then SIGKILLed: no destroy(), no exit handler.
    const source = [
      `import { startPrivateCluster } from ${JSON.stringify(new URL('../../scripts/faults/private-services.ts', import.meta.url).pathname)};`,
      'const c = await startPrivateCluster({ masters: 3 });',
      'console.log(JSON.stringify({ dir: c.dir, ports: c.nodes.map((n) => n.port) }));',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', source], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let ports: number[] = [];
    let dir = '';
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      ({ ports, dir } = JSON.parse(line) as { dir: string; ports: number[] });
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    expect(await processesOn(ports)).toHaveLength(3);
    expect(existsSync(dir)).toBe(true);
    sweepAbandonedClusters();
    await waitFor(async () => (await processesOn(ports)).length === 0, 'the orphaned nodes to be killed');
    expect(existsSync(dir)).toBe(false);
  });
});
