// @ts-check
/**
 * `npm run build`: compiles the shipped code (src/, workers/, scripts/start.ts, scripts/migrate.ts)
 * to dist/ with tsc, and mirrors every other file under src/ and workers/ (the Lua scripts, the
 * SQL migrations: files the code reads at run time next to itself) into dist/ beside the
 * compiled modules, so that dist/ runs on its own and src/ stays the one copy anyone edits.
 *
 * It also bundles the web chat app (clients/web, on the SDK's sources in clients/js/src) with
 * esbuild into dist/web: index.html, and under app/ one script and one style sheet named by a
 * hash of their content (so that they may be cached for good); the app is type-checked first.
 *
 * `--if-stale` (what `npm start`, `npm run api`, `worker` and `migrate` run first) builds only
 * when a source is newer than the last build or an entry point is missing, and otherwise costs
 * a directory walk. Plain JavaScript: it must run before anything is compiled, without tsx.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DIST = join(ROOT, 'dist');
/**
 * Its mtime is the start of the last successful build (a source saved during a build counts as
 * newer); removed when a build starts, so that one killed half-way is redone.
 */
const STAMP = join(DIST, '.build-stamp');
const LOCK = join(DIST, '.build-lock');
/** Source trees whose every file reaches dist/: .ts compiled by tsc, anything else copied. */
const MIRRORED = ['src', 'workers'];
/** A change to any of these makes dist/ stale: the mirrored trees, scripts/ (start, migrate and what they import), the settings. */
const INPUTS = [
  ...MIRRORED,
  'scripts',
  'clients/web',
  'clients/js/src',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
];
/** The web app: its sources, its page's template, and where its build goes. */
const WEB = join(ROOT, 'clients/web');
const WEB_DIST = join(DIST, 'web');
/** What the npm scripts run: a build without one of them is not a build. */
const ENTRY_POINTS = [
  'dist/src/main.js',
  'dist/workers/main.js',
  'dist/scripts/start.js',
  'dist/scripts/migrate.js',
  'dist/web/index.html',
];
/** How long a waiter waits for another process's build before it gives up. */
const LOCK_WAIT_MS = 180_000;

const say = (/** @type {string} */ line) => console.error(`parley build: ${line}`);

/**
 * Every file under `path` (or `path` itself), relative to the root; with `dirs`, the directories
 * too (a file deleted or renamed changes only its directory's mtime).
 * @param {string} path
 * @param {boolean} [dirs]
 * @returns {string[]}
 */
function filesUnder(path, dirs = false) {
  const abs = join(ROOT, path);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [path];
  return [...(dirs ? [path] : []), ...readdirSync(abs).flatMap((name) => filesUnder(join(path, name), dirs))];
}

/** @returns {string | null} why dist/ needs a build, or null when it is up to date */
function staleness() {
  if (!existsSync(STAMP)) return 'no build yet';
  const missing = ENTRY_POINTS.find((f) => !existsSync(join(ROOT, f)));
  if (missing) return `${missing} is missing`;
  // An image that ships dist/ without the sources: dist/ is all there is (whatever mtimes its copies got).
  if (!existsSync(join(ROOT, 'src'))) return null;
  const built = statSync(STAMP).mtimeMs;
  const newer = INPUTS.flatMap((p) => filesUnder(p, true)).find((f) => statSync(join(ROOT, f)).mtimeMs > built);
  return newer ? `${newer} changed` : null;
}

/**
 * Removes what no source accounts for any more (a deleted module, a renamed migration: a stale
 * migration file in dist/ would still be applied), then copies every non-TypeScript file of the
 * mirrored trees.
 */
function mirrorAssets() {
  for (const tree of MIRRORED) {
    for (const out of filesUnder(join('dist', tree))) {
      const source = relative('dist', out).replace(/\.js(\.map)?$/, '.ts');
      if (!existsSync(join(ROOT, source))) rmSync(join(ROOT, out));
    }
    for (const file of filesUnder(tree)) {
      if (file.endsWith('.ts')) continue;
      const target = join(DIST, file);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(ROOT, file), target);
    }
  }
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/**
 * One build at a time: tests start several `npm start`s at once, and a process that imports
 * dist/ while another build rewrites it could read a half-written module. The lock file holds
 * its owner's pid; a lock whose owner died (a killed build) is taken over.
 * @returns {Promise<() => void>} releases the lock
 */
