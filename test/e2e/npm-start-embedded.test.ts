import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm install && npm start` on a machine with Node and nothing else: DATABASE_URL and REDIS_URL
 * unset, nothing listening on PostgreSQL's or Redis's ports. Each scenario runs in a network
 * namespace of its own (`unshare -n`, loopback only), so the machine's own servers are out of
 * reach, through test/fixtures/bare-machine-start.ts, whose report is asserted on here.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = 'test/fixtures/bare-machine-start.ts';
const dirs: string[] = [];

afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh folder; searchable by others, since as root PostgreSQL runs as the user postgres. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bare-'));
  chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}

/** The environment of a bare machine: none of the settings that name a server of one's own. */
function bareEnv(): NodeJS.ProcessEnv {
  const own = new Set([
    'DATABASE_URL',
    'REDIS_URL',
    'REDIS_PASSWORD',
    'REDIS_CLUSTER_NODES',
    'REDIS_ENABLED',
    'PARLEY_DATA_DIR',
    'DEGRADED_SEQ_GAP',
    'PORT',
  ]);
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !own.has(key)));
}

interface Report {
  portsInUse: { postgres: boolean; redis: boolean };
  first: {
    msToListening: number;
    summary: string[];
    servers: string[];
    readyz: unknown;
    ack: Msg;
    delivered: Msg;
    output: string;
  };
  firstStop: Stop;
  second?: {
    msToListening: number;
    summary: string[];
    login: number;
    retried?: Msg;
    next?: Msg;
    history?: string[];
    output: string;
  };
  secondStop?: Stop;
}
interface Msg {
  id: string;
  seq: number;
  body: string;
}
interface Stop {
  code: number | null;
  ms: number;
  left: string[];
}

/** Runs the fixture in a network namespace of its own; resolves with its report. */
function inBareNetwork(args: string[]): Promise<Report> {
  const script = `ip link set lo up && exec "${process.execPath}" --import tsx ${FIXTURE} ${args.map((a) => `'${a}'`).join(' ')}`;
  const child = spawn('unshare', ['-n', 'sh', '-c', script], {
    cwd: ROOT,
    env: bareEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as Report);
      } catch {
        reject(new Error(`the fixture exited ${code} without a report:\n${out}\n${err}`));
      }
    });
  });
}

describe('npm start on a bare machine', () => {
  it('runs its own PostgreSQL and redis-server, serves a chat, stops them on SIGTERM, and finds the chat on the next start', async () => {
    const dataDir = join(tempDir(), 'data');
    const r = await inBareNetwork([dataDir]);
    const context = `${r.first.output}\n${r.second?.output ?? ''}`;

    expect(r.portsInUse, 'the namespace is bare').toEqual({ postgres: false, redis: false });
    expect(
      r.first.summary.filter((l) => !l.includes('first start')),
      context,
    ).toEqual([
      expect.stringMatching(new RegExp(`^PostgreSQL: embedded PostgreSQL 15\\.\\d+, ${dataDir}/pg$`)),
      expect.stringMatching(new RegExp(`^Redis: redis-server \\d+\\.\\d+\\.\\d+ \\(child\\), ${dataDir}/redis$`)),
    ]);
    expect(r.first.servers).toContain('postgres');
    expect(r.first.servers.some((s) => s.startsWith('redis-server'))).toBe(true);
    expect(r.first.readyz).toEqual({ redis: true, postgres: true, mode: 'normal' });
    expect(r.first.ack).toMatchObject({ seq: 1, body: 'hello, bare machine' });
    expect(r.first.delivered.id).toBe(r.first.ack.id);
    // SIGTERM: a clean exit, and nothing it started (servers, their backends) left running.
    expect(r.firstStop, context).toMatchObject({ code: 0, left: [] });

    // The same folder again: the same cluster (no initdb), the same users and messages.
    expect(
      r.second?.summary.some((l) => l.includes('first start')),
      context,
    ).toBe(false);
    expect(r.second?.login).toBe(200);
    expect(r.second?.retried?.id, 'a retried send is the same message').toBe(r.first.ack.id);
    expect(r.second?.next?.seq).toBe(2);
    expect(r.second?.history).toEqual(['hello, bare machine', 'hello again']);
    expect(r.secondStop, context).toMatchObject({ code: 0, left: [] });

    // The generated passwords: kept private in the folder, and never printed.
    const secretsFile = join(dataDir, 'secrets.json');
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const secrets = JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, string>;
    for (const secret of Object.values(secrets)) expect(context).not.toContain(secret);
    // Its lock is released, and PostgreSQL has no Unix socket anywhere (the shared /tmp included).
    expect(existsSync(join(dataDir, 'npm-start.pid'))).toBe(false);
    expect(readFileSync(join(dataDir, 'pg.log'), 'utf8')).not.toMatch(/listening on Unix socket/);
  }, 120_000);

  it('runs PostgreSQL-only when there is no redis-server on the PATH, says so in one line, and a chat works', async () => {
    const dir = tempDir();
    const bin = nodeOnlyPath(dir);
    const r = await inBareNetwork([join(dir, 'data'), '--path', bin, '--once']);
    const context = r.first.output;

    expect(
      r.first.summary.filter((l) => l.startsWith('Redis: ')),
      context,
    ).toEqual([
      expect.stringMatching(
        /^Redis: none \(PostgreSQL-only mode: no redis-server on the PATH; .*apt install redis-server, then npm start again\)$/,
      ),
    ]);
    expect(r.first.servers.some((s) => s.startsWith('redis-server'))).toBe(false);
    expect(r.first.readyz).toEqual({ redis: false, postgres: true, mode: 'degraded' });
    // No Redis ever ran on this folder: seqs start at 1, with no gap to jump over.
    expect(r.first.ack).toMatchObject({ seq: 1, body: 'hello, bare machine' });
    expect(r.first.delivered.id).toBe(r.first.ack.id);
    // Nothing tries to reach a Redis, so nothing reports failing to.
    expect(context).not.toMatch(/ECONNREFUSED|redis connection error|Connection is closed/);
    expect(r.firstStop, context).toMatchObject({ code: 0, left: [] });
  }, 120_000);

  it('moves from PostgreSQL-only to a redis-server installed later: the chat goes on, a retried send is not stored twice', async () => {
    const dir = tempDir();
    const bin = nodeOnlyPath(dir);
    const r = await inBareNetwork([join(dir, 'data'), '--path', bin, '--then-with-redis']);
    const context = `${r.first.output}\n${r.second?.output ?? ''}`;
    expect(
      r.first.summary.some((l) => l.startsWith('Redis: none (PostgreSQL-only mode')),
      context,
    ).toBe(true);
    expect(r.firstStop, context).toMatchObject({ code: 0, left: [] });
    expect(
      r.second?.summary.some((l) => /^Redis: redis-server .* \(child\)/.test(l)),
      context,
    ).toBe(true);
    // The send PostgreSQL took without Redis is found again by its clientMsgId, not stored anew.
    expect(r.second?.retried?.id, context).toBe(r.first.ack.id);
    expect(r.second?.retried?.seq).toBe(1);
    // A new send takes a seq above it (the move to a fresh Redis may skip numbers, never reuse one).
    expect(r.second?.next?.seq).toBeGreaterThan(1);
    expect(r.second?.history).toEqual(['hello, bare machine', 'hello again']);
    expect(r.secondStop, context).toMatchObject({ code: 0, left: [] });
  }, 120_000);

  it('refuses a Redis Cluster with a QUEUE_PREFIX that holds no hash tag before starting any server', async () => {
    const dataDir = join(tempDir(), 'data');
    // In a bare namespace too: nothing this npm start could reach by mistake; killed with its group if it hangs.
    const child = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec npm run start'], {
      cwd: ROOT,
      env: {
        ...bareEnv(),
        PARLEY_DATA_DIR: dataDir,
        REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001',
        QUEUE_PREFIX: 'parley',
        npm_config_update_notifier: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const giveUp = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    const code = await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(giveUp);
    expect(code, out).toBe(1);
    expect(out).toContain('QUEUE_PREFIX: on Redis Cluster it must hold a hash tag, e.g. {parley}');
    expect(existsSync(dataDir)).toBe(false);
  });
});

/** The PATH of a machine with Node alone: node, npm and the shell npm runs scripts in (no redis-server). */
function nodeOnlyPath(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const [name, target] of Object.entries({ node: process.execPath, npm: whichSync('npm'), sh: '/bin/sh' }))
    symlinkSync(realpathSync(target), join(bin, name));
  return bin;
}

function whichSync(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new Error(`${name} is not on the PATH`);
}
