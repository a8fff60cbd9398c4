import type { IncomingHttpHeaders } from 'node:http';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';

/**
 * The address a request came from, for the per-address abuse limits. Behind a proxy
 * (`TRUST_PROXY`), it is the last X-Forwarded-For entry: the one the proxy in front of Parley
 * appended. Earlier entries come from the client and can be anything, so they are never used.
 */
export function addressOf(
  socketAddress: string | undefined,
  headers: IncomingHttpHeaders,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const forwarded = headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').at(-1)?.trim();
    if (last) return last.slice(0, 64);
  }
  return socketAddress ?? 'unknown';
}

/** The client address of a Hono request on the Node server (see addressOf). */
export function clientAddress(c: Context, trustProxy: boolean): string {
  let socketAddress: string | undefined;
  try {
    socketAddress = getConnInfo(c).remote.address;
  } catch {
    // Not served by @hono/node-server (app.request in a test): no socket to ask.
  }
  return addressOf(socketAddress, { 'x-forwarded-for': c.req.header('x-forwarded-for') }, trustProxy);
}
