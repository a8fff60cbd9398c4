/**
 * `npm run bench:login`: what a flood of logins does to everyone else. Starts one api process
 * (a throwaway database and key prefix, as `npm run bench` does) with the production password
 * cost and abuse limits, behind a pretend proxy (TRUST_PROXY, so each request can name its client
 * address), then, per run, fires `--flood` concurrent logins for one account and at the same
 * moment times a real login of another account from another address, and a GET /api/me.
 *   npm run bench:login -- --runs 5 --flood 120            a guesser: wrong passwords, one address
 *   npm run bench:login -- --spread                        a botnet: wrong passwords, an address each
 *   npm run bench:login -- --spread --right                right passwords, an address each
 *   npm run bench:login -- --spread --no-limits            the abuse limits lifted: only the hash gate acts
 * Prints each run and the medians. A measurement, not a test: it asserts nothing about speed.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median } from './histogram.js';
import { startTarget } from './setup.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    flood: { type: 'string', default: '120' },
    spread: { type: 'boolean', default: false },
    right: { type: 'boolean', default: false },
    'no-limits': { type: 'boolean', default: false },
  },
});
const RUNS = Number(values.runs);
const FLOOD = Number(values.flood);
const PASSWORD = 'bench-login-password';

/** A real deployment's settings (the bench's own defaults lift the abuse limits). */
const ENV: Record<string, string> = {
  PASSWORD_HASH_COST: '16384',
  LOGIN_FAILURES_PER_MIN: '10',
  LOGINS_PER_MIN: '60',
  REGISTRATIONS_PER_MIN: '10',
  TRUST_PROXY: 'true',
  ...(values['no-limits'] ? { LOGIN_FAILURES_PER_MIN: '1000000', LOGINS_PER_MIN: '1000000' } : {}),
};

let addresses = 0;
const freshAddress = () => `198.18.${(addresses >> 8) & 255}.${addresses++ & 255}`;

async function call(
  url: string,
  method: string,
  body: unknown,
  address: string,
  token?: string,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method,
    headers: {
      'x-forwarded-for': address,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function timed<T>(work: Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await work;
  return [result, performance.now() - start];
}

const round = (ms: number | null) => (ms === null ? '-' : Math.round(ms));

async function main(): Promise<void> {
  const target = await startTarget({ apis: 1, workers: 0, env: ENV, cpuProf: false, runtime: 'compiled' });
  const api = target.apiUrls[0]!;
  const login = (username: string, password: string, address: string) =>
    call(`${api}/api/sessions`, 'POST', { username, password }, address);
  const register = async (username: string) => {
    const r = await call(`${api}/api/users`, 'POST', { username, password: PASSWORD }, freshAddress());
    if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.json)}`);
  };
  try {
    const mode = `${values.right ? 'right' : 'wrong'} passwords, ${values.spread ? 'an address each' : 'one address'}${values['no-limits'] ? ', login limits lifted' : ''}`;
    console.log(
      `login flood: ${FLOOD} concurrent logins for one account (${mode}), ${RUNS} runs, scrypt N=${ENV.PASSWORD_HASH_COST}`,
    );
    const realMs: number[] = [];
    const meMs: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      // Fresh accounts and addresses per run: the previous run's windows must not decide this one.
      const tag = `${Date.now().toString(36)}_${run}`;
      const [victim, user] = [`victim_${tag}`, `real_${tag}`];
      await Promise.all([register(victim), register(user)]);
      const session = await login(user, PASSWORD, freshAddress());
      if (session.status !== 200) throw new Error(`warm-up login: ${session.status}`);

      const floodAddress = freshAddress();
      const flood = Array.from({ length: FLOOD }, (_, i) =>
        login(victim, values.right ? PASSWORD : `guess-${i}`, values.spread ? freshAddress() : floodAddress),
      );
      const [[real, tookReal], [me, tookMe]] = await Promise.all([
        timed(login(user, PASSWORD, freshAddress())),
        timed(call(`${api}/api/me`, 'GET', undefined, freshAddress(), (session.json as { token: string }).token)),
      ]);
      const answers = await Promise.all(flood);
      if (me.status !== 200) throw new Error(`GET /api/me: ${me.status}`);
      const counts: Record<number, number> = {};
      for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
      realMs.push(tookReal);
      meMs.push(tookMe);
      // A real login can be refused (503) when the flood filled the hash queue before it arrived.
      console.log(
        `run ${run}: real login ${real.status} in ${round(tookReal)} ms, GET /api/me ${round(tookMe)} ms; flood answers ${JSON.stringify(counts)}`,
      );
    }
    console.log(`median of ${RUNS}: real login ${round(median(realMs))} ms, GET /api/me ${round(median(meMs))} ms`);
  } finally {
    await target.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
