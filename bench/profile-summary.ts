/**
 * `npm run -s bench:profile -- FILE.cpuprofile [TOP]`: where a process spent its CPU, from a
 * `--cpu-prof` profile (`npm run bench -- --cpu-prof` writes one per started process into
 * .bench/profiles). Prints self time by package or source file, then the top functions.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<pkg>, the project's own file, node:internal, or the V8 pseudo-frames. */
function ownerOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const own = /\/(src|workers|bench|scripts)\/(.+)$/.exec(url);
  return own ? `${own[1]}/${own[2]}` : url;
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: npm run -s bench:profile -- FILE.cpuprofile [TOP]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const byOwner = new Map<string, number>();
const byFunction = new Map<string, number>();
let busy = 0;
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (functionName === '(idle)') return;
  busy += dt;
  const owner = ownerOf(url, functionName);
  byOwner.set(owner, (byOwner.get(owner) ?? 0) + dt);
  const fn = `${functionName || '(anonymous)'}  ${owner}:${lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
});
const line = (us: number, what: string) =>
  `${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${what}`;
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / total).toFixed(0)}%)`,
);
console.log('self time by package / file (% of busy):');
for (const [k, v] of top(byOwner, 25)) console.log(line(v, k));
console.log('top functions by self time:');
for (const [k, v] of top(byFunction, Number(topArg ?? 30))) console.log(line(v, k));
