import { request } from 'node:http';
import type { JsonBody } from './http-client.js';

/**
 * Inputs a hostile or careless client sends, shared by the bad-input, property and authorization
 * tests. Each must be refused or stored verbatim, and never crash or reach another user's data.
 */

/** Text a chat must store and return byte for byte. */
export const ODD_TEXT = [
  'family 👩‍👩‍👧‍👦 flags 🇳🇴🏳️‍🌈',
  'rtl \u202eoverride\u202c and \u200fmarks',
  'zero width \u200b\u200c\u200d\ufeff joiners',
  'combining e\u0301\u0301\u0301\u0301 zalgo',
  'astral 𝕏𝔂𝕫 and CJK 漢字かな',
  'controls \u0001\u001f\u007f\u0085 and newlines \r\n\t',
  'noncharacters \uffff\ufffe\u{10ffff}',
];

/** Strings that mean something to SQL, Lua, Redis keys, JSON builders or templates. */
export const INJECTIONS = [
  "'; DROP TABLE messages; --",
  '" OR 1=1 --',
  "]] redis.call('FLUSHALL') --[[",
  "return redis.call('DEL', KEYS[1])",
  'chat:{00000000-0000-4000-8000-000000000000}:seq',
  '","seq":999999,"senderId":"x',
  '\\" \\u0000 \\ud800',
  '${7*7} {{7*7}} <script>alert(1)</script>',
  '%s%s%n %x',
  '\\\\ \\n ../../etc/passwd',
];

/** A syntactically valid UUID that names nothing. */
export const UNKNOWN_ID = '9f1d2c3b-0000-4000-8000-000000000000';

/** JSON text with a lone surrogate inside a string value (JSON.stringify escapes it, as here). */
export const LONE_SURROGATE = '\ud800';

/**
 * POSTs `bytes` of body with chunked transfer encoding (no Content-Length), so the server must
 * cut the body off by counting rather than trust a header. Resolves with status and JSON body.
 */
export function postChunked(
  baseUrl: string,
  path: string,
  bytes: number,
  token?: string,
): Promise<{ status: number; body: JsonBody }> {
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      },
    );
    // The server may answer and close before the whole body is written: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    );
    const chunk = `{"body":"${'x'.repeat(1000)}`;
    req.write(chunk);
    let sent = chunk.length;
    const pump = () => {
      while (sent < bytes) {
        sent += 1000;
        if (!req.write('x'.repeat(1000))) return void req.once('drain', pump);
      }
      req.end('"}');
    };
    pump();
  });
}
