import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { AppError, isUnavailableError } from '../domain/errors.js';
import type { User } from '../domain/types.js';
import type { SessionStore } from '../stores/session-store.js';
import type { UserStore } from '../stores/user-store.js';
import { type JwtIdentity, type JwtVerifier, looksLikeJwt } from './jwt-verifier.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';

export interface AuthServiceDeps {
  users: UserStore;
  sessions: SessionStore;
  tokenTtlSeconds: number;
  /** Hashing bounded per process (a flood of logins must not take the libuv pool). */
  passwords: PasswordHasher;
  /** The per-address and per-username limits, checked before any hash is spent. */
  throttle: LoginThrottle;
  /** How long a verified token is trusted from memory before PostgreSQL is asked again. */
  cacheMs?: number;
  /** External identity (JWT_SECRET / JWT_JWKS_URL); without it a JWT is refused like an unknown token. */
  jwt?: JwtVerifier | undefined;
}

const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

/** Usernames tried, in order, for the user a JWT creates (docs/protocol.md "External identity"). */
export function externalUsernames(identity: Pick<JwtIdentity, 'sub' | 'preferredUsername'>): string[] {
  const storable = (s: string) => s.isWellFormed() && !s.includes('\u0000');
  const preferred = identity.preferredUsername?.trim().slice(0, 64);
  const base = preferred && storable(preferred) ? preferred : identity.sub;
  // A stable suffix from the sub first (the same user gets the same name on every process), then random ones.
  const tag = createHash('sha256').update(identity.sub).digest('hex').slice(0, 8);
  const names = [base, identity.sub, `${base}#${tag}`];
  for (let i = 0; i < 3; i++) names.push(`${base}#${randomBytes(4).toString('hex')}`);
  return [...new Set(names)];
}

/** A verified session. `tokenHash` (SHA-256, hex) names it without being a secret. */
export interface SessionInfo {
  user: User;
  tokenHash: string;
  /** When the token stops working (ms since the epoch); sockets opened with it close then. */
  expiresAt: number;
  /**
   * A JWT's, not a Parley session's: logging out closes its sockets but cannot revoke it (its
   * issuer owns it), so a later use is not refused as a revoked session's would be.
   */
  external?: true;
}

