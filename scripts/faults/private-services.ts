import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { CLUSTER_SLOTS, clusterKeySlot } from '../../src/infra/cluster-slot.js';
import { freePort } from '../embedded/serving.js';

/**
 * Private Redis and PostgreSQL servers on free ports, for tests and the fault checker that kill
 * and restart them. The machine's shared servers are never touched.
 */
const run = promisify(execFile);

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (with its AOF, if on). */
  start(): Promise<void>;
  /** Deletes its data directory: the next start is empty, as after a disk loss. */
  wipe(): void;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

export async function startPrivateRedis({ aof }: { aof: boolean }): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  let proc: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;

  const alive = () => proc !== undefined && proc.exitCode === null && proc.signalCode === null;

  async function start(): Promise<void> {
    if (alive()) return;
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--dir',
        dir,
        '--appendonly',
        aof ? 'yes' : 'no',
        '--appendfsync',
        'everysec',
        '--maxmemory-policy',
        'noeviction',
        '--logfile',
        join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    await until(async () => {
      if (!alive()) throw new Error(`redis-server on ${port} exited at start`);
      const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }, `redis on ${port}`);
  }

  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  }

  await start();
  return {
    url,
    port,
    kill,
    start,
    wipe: () => {
      for (const f of readdirSync(dir)) if (f !== 'redis.log') rmSync(join(dir, f), { recursive: true, force: true });
    },
    async destroy() {
      await kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every cluster node this process started: killed when it exits, however its tests ended. */
const clusterNodeProcs = new Set<ChildProcess>();
process.on('exit', () => clusterNodeProcs.forEach((p) => p.kill('SIGKILL')));

const CLUSTER_DIR_PREFIX = 'parley-cluster-';
const HOST = '127.0.0.1';

/** One command on a short-lived connection of its own to a node (the harness's admin channel). */
async function nodeCall(port: number, command: string, ...args: (string | number)[]): Promise<unknown> {
  const c = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 2000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await c.call(command, ...args);
  } finally {
    c.disconnect();
  }
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

interface NodeEntry {
  id: string;
  port: number;
  flags: string[];
  masterId: string | null;
  ranges: [number, number][];
}

/** CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...` */
function parseClusterNodes(text: string): NodeEntry[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', addr = '', flags = '', master = '-', ...rest] = line.trim().split(' ');
      const ranges = rest
        .slice(4)
        .filter((s) => !s.startsWith('[')) // [slot->-id] / [slot-<-id]: a slot being migrated
        .map((s): [number, number] => {
          const [a, b] = s.split('-');
          return [Number(a), Number(b ?? a)];
        });
      const port = Number(addr.split('@')[0]?.split(':').at(-1));
      return { id, port, flags: flags.split(','), masterId: master === '-' ? null : master, ranges };
    });
}

const owns = (entry: NodeEntry, slot: number) => entry.ranges.some(([a, b]) => slot >= a && slot <= b);

/**
 * Kills the redis-servers of clusters whose owning process died without destroy() or its exit
 * handler (a test run SIGKILLed), and removes their directories. startPrivateCluster runs it first.
 */
