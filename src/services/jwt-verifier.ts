import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config.js';
import { AppError } from '../domain/errors.js';
import { isUserId, normalizeUserId } from '../domain/schemas.js';

/** External identity (docs/protocol.md "External identity"): where a JWT's keys come from and what it must say. */
export interface JwtSettings {
  /** HS256 shared secret (JWT_SECRET). */
  secret?: string | undefined;
  /** JWKS document of RS256/ES256 public keys (JWT_JWKS_URL). */
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Seconds of clock skew allowed on `exp` and `nbf`. */
  clockToleranceS?: number;
  /** Least time between two JWKS fetches (one a token with an unknown `kid` triggers), in ms. */
  jwksCooldownMs?: number;
  /** Longest a JWKS fetch may take, in ms. */
  jwksTimeoutMs?: number;
}

/** What a verified JWT says about its user. */
export interface JwtIdentity {
  sub: string;
  /** `preferred_username` when it is a non-empty string. */
  preferredUsername: string | undefined;
  /** When the token stops working (ms since the epoch, clock tolerance included). */
  expiresAt: number;
}

/**
 * Shape of a JWS in compact form: three base64url parts (the signature empty for `alg: none`,
 * which is then refused by the algorithm list). A Parley session token is one base64url part, so
 * the two never look alike and a session token never reaches this verifier.
 */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Longest JWT accepted (headers of 8 KiB are the usual proxy limit). */
const JWT_MAX_CHARS = 8192;

export const looksLikeJwt = (token: string): boolean => token.length <= JWT_MAX_CHARS && JWT_SHAPE.test(token);

const HS_ALGS = ['HS256'];
const JWKS_ALGS = ['RS256', 'ES256'];

const invalid = (why: string) => new AppError('unauthorized', `invalid token: ${why}`);

/** The settings from the configuration (JWT_*). */
export const jwtSettings = (config: Config): JwtSettings => ({
  secret: config.JWT_SECRET,
  jwksUrl: config.JWT_JWKS_URL,
  issuer: config.JWT_ISSUER,
  audience: config.JWT_AUDIENCE,
  clockToleranceS: config.JWT_CLOCK_TOLERANCE_S,
  jwksCooldownMs: config.JWT_JWKS_COOLDOWN_MS,
  jwksTimeoutMs: config.JWT_JWKS_TIMEOUT_MS,
});

/** True when JWT_SECRET or JWT_JWKS_URL is set. */
export const jwtEnabled = (s: JwtSettings): boolean => Boolean(s.secret || s.jwksUrl);

/**
 * Verifies JWTs with jose: the algorithms are fixed by where the key comes from (HS256 for the
 * secret; RS256 and ES256 for the JWKS, whose keys jose caches and fetches again, at most once per
 * cooldown, when a token names a `kid` it does not hold), never by the token. Throws `unauthorized`
 * for every bad token (expired, not yet valid, wrong signature, key, algorithm, issuer or audience,
 * no `sub`/`exp`, a `sub` that is not a Parley user id), `unavailable` when the JWKS cannot be read.
 */
export function createJwtVerifier(settings: JwtSettings) {
  const secret = settings.secret ? new TextEncoder().encode(settings.secret) : undefined;
  const jwks = settings.jwksUrl
    ? createRemoteJWKSet(new URL(settings.jwksUrl), {
        cooldownDuration: settings.jwksCooldownMs ?? 30_000,
        timeoutDuration: settings.jwksTimeoutMs ?? 5_000,
      })
    : undefined;
  const algorithms = [...(secret ? HS_ALGS : []), ...(jwks ? JWKS_ALGS : [])];
  const tolerance = settings.clockToleranceS ?? 0;

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secret) return secret;
    if (jwks && JWKS_ALGS.includes(header.alg ?? '')) return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
  };

  return {
    async verify(token: string): Promise<JwtIdentity> {
      if (algorithms.length === 0) throw new AppError('unauthorized', 'missing or invalid token');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          algorithms,
          issuer: settings.issuer,
          audience: settings.audience,
          clockTolerance: tolerance,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (err) {
        if (
          err instanceof errors.JWKSTimeout ||
          err instanceof errors.JWKSInvalid ||
          !(err instanceof errors.JOSEError)
        )
          throw new AppError('unavailable', 'the identity keys (JWKS) cannot be read; try again');
        if (err instanceof errors.JWTExpired) throw invalid('expired');
        if (err instanceof errors.JWTClaimValidationFailed) throw invalid(`${err.claim} claim check failed`);
        throw invalid('bad signature, key or algorithm');
      }
      const { sub, exp } = payload;
      if (typeof sub !== 'string' || !isUserId(sub)) throw invalid('sub must be 1-255 printable characters without /');
      const name = payload.preferred_username;
      return {
        sub: normalizeUserId(sub),
        preferredUsername: typeof name === 'string' && name.trim() !== '' ? name : undefined,
        expiresAt: ((exp ?? 0) + tolerance) * 1000,
      };
    },
  };
}

export type JwtVerifier = ReturnType<typeof createJwtVerifier>;
