import { describe, expect, it } from 'vitest';
import { runScenario, SCENARIOS } from '../../scripts/faults/checker.js';

/**
 * The short form of `npm run check:faults`: every fault scenario once, on private Redis and
 * PostgreSQL servers with real processes and retrying clients. Nothing acked may be lost, nothing
 * duplicated, no seq reused, and every client's acked seqs must grow; after a worker is killed
 * under load, PostgreSQL must hold every acked message within 10 s of the new worker's start.
 * The clients also edit, delete and react (30 % of their operations): every message's final row
 * must be its last acked change (no change lost, no delete undone, no older edit winning).
 */
describe('guarantee checker (short form)', () => {
  it.each(SCENARIOS)(
    '%s',
    async (scenario) => {
      // What the checker says as it goes, printed when the scenario fails.
      const said: string[] = [];
      const r = await runScenario(scenario, {
        loadMs: 3000,
        outageMs: 1500,
        clients: 4,
        chats: 2,
        intervalMs: 20,
        log: (line) => said.push(line),
      }).catch((err: unknown) => {
        throw new Error(`${String(err)}\nthe checker said:\n${said.join('\n')}`);
      });
      expect(r.acked).toBeGreaterThan(50);
      expect(r.duplicated).toBe(0);
      expect(r.outOfOrder).toBe(0);
      // Redis restarted empty included: the apis write what they acked lately to PostgreSQL themselves.
      expect(r.lost).toBe(0);
      expect(r.persisted).toBe(r.acked);
      // Changes were made (and acked) under the fault, and PostgreSQL ends with the last acked one of each.
      expect(r.changesAcked, `changes refused: ${JSON.stringify(r.changesRefused)}`).toBeGreaterThan(20);
      expect(r.lostChanges).toBe(0);
      expect(r.resurrectedDeletes).toBe(0);
      expect(r.outOfOrderEdits).toBe(0);
      // A worker killed under load holds persistence up for seconds, not for its jobs' old lock time.
      if (scenario === 'worker-kill') expect(r.catchUpMs, 'PostgreSQL caught up after the restart (ms)').not.toBeNull();
      if (scenario === 'worker-kill') expect(r.catchUpMs!).toBeLessThan(10_000);
    },
    120_000,
  );
});
