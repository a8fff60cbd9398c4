import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../src/logger.js';

export interface MetricsServerDeps {
  host: string;
  /** 0 picks a free port. */
  port: number;
  render: () => Promise<string>;
  contentType: string;
  logger: Logger;
}

export interface MetricsServer {
  /** Base URL, e.g. http://127.0.0.1:9101 (GET /metrics). */
  url: string;
  close(): Promise<void>;
}

/**
 * The worker process's own /metrics: a bare node:http server, since a worker has no Hono app and
 * needs nothing else. /healthz answers while the process serves.
 */
export async function startMetricsServer(deps: MetricsServerDeps): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/metrics') {
      deps.render().then(
        (body) => res.writeHead(200, { 'content-type': deps.contentType }).end(body),
        (err: unknown) => {
          deps.logger.error({ err }, 'metrics render failed');
          res
            .writeHead(500, { 'content-type': 'application/json' })
            .end('{"error":{"code":"internal","message":"internal error"}}');
        },
      );
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end('{"error":{"code":"not_found","message":"no such route"}}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
