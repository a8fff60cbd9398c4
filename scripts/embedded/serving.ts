import { once } from 'node:events';
import { createServer } from 'node:net';
import { errorText } from '../../src/domain/errors.js';
import type { Child } from './child.js';

/** Ports this process handed out: PostgreSQL and redis-server start side by side, never on one port. */
const handedOut = new Set<number>();

/** A port free on 127.0.0.1 right now (the server is started on it at once). */
export async function freePort(): Promise<number> {
  for (;;) {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address() as { port: number };
    srv.close();
    await once(srv, 'close');
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * Waits until `probe` succeeds against a server just started: it fails at once, with the end
 * of the server's log, if the server exits first, and after `timeoutMs` if it never answers.
 */
export async function waitUntilServing(
  child: Child,
  timeoutMs: number,
  hint: string,
  probe: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    if (exited || !child.running()) throw new Error(`${child.name} exited at start:\n${child.logTail()}${hint}`);
    try {
      await probe();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`${child.name} did not answer within ${timeoutMs} ms (${errorText(err)}):\n${child.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
