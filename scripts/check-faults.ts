/**
 * `npm run check:faults`: the guarantee checker. For each fault scenario, on private Redis and
 * PostgreSQL servers with real api and worker processes and retrying clients, prints how many
 * messages were acked, persisted, lost, duplicated and out of order, and the time to recover.
 * The clients also edit, delete and react to messages (--changes: the share of their operations,
 * default 0.3; 0 sends only), and every message's final row is checked against the last acked
 * change: lost changes, resurrected deletes and out-of-order edits.
 *   npm run check:faults -- --runs 3 [--scenario redis-down] [--load-ms 9000] [--outage-ms 3000] [--changes 0.3]
 * Exits 1 if any scenario lost, duplicated or reordered anything, a message or a change.
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_CHANGES,
  formatTable,
  runScenario,
  SCENARIOS,
  type ScenarioName,
  type ScenarioResult,
} from './faults/checker.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    scenario: { type: 'string', multiple: true },
    'load-ms': { type: 'string', default: '9000' },
    'outage-ms': { type: 'string', default: '3000' },
    clients: { type: 'string', default: '8' },
    chats: { type: 'string', default: '2' },
    'interval-ms': { type: 'string', default: '20' },
    changes: { type: 'string', default: String(DEFAULT_CHANGES) },
  },
});
const changes = Number(values.changes);
if (!(changes >= 0 && changes <= 1)) throw new Error(`--changes must be a share from 0 to 1, not ${values.changes}`);
const scenarios = (values.scenario ?? [...SCENARIOS]) as ScenarioName[];
const results: ScenarioResult[] = [];
for (const scenario of scenarios) {
  if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario ${scenario}; one of ${SCENARIOS.join(', ')}`);
  for (let run = 1; run <= Number(values.runs); run++) {
    const r = await runScenario(scenario, {
      loadMs: Number(values['load-ms']),
      outageMs: Number(values['outage-ms']),
      clients: Number(values.clients),
      chats: Number(values.chats),
      intervalMs: Number(values['interval-ms']),
      changes,
      log: (line) => console.error(line),
    });
    results.push(r);
    console.error(`${scenario} run ${run}: ${JSON.stringify(r)}`);
  }
}
console.log(formatTable(results));
const bad = results.filter(
  (r) => r.lost + r.duplicated + r.outOfOrder + r.lostChanges + r.resurrectedDeletes + r.outOfOrderEdits > 0,
);
process.exit(bad.length > 0 ? 1 : 0);
