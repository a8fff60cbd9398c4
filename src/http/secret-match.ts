import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * A check of given secrets against `expected` that takes the same time whatever is given:
 * SHA-256 digests have a fixed length, so they are always compared, in constant time, and
 * neither the secret nor its length shows in how long a refusal takes.
 */
export function secretMatcher(expected: string): (given: string) => boolean {
  const want = digest(expected);
  return (given) => timingSafeEqual(digest(given), want);
}
