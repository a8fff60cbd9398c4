import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { HashGate } from './hash-gate.js';

/** Password hashes: `scrypt$N$r$p$salt$hash` (base64url), verified in constant time. */
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions & { N: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { ...options, maxmem: 256 * options.N * (options.r ?? 8) }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, cost: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, { N: cost, r: 8, p: 1 });
  return ['scrypt', cost, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

export interface PasswordHasherDeps {
  /** scrypt cost N of new hashes (PASSWORD_HASH_COST). */
  cost: number;
  /** Every hash of a request goes through it (PASSWORD_HASH_CONCURRENCY, PASSWORD_HASH_QUEUE_MAX). */
  gate: Pick<HashGate, 'run'>;
}

/** The api's password hashing: the functions above, bounded per process by the gate. */
export function createPasswordHasher(deps: PasswordHasherDeps) {
  // What a login of an unknown user verifies against. Computed once, at start and outside the
  // gate: it is no request's work, and computing it on first use would make that one login slower.
  const dummy = hashPassword(randomBytes(16).toString('base64url'), deps.cost);
  dummy.catch(() => undefined); // awaited (and its failure reported) where it is used

  return {
    /** `turn` names whose turn it is in the gate's queue (see HashGate). */
    hash: (password: string, turn: string): Promise<string> =>
      deps.gate.run(turn, () => hashPassword(password, deps.cost)),

    /**
     * Looks the stored hash up and verifies `password` against it, in one turn of the gate: a
     * login the gate refuses is refused before it costs a database lookup too. Returns what
     * `lookup` found when the password matches it, else null. When `lookup` finds nobody the
     * password is still verified, against a hash no password is known for, so timing does not
     * tell which usernames exist.
     */
    findVerified<T extends { passwordHash: string }>(
      password: string,
      turn: string,
      lookup: () => Promise<T | null>,
    ): Promise<T | null> {
      return deps.gate.run(turn, async () => {
        const found = await lookup();
        const ok = await verifyPassword(password, found?.passwordHash ?? (await dummy));
        return found && ok ? found : null;
      });
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
