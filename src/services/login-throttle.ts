import { AppError } from '../domain/errors.js';
import { type AbuseRules, hashedId, type WindowLimiter } from './window-limiter.js';

export interface LoginThrottleDeps {
  limiter: Pick<WindowLimiter, 'take' | 'refund'>;
  rules: Pick<AbuseRules, 'logins' | 'loginFailures' | 'registrations'>;
}

/**
 * The abuse limits of the public account routes, checked before any password is hashed, so a
 * refused attempt costs no scrypt:
 * - logins per client address (LOGINS_PER_MIN): every attempt counts;
 * - failed logins per username (LOGIN_FAILURES_PER_MIN): case-folded and hashed, counted whether
 *   the user exists or not (else the limit would tell which usernames do). While it is full the
 *   right password is refused too: that is what stops guessing;
 * - registrations per client address (REGISTRATIONS_PER_MIN).
 *
 * A failure is counted before the password is checked and given back when it was right (or the
 * check never ran): counting after the check would let a burst of concurrent guesses all pass
 * the limit while none had failed yet. So at most LOGIN_FAILURES_PER_MIN guesses per username
 * are ever in flight or failed in one window, across every api process.
 */
export function createLoginThrottle(deps: LoginThrottleDeps) {
  const { limiter, rules } = deps;

  return {
    /** Runs `attempt` (which throws `unauthorized` for a wrong password) within the login limits. */
    async login<T>(address: string, username: string, attempt: () => Promise<T>): Promise<T> {
      await limiter.take(rules.logins, address);
      const id = hashedId(username.toLowerCase());
      await limiter.take(rules.loginFailures, id);
      let failed = false;
      try {
        return await attempt();
      } catch (err) {
        failed = err instanceof AppError && err.code === 'unauthorized';
        throw err;
      } finally {
        if (!failed) await limiter.refund(rules.loginFailures, id);
      }
    },

    /** Counts a registration from `address`; throws `rate_limited` past the limit. */
    async register(address: string): Promise<void> {
      await limiter.take(rules.registrations, address);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