export function sweepAbandonedClusters(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(CLUSTER_DIR_PREFIX)) continue;
    const root = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(root, 'owner.pid'), 'utf8'));
    } catch {
      continue; // being made right now, or not ours
    }
    try {
      process.kill(owner, 0);
      continue; // its owner is alive: its own destroy() or exit handler cleans it up
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    for (const node of readdirSync(root)) {
      const pidFile = join(root, node, 'server.pid');
      if (!existsSync(pidFile)) continue;
      const [pid, port] = readFileSync(pidFile, 'utf8').split(' ').map(Number);
      if (pid === undefined || port === undefined) continue;
      // Only a redis-server on that port (its title is `redis-server 127.0.0.1:PORT [cluster]`),
      // never whatever process got the pid since.
      const title = (() => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      })();
      if (title.includes('redis-server') && title.includes(`:${port}`)) process.kill(pid, 'SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  }
}

export interface ClusterNode {
  readonly port: number;
  /** The cluster bus port (--cluster-port), a free port of its own rather than port + 10000. */
  readonly busPort: number;
  /** `127.0.0.1:PORT`, the form of a REDIS_CLUSTER_NODES seed. */
  readonly address: string;
  /** The node's cluster id (kept in its nodes.conf across restarts). */
  readonly id: string;
  alive(): boolean;
  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on its ports and directory: it rejoins the cluster (a replica, if it lost its slots). */
  start(): Promise<void>;
}

/** A slot (a number), a key whose slot is meant (a string), or a node. */
export type ClusterTarget = number | string | ClusterNode;

export interface PrivateCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's `host:port`; `seeds.join(',')` is a REDIS_CLUSTER_NODES value. */
  readonly seeds: readonly string[];
  /** `seeds` comma-separated: the REDIS_CLUSTER_NODES value. */
  readonly seedList: string;
  /** How long startPrivateCluster took, in ms. */
  readonly startupMs: number;
  /** The directory of the nodes' directories (removed by destroy). */
  readonly dir: string;
  slotOf(key: string): number;
  /** The master serving a slot (or a key's slot), as a live node sees the cluster now. */
  masterOf(target: number | string): Promise<ClusterNode>;
  /** The nodes replicating a master, as a live node sees the cluster now. */
  replicasOf(master: ClusterNode): Promise<ClusterNode[]>;
  /** SIGKILLs (or `signal`s) the master of a slot or key, or the given node; resolves with the node killed. */
  killMaster(target: ClusterTarget, signal?: NodeJS.Signals): Promise<ClusterNode>;
  /**
   * Waits until a live node other than `from` (a killed master) serves the slot and the whole
   * cluster is ok again (waitUntilOk); resolves with the new master.
   */
  waitForFailover(target: number | string, from: ClusterNode, timeoutMs?: number): Promise<ClusterNode>;
  /**
   * Waits until every live node says cluster_state:ok with all 16384 slots assigned and ok,
   * knows every node, and agrees with the others on which node serves which slot; every slot is
   * served by a live master; every live replica is linked to its master.
   */
  waitUntilOk(timeoutMs?: number): Promise<void>;
  /** Kills every node and removes their directories. */
  destroy(): Promise<void>;
}

export interface PrivateClusterOptions {
  masters?: number;
  replicasPerMaster?: 0 | 1;
  /**
   * appendonly yes on every node: true or 'everysec' fsyncs every second (a SIGKILL loses up to
   * the last second of writes), 'always' before each reply (none).
   */
  aof?: boolean | 'everysec' | 'always';
  /** cluster-node-timeout: how long a master is unreachable before its replica takes over. */
  nodeTimeoutMs?: number;
  /**
   * cluster-require-full-coverage. Off by default here (Redis's default is on): with it on, the
   * whole cluster answers CLUSTERDOWN while any slot has no master, that is for good when a
   * master without a replica dies, and for the second or so of every failover between the
   * master's FAIL and its replica's promotion (measured: commands on the other masters' slots
   * failed then too). Off, only the dead master's slots fail, as the contract's degraded modes
   * expect of a cluster.
   */
  requireFullCoverage?: boolean;
}

/**
 * A Redis Cluster of private redis-servers on free ports (the shared Redis on 6379 is never
 * touched), made by `redis-cli --cluster create`, ready (waitUntilOk) when this resolves.
 * Measured here: 2-3 s for 3 masters, with a replica each or not. The floor is Redis's: a new
 * master reports cluster_state:ok no sooner than 2 s after it started (CLUSTER_WRITABLE_DELAY);
 * redis-cli's create sleeps a second, then a second more per check until the nodes agree.
 */
