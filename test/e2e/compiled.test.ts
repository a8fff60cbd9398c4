import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import format from 'pg-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/db/migrate.js';
import { ApiClient } from '../helpers/http-client.js';
import { ADMIN_URL, databaseUrl } from '../helpers/pg.js';
import { buildIfStale, type RunningProcess, startNpmScript } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';
import { connectClient } from '../helpers/ws-client.js';

/**
 * What production runs: the JavaScript in dist/, with nothing of the sources beside it. A file the
 * code reads at run time (a Lua script, a migration) that the build leaves out only shows here.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const freshDb = `parley_dist_${randomBytes(4).toString('hex')}`;
let env: TestEnv;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  await buildIfStale();
  env = await createTestEnv({ DATABASE_URL: databaseUrl(freshDb) });
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await env?.cleanup();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', freshDb));
  await admin.end();
});

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );

/** The command lines of the live processes in process group `pgid` (Linux /proc). */
function commandsInGroup(pgid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z')
        out.push(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('the compiled build', () => {
  it('holds every file of src/ and workers/: each module compiled, every other file copied unchanged', () => {
    for (const tree of ['src', 'workers']) {
      const sources = filesUnder(join(ROOT, tree)).map((f) => relative(ROOT, f));
      expect(sources.length).toBeGreaterThan(0);
      for (const file of sources) {
        const built = join(ROOT, 'dist', file.replace(/\.ts$/, '.js'));
        if (file.endsWith('.ts')) expect(() => readFileSync(built), `${file} compiled`).not.toThrow();
        else expect(readFileSync(built, 'utf8'), `${file} copied`).toBe(readFileSync(join(ROOT, file), 'utf8'));
      }
    }
  });

  it('npm run migrate, api and worker run dist/ without tsx: every migration applied, a chat sent, delivered, read back and persisted', async () => {
    const migrated = await promisify(execFile)('npm', ['run', '--silent', 'migrate'], {
      cwd: ROOT,
      env: { ...process.env, ...env.env },
    });
    const names = (await loadMigrations()).map((m) => m.name);
    expect(migrated.stdout.trim()).toBe(`applied: ${names.join(', ')}`);

    const api = await startNpmScript('api', env.env, /parley api listening on (http:\/\/\S+)/);
    procs.push(api);
    const worker = await startNpmScript('worker', env.env, /parley worker ready/);
    procs.push(worker);
    for (const [p, entry] of [
      [api, 'dist/src/main.js'],
      [worker, 'dist/workers/main.js'],
    ] as const) {
      const node = commandsInGroup(p.proc.pid!).filter((c) => c.includes('/node ') || c.startsWith('node '));
      expect(node, p.output()).toContainEqual(expect.stringMatching(new RegExp(`node ${entry}$`)));
      expect(node.join('\n')).not.toMatch(/tsx|\.ts\b/);
    }

    const client = new ApiClient(api.url);
    const [a, b] = await Promise.all([client.newUser('a'), client.newUser('b')]);
    const chat = await client.newChat(a, [b]);
    const bs = await connectClient(api.url, b.token);
    const sent = await client.send(a.token, chat.id, 'hello from dist', 'd-1');
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    expect((await bs.next((f) => f.type === 'message', 'the message')).message).toMatchObject({
      seq: 1,
      body: 'hello from dist',
    });
    const history = await client.history(b.token, chat.id);
    expect(history.body.messages.map((m) => [m.seq, m.body])).toEqual([[1, 'hello from dist']]);
    await waitFor(
      async () => (await env.pool.query('SELECT 1 FROM messages WHERE client_msg_id = $1', ['d-1'])).rowCount === 1,
      'the row in PostgreSQL, written by the compiled worker',
    );
    await bs.close();
  });
});
