import { describe, expect, it } from 'vitest';
import { shutdownBudget, shutdownStep } from '../../src/infra/shutdown.js';
import { createLogger } from '../../src/logger.js';

const logger = createLogger('silent', 'test');
const never = () => new Promise<never>(() => undefined);

describe('shutdown steps', () => {
  it('wait for a step that hangs no longer than its cap, record it, release what it holds, and go on', async () => {
    const budget = shutdownBudget(5000);
    let released = false;
    const started = Date.now();
    await shutdownStep(budget, logger, 'hangs', 100, never, () => (released = true));
    await shutdownStep(budget, logger, 'settles', 1000, async () => undefined);
    await shutdownStep(budget, logger, 'fails', 1000, async () => {
      throw new Error('boom');
    });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(released).toBe(true);
    expect(budget.problems).toEqual(['hangs', 'fails']);
  });

  it('share one deadline: once it has passed, every later step still runs but is not waited for', async () => {
    const budget = shutdownBudget(150);
    const started = Date.now();
    const ran: string[] = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      await shutdownStep(budget, logger, name, 1000, () => (ran.push(name), never()));
    }
    expect(Date.now() - started).toBeLessThan(600);
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
    expect(budget.problems).toEqual(['a', 'b', 'c', 'd']);
  });
});