export async function startPrivateCluster({
  masters = 3,
  replicasPerMaster = 0,
  aof = false,
  nodeTimeoutMs = 2000,
  requireFullCoverage = false,
}: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const began = Date.now();
  sweepAbandonedClusters();
  const root = mkdtempSync(join(tmpdir(), CLUSTER_DIR_PREFIX));
  writeFileSync(join(root, 'owner.pid'), String(process.pid));
  const nodes: (ClusterNode & { refreshId(): Promise<void> })[] = [];

  for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
    const port = await freePort();
    const busPort = await freePort();
    const dir = join(root, String(port));
    mkdirSync(dir);
    let proc: ChildProcess | undefined;
    let id = '';
    const alive = () => proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    nodes.push({
      port,
      busPort,
      address: `${HOST}:${port}`,
      get id() {
        return id;
      },
      alive,
      async start() {
        if (alive()) return;
        const started = spawn(
          'redis-server',
          [
            ...['--port', String(port), '--bind', HOST, '--dir', dir, '--logfile', join(dir, 'redis.log')],
            ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
            ...['--cluster-port', String(busPort), '--cluster-node-timeout', String(nodeTimeoutMs)],
            // A replica takes over however long it was cut off from its master (the tests kill
            // masters at will).
            ...['--cluster-replica-validity-factor', '0'],
            ...['--cluster-require-full-coverage', requireFullCoverage ? 'yes' : 'no'],
            // A replica's first sync starts at once (the default waits 5 s for more replicas).
            ...['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
            // A master pings its replicas every second (default 10): CLUSTER SLOTS lists a
            // replica only once the gossip carries an offset past 0, which on an idle master
            // waits for that ping. (Not waited for at start: it takes 1-2 s more, and clients
            // reading from masters only do not need the replicas listed.)
            ...['--repl-ping-replica-period', '1'],
            ...['--save', '', '--appendonly', aof ? 'yes' : 'no'],
            ...['--appendfsync', aof === 'always' ? 'always' : 'everysec'],
            ...['--maxmemory-policy', 'noeviction'],
          ],
          { stdio: 'ignore' },
        );
        proc = started;
        clusterNodeProcs.add(started);
        started.once('exit', () => clusterNodeProcs.delete(started));
        if (started.pid !== undefined) writeFileSync(join(dir, 'server.pid'), `${started.pid} ${port}`);
        await until(async () => {
          if (!alive()) throw new Error(`redis-server on ${port} exited at start (see ${join(dir, 'redis.log')})`);
          return (await nodeCall(port, 'PING')) === 'PONG';
        }, `redis cluster node on ${port}`);
      },
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        if (!proc || !alive()) return;
        const exited = once(proc, 'exit');
        proc.kill(signal);
        await exited;
      },
      async refreshId() {
        id = String(await nodeCall(port, 'CLUSTER', 'MYID'));
      },
    });
  }

  let destroyed = false;
  async function destroy(): Promise<void> {
    if (destroyed) return;
    destroyed = true;
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    rmSync(root, { recursive: true, force: true });
  }

  const byPort = (port: number) => {
    const node = nodes.find((n) => n.port === port);
    if (!node) throw new Error(`port ${port} is no node of this cluster`);
    return node;
  };

  /** The cluster as the first live node that answers sees it. */
  async function view(): Promise<NodeEntry[]> {
    let last: unknown = new Error('no live node');
    for (const n of nodes.filter((n) => n.alive())) {
      try {
        return parseClusterNodes(String(await nodeCall(n.port, 'CLUSTER', 'NODES')));
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  const slotOf = (target: number | string) => (typeof target === 'number' ? target : clusterKeySlot(target));

  async function masterOf(target: number | string): Promise<ClusterNode> {
    const slot = slotOf(target);
    const entry = (await view()).find((e) => e.flags.includes('master') && !e.flags.includes('fail') && owns(e, slot));
    if (!entry) throw new Error(`no master serves slot ${slot}`);
    return byPort(entry.port);
  }

  async function replicasOf(master: ClusterNode): Promise<ClusterNode[]> {
    return (await view()).filter((e) => e.masterId === master.id).map((e) => byPort(e.port));
  }

  async function clusterOk(): Promise<boolean> {
    const live = nodes.filter((n) => n.alive());
    const maps = await Promise.all(
      live.map(async (n) => {
        const info = String(await nodeCall(n.port, 'CLUSTER', 'INFO'));
        const ok =
          infoField(info, 'cluster_state') === 'ok' &&
          infoField(info, 'cluster_slots_assigned') === String(CLUSTER_SLOTS) &&
          infoField(info, 'cluster_slots_ok') === String(CLUSTER_SLOTS) &&
          infoField(info, 'cluster_known_nodes') === String(nodes.length);
        if (!ok) return undefined;
        const entries = parseClusterNodes(String(await nodeCall(n.port, 'CLUSTER', 'NODES')));
        const me = entries.find((e) => e.flags.includes('myself'));
        if (me?.flags.includes('slave')) {
          const replication = String(await nodeCall(n.port, 'INFO', 'replication'));
          if (infoField(replication, 'master_link_status') !== 'up') return undefined;
        }
        const owners = entries.filter((e) => e.flags.includes('master') && e.ranges.length > 0);
        // Every slot on a master that is alive (a killed one is still listed until its FAIL).
        if (owners.some((e) => !byPort(e.port).alive() || e.flags.includes('fail'))) return undefined;
        // Every live node is known as a slot owner or as the replica of one (not yet a replica:
        // an empty master, as right after CLUSTER REPLICATE until the gossip carries it).
        const ownerPort = new Map(owners.map((e) => [e.id, e.port]));
        const roles: string[] = [];
        for (const e of entries) {
          if (!byPort(e.port).alive()) continue;
          if (e.flags.some((f) => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr'))
            return undefined;
          if (e.ranges.length > 0) roles.push(`${e.port}:${e.ranges.map(([a, b]) => `${a}-${b}`).join(',')}`);
          else if (e.flags.includes('slave') && e.masterId !== null && ownerPort.has(e.masterId))
            roles.push(`${e.port}>${ownerPort.get(e.masterId)}`);
          else return undefined;
        }
        return roles.sort().join(' ');
      }),
    );
    return maps.every((m) => m !== undefined && m === maps[0]);
  }

  const waitUntilOk = (timeoutMs = 30_000) => until(clusterOk, 'the cluster to be ok', timeoutMs);

  try {
    await Promise.all(nodes.map((n) => n.start()));
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => n.address),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    ).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    await waitUntilOk();
    await Promise.all(nodes.map((n) => n.refreshId()));
  } catch (err) {
    await destroy();
    throw err;
  }

  const seeds = nodes.map((n) => n.address);
  return {
    nodes,
    seeds,
    seedList: seeds.join(','),
    startupMs: Date.now() - began,
    dir: root,
    slotOf: (key) => clusterKeySlot(key),
    masterOf,
    replicasOf,
    async killMaster(target, signal = 'SIGKILL') {
      const node = typeof target === 'object' ? target : await masterOf(target);
      await node.kill(signal);
      return node;
    },
    async waitForFailover(target, from, timeoutMs = 30_000) {
      await waitUntilOk(timeoutMs);
      const master = await masterOf(target);
      if (master === from) throw new Error(`slot ${slotOf(target)} is still served by ${from.address}`);
      return master;
    },
    waitUntilOk,
    destroy,
  };
}

export interface PrivatePostgres {
  /** Base URL without a database name, e.g. postgres://postgres@127.0.0.1:PORT */
  baseUrl: string;
  /** Stops the server at once (immediate shutdown: no checkpoint, like a crash). */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

function pgBin(name: string): string {
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1);
  if (version === undefined) throw new Error('no PostgreSQL installed under /usr/lib/postgresql');
  return `/usr/lib/postgresql/${version}/bin/${name}`;
}

/** initdb and pg_ctl refuse to run as root: run them as the postgres user when we are root. */
async function asPostgres(cmd: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
  else await run(cmd, args);
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'parley-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  await asPostgres(pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const baseUrl = `postgres://postgres@127.0.0.1:${port}`;

  async function start(): Promise<void> {
    await asPostgres(pgBin('pg_ctl'), [
      '-D',
      data,
      '-w',
      '-l',
      join(dir, 'pg.log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
      'start',
    ]);
    await until(async () => {
      const c = new pg.Client({ connectionString: `${baseUrl}/postgres` });
      try {
        await c.connect();
        return true;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, `postgres on ${port}`);
  }

  async function stop(): Promise<void> {
    await asPostgres(pgBin('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  }

  await start();
  return {
    baseUrl,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
