import type { MiddlewareHandler } from 'hono';
import { secretMatcher } from './secret-match.js';

/**
 * HTTP basic auth answering in the contract's error shape (hono/basic-auth throws an
 * HTTPException that the app's onError would turn into a 500). The challenge header makes
 * browsers ask for credentials. Both halves are always compared, in constant time
 * (secretMatcher), so an answer's timing says nothing about either, nor which one was wrong.
 */
export function basicAuth(user: string, password: string, realm: string): MiddlewareHandler {
  const userMatches = secretMatcher(user);
  const passwordMatches = secretMatcher(password);
  return async (c, next) => {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(c.req.header('authorization') ?? '');
    const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const userOk = userMatches(colon < 0 ? '' : decoded.slice(0, colon));
    const passwordOk = passwordMatches(colon < 0 ? '' : decoded.slice(colon + 1));
    if (colon < 0 || !userOk || !passwordOk) {
      return c.json({ error: { code: 'unauthorized', message: `credentials required (${realm})` } }, 401, {
        'www-authenticate': `Basic realm="${realm}", charset="UTF-8"`,
      });
    }
    await next();
  };
}
