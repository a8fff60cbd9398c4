/**
 * A webhook receiver for the bench (BENCHMARKS.md "Webhooks on"): answers 204 to every POST and
 * counts what it got; GET /stats answers the counts as JSON (requests, unique event ids per type,
 * duplicates, bad signatures). Run it in the background and point the bench at it:
 *   node --import tsx bench/webhook-receiver.ts --port 4555 --secret S &
 *   npm run bench -- --scenario small --env WEBHOOK_URLS=http://127.0.0.1:4555/ --env WEBHOOK_SECRET=S
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { SIGNATURE_HEADER, verifySignature } from '../src/webhooks/events.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '4555' }, secret: { type: 'string' } } });
const seen = new Set<string>();
const byType: Record<string, number> = {};
let requests = 0;
let duplicates = 0;
let badSignatures = 0;

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ requests, unique: seen.size, duplicates, badSignatures, byType }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    requests++;
    const raw = Buffer.concat(chunks).toString('utf8');
    if (values.secret !== undefined) {
      const header = req.headers[SIGNATURE_HEADER.toLowerCase()];
      if (!verifySignature(values.secret, typeof header === 'string' ? header : undefined, raw)) badSignatures++;
    }
    try {
      const event = JSON.parse(raw) as { id: string; type: string };
      if (seen.has(event.id)) duplicates++;
      else {
        seen.add(event.id);
        byType[event.type] = (byType[event.type] ?? 0) + 1;
      }
    } catch {
      // counted as a request only
    }
    res.writeHead(204).end();
  });
});
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`webhook receiver on ${JSON.stringify(server.address())}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