export function createAuthService(deps: AuthServiceDeps) {
  const cacheMs = deps.cacheMs ?? 30_000;
  /** token hash (hex) → session and until when the entry may be trusted (never past expiry). */
  const cache = new Map<string, { session: SessionInfo; until: number }>();
  /**
   * Hashes revoked in the last `cacheMs` → until when: a lookup that raced the revocation (read
   * the row just before it was deleted) must not put the session back in the cache.
   */
  const revoked = new Map<string, number>();
  /** JWT sub → its Parley user, once found or created: a new token of a known sub needs no PostgreSQL. */
  const externalUsers = new Map<string, User>();

  async function externalUser(identity: JwtIdentity): Promise<User> {
    const known = externalUsers.get(identity.sub);
    if (known) return known;
    const user = await deps.users.ensureExternal(identity.sub, externalUsernames(identity));
    if (!user) throw new AppError('unauthorized', 'invalid token: sub names a user with a password');
    if (externalUsers.size >= 100_000) externalUsers.clear();
    externalUsers.set(identity.sub, user);
    return user;
  }

  /** A JWT's session: verified by jose, its user found or created; cached like a session token. */
  async function jwtSession(token: string): Promise<SessionInfo> {
    const key = hashToken(token).toString('hex');
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.session;
    if (!deps.jwt) throw new AppError('unauthorized', 'missing or invalid token');
    const identity = await deps.jwt.verify(token);
    const user = await externalUser(identity);
    const info: SessionInfo = { user, tokenHash: key, expiresAt: identity.expiresAt, external: true };
    if (cache.size >= 100_000) cache.clear();
    cache.set(key, { session: info, until: Math.min(now + cacheMs, info.expiresAt) });
    return info;
  }

  async function issueToken(user: User): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await deps.sessions.create(hashToken(token), user.id, deps.tokenTtlSeconds);
    return token;
  }

  /** The token's session; throws `unauthorized` for a missing, unknown, expired or revoked token. */
  async function session(token: string | undefined | null): Promise<SessionInfo> {
    // Told apart by shape: a session token is one base64url part, a JWT three (jwt-verifier.ts).
    if (token && looksLikeJwt(token)) return jwtSession(token);
    if (!token || token.length > 200) throw new AppError('unauthorized', 'missing or invalid token');
    const hash = hashToken(token);
    const key = hash.toString('hex');
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.session;
    let found;
    try {
      found = await deps.sessions.find(hash);
    } catch (err) {
      // PostgreSQL unreachable: a session this process verified before stays good until it
      // expires, so connected users keep chatting through Redis (docs/architecture.md degraded modes).
      if (hit && hit.session.expiresAt > now && isUnavailableError(err)) return hit.session;
      throw err;
    }
    if (!found || (revoked.get(key) ?? 0) > now) {
      cache.delete(key);
      throw new AppError('unauthorized', 'missing or invalid token');
    }
    const info: SessionInfo = { user: found.user, tokenHash: key, expiresAt: Date.parse(found.expiresAt) };
    if (cache.size >= 100_000) cache.clear(); // bounded: entries are cheap to rebuild
    cache.set(key, { session: info, until: Math.min(now + cacheMs, info.expiresAt) });
    return info;
  }

  return {
    /** `address` is the client's (see clientAddress), for the per-address limit. */
    async register(
      input: { username: string; password: string; displayName?: string | undefined },
      address: string,
    ): Promise<User> {
      await deps.throttle.register(address);
      const passwordHash = await deps.passwords.hash(input.password, `register:${address}`);
      const user = await deps.users.create({
        id: randomUUID(),
        username: input.username,
        displayName: input.displayName?.trim() || input.username,
        passwordHash,
      });
      if (!user) throw new AppError('conflict', 'username is taken');
      return user;
    },

    /** `address` is the client's (see clientAddress), for the per-address limit. */
    async login(
      input: { username: string; password: string },
      address: string,
    ): Promise<{ token: string; user: User }> {
      const found = await deps.throttle.login(address, input.username, async () => {
        // Its turn in the hash queue is the username's: a flood aimed at one account waits behind itself.
        const turn = `login:${input.username.toLowerCase()}`;
        const credentials = await deps.passwords.findVerified(input.password, turn, () =>
          deps.users.findCredentials(input.username),
        );
        if (!credentials) throw new AppError('unauthorized', 'wrong username or password');
        return credentials;
      });
      return { token: await issueToken(found.user), user: found.user };
    },

    /** GET /api/users?username=: the user of a username; throws `not_found` when there is none. */
    async findUser(username: string): Promise<User> {
      const user = await deps.users.findByUsername(username);
      if (!user) throw new AppError('not_found', 'no such user');
      return user;
    },

    /** The token's user; throws `unauthorized` for a missing, unknown, expired or revoked token. */
    async authenticate(token: string | undefined | null): Promise<User> {
      return (await session(token)).user;
    },

    session,

    /** Ends the token's session in PostgreSQL and here; returns its hash for the other processes. */
    async revoke(token: string): Promise<string> {
      const hash = hashToken(token);
      await deps.sessions.revoke(hash);
      const key = hash.toString('hex');
      cache.delete(key);
      return key;
    },

    /**
     * Ends every session of the user in PostgreSQL and here (log out everywhere); returns their
     * hashes for the other processes.
     */
    async revokeAll(userId: string): Promise<string[]> {
      const hashes = (await deps.sessions.revokeAllOf(userId)).map((hash) => hash.toString('hex'));
      for (const key of hashes) cache.delete(key);
      return hashes;
    },

    /** True when the session ended here recently (an upgrade that raced its revocation). */
    isRevoked(tokenHash: string): boolean {
      return (revoked.get(tokenHash) ?? 0) > Date.now();
    },

    /** Drops a revoked session (by hash) from this process's cache. */
    forget(tokenHash: string): void {
      cache.delete(tokenHash);
      if (revoked.size >= 10_000) for (const [k, until] of revoked) if (until <= Date.now()) revoked.delete(k);
      revoked.set(tokenHash, Date.now() + cacheMs);
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
