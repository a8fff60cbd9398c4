/**
 * A helper process of the `idle` scenario: holds a share of the idle WebSocket connections, so
 * that the bench itself stays under the per-process file descriptor limit. Driven over IPC by
 * bench/scenarios/idle.ts: `open` → `opened`, then `close` → `closed`, then it exits.
 */
import type WebSocket from 'ws';
import { errorText } from '../src/domain/errors.js';
import { mapLimit } from './accounts.js';
import { connect } from './clients.js';

export interface OpenCommand {
  type: 'open';
  url: string;
  /** One token per connection to open. */
  tokens: string[];
  localAddress?: string;
  concurrency: number;
}

export interface OpenedReport {
  type: 'opened';
  opened: number;
  failed: number;
  firstError?: string;
}

export interface ClosedReport {
  type: 'closed';
  /** Connections the server closed while they were held. */
  closedByServer: number;
}

const sockets: WebSocket[] = [];
let closedByServer = 0;
let closing = false;

process.on('message', (msg: OpenCommand | { type: 'close' }) => {
  if (msg.type === 'open') void open(msg);
  else if (msg.type === 'close') {
    closing = true;
    const report: ClosedReport = { type: 'closed', closedByServer };
    for (const ws of sockets) ws.terminate();
    process.send!(report, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));

async function open(cmd: OpenCommand): Promise<void> {
  let failed = 0;
  let firstError: string | undefined;
  await mapLimit(cmd.tokens.length, cmd.concurrency, async (i) => {
    try {
      const ws = await connect({
        url: cmd.url,
        token: cmd.tokens[i]!,
        ...(cmd.localAddress ? { localAddress: cmd.localAddress } : {}),
        timeoutMs: 60_000,
      });
      ws.on('error', () => undefined);
      ws.on('close', () => void (closing || closedByServer++));
      sockets.push(ws);
    } catch (err) {
      failed++;
      firstError ??= errorText(err);
    }
  });
  const report: OpenedReport = {
    type: 'opened',
    opened: sockets.length,
    failed,
    ...(firstError ? { firstError } : {}),
  };
  process.send!(report);
}