async function lock() {
  mkdirSync(DIST, { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      return () => rmSync(LOCK, { force: true });
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    let age = 0;
    try {
      owner = Number(readFileSync(LOCK, 'utf8'));
      age = Date.now() - statSync(LOCK).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // An empty lock was created a moment ago and its pid is being written, unless that was long ago.
    if (owner > 0 ? !alive(owner) : age > 5000) {
      say(`taking over the lock of process ${owner || '(unknown)'}, which is gone`);
      rmSync(LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`another build (process ${owner}) holds ${LOCK} for over ${LOCK_WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * tsc's incremental build, in this process (a build killed with its launcher leaves no compiler
 * behind writing into dist/). Its build info lives in dist/, so removing dist/ rebuilds everything.
 */
/** @param {string} configFile relative to the root @param {boolean} [emit] */
async function compile(configFile = 'tsconfig.build.json', emit = true) {
  /** @type {typeof import('typescript')} */
  let ts;
  try {
    ts = (await import('typescript')).default;
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error(
      'dist/ must be built, and TypeScript is not installed (a production install?): run `npm run build` where the dev dependencies are',
    );
  }
  /** @type {string | undefined} */
  let unreadable;
  const host = {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (/** @type {import('typescript').Diagnostic} */ d) =>
      void (unreadable = ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  };
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, configFile), {}, host);
  if (!config) throw new Error(`${configFile}: ${unreadable ?? 'cannot be read'}`);
  const program = ts.createIncrementalProgram({
    rootNames: config.fileNames,
    options: config.options,
    configFileParsingDiagnostics: ts.getConfigFileParsingDiagnostics(config),
  });
  const emitted = emit ? program.emit() : { diagnostics: [] };
  const diagnostics = ts.sortAndDeduplicateDiagnostics([
    ...program.getConfigFileParsingDiagnostics(),
    ...program.getOptionsDiagnostics(),
    ...program.getSyntacticDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program.getSemanticDiagnostics(),
    ...emitted.diagnostics,
  ]);
  if (diagnostics.length === 0) return;
  const formatHost = {
    getCanonicalFileName: (/** @type {string} */ f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  };
  console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost));
  throw new Error(`tsc found ${diagnostics.length} error(s)`);
}

/**
 * The web app into dist/web: type-checked, then bundled by esbuild (the SDK from its sources),
 * and its index.html written from clients/web/index.html with the bundle's hashed names.
 */
async function bundleWeb() {
  await compile('clients/web/tsconfig.json', false);
  /** @type {typeof import('esbuild')} */
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error('the web app needs esbuild, a dev dependency: run `npm run build` where they are installed');
  }
  rmSync(WEB_DIST, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { app: join(WEB, 'src/main.ts') },
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    minify: true,
    legalComments: 'none',
    entryNames: '[name]-[hash]',
    outdir: join(WEB_DIST, 'app'),
    alias: { '@parley/client': join(ROOT, 'clients/js/src/index.ts') },
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => relative(join(WEB_DIST, 'app'), join(ROOT, f)));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css || outputs.length !== 2)
    throw new Error(`the web bundle is not one script and one style sheet: ${outputs}`);
  const page = readFileSync(join(WEB, 'index.html'), 'utf8').replace('{{js}}', js).replace('{{css}}', css);
  writeFileSync(join(WEB_DIST, 'index.html'), page);
}

async function main() {
  const ifStale = process.argv.includes('--if-stale');
  if (ifStale && staleness() === null) return;
  const release = await lock();
  try {
    // Whoever held the lock may just have built it.
    const why = staleness();
    if (ifStale && why === null) return;
    if (ifStale) say(`building dist/ first (${why})`);
    const started = new Date();
    rmSync(STAMP, { force: true });
    await compile();
    mirrorAssets();
    await bundleWeb();
    writeFileSync(STAMP, `${started.toISOString()}\n`);
    utimesSync(STAMP, started, started);
  } finally {
    release();
  }
}

main().catch((/** @type {Error} */ err) => {
  say(err.message);
  process.exit(1);
});
