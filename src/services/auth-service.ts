import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import type { User } from '../domain/types.js';
import type { SessionStore } from '../stores/session-store.js';
import type { UserStore } from '../stores/user-store.js';
import { hashPassword, verifyPassword } from './passwords.js';

export interface AuthServiceDeps {
  users: UserStore;
  sessions: SessionStore;
  tokenTtlSeconds: number;
  passwordHashCost: number;
  /** How long a verified token is trusted from memory before PostgreSQL is asked again. */
  cacheMs?: number;
}

const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

export function createAuthService(deps: AuthServiceDeps) {
  const cacheMs = deps.cacheMs ?? 30_000;
  /** token hash (hex) → user and until when the entry may be trusted. */
  const cache = new Map<string, { user: User; until: number }>();
  // Login for an unknown user still spends a hash, so timing does not tell which usernames exist.
  const dummyHash = hashPassword('not-a-password', deps.passwordHashCost);

  async function issueToken(user: User): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await deps.sessions.create(hashToken(token), user.id, deps.tokenTtlSeconds);
    return token;
  }

  return {
    async register(input: { username: string; password: string; displayName?: string | undefined }): Promise<User> {
      const passwordHash = await hashPassword(input.password, deps.passwordHashCost);
      const user = await deps.users.create({
        id: randomUUID(),
        username: input.username,
        displayName: input.displayName?.trim() || input.username,
        passwordHash,
      });
      if (!user) throw new AppError('conflict', 'username is taken');
      return user;
    },

    async login(input: { username: string; password: string }): Promise<{ token: string; user: User }> {
      const found = await deps.users.findCredentials(input.username);
      const ok = await verifyPassword(input.password, found?.passwordHash ?? (await dummyHash));
      if (!found || !ok) throw new AppError('unauthorized', 'wrong username or password');
      return { token: await issueToken(found.user), user: found.user };
    },

    /** The token's user; throws `unauthorized` for a missing, unknown, expired or revoked token. */
    async authenticate(token: string | undefined | null): Promise<User> {
      if (!token || token.length > 200) throw new AppError('unauthorized', 'missing or invalid token');
      const hash = hashToken(token);
      const key = hash.toString('hex');
      const now = Date.now();
      const hit = cache.get(key);
      if (hit && hit.until > now) return hit.user;
      const session = await deps.sessions.find(hash);
      if (!session) {
        cache.delete(key);
        throw new AppError('unauthorized', 'missing or invalid token');
      }
      if (cache.size >= 100_000) cache.clear(); // bounded: entries are cheap to rebuild
      cache.set(key, { user: session.user, until: Math.min(now + cacheMs, Date.parse(session.expiresAt)) });
      return session.user;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
