import { describe, expect, it } from 'vitest';
import { createReadiness } from '../../src/infra/readiness.js';

const up = { ping: async () => 'PONG', query: async () => ({ rows: [] }) };
const down = async () => {
  throw new Error('connect ECONNREFUSED');
};
const hangs = () => new Promise<never>(() => undefined);

describe('readiness', () => {
  it('reports both dependencies and normal mode when both answer', async () => {
    const ready = createReadiness({ redis: up, pool: up });
    expect(await ready()).toEqual({ redis: true, postgres: true, mode: 'normal' });
  });

  it('is degraded when Redis does not answer, and says which dependency is down', async () => {
    expect(await createReadiness({ redis: { ping: down }, pool: up })()).toEqual({
      redis: false,
      postgres: true,
      mode: 'degraded',
    });
    expect(await createReadiness({ redis: up, pool: { query: down } })()).toEqual({
      redis: true,
      postgres: false,
      mode: 'normal',
    });
  });

  it('bounds each probe, so a hanging dependency counts as down instead of hanging /readyz', async () => {
    const started = Date.now();
    const r = await createReadiness({ redis: { ping: hangs }, pool: { query: hangs }, timeoutMs: 50 })();
    expect(r).toEqual({ redis: false, postgres: false, mode: 'degraded' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('follows the degraded-mode switch even while a PING succeeds', async () => {
    let degraded = true;
    const ready = createReadiness({ redis: up, pool: up, degraded: () => degraded });
    expect(await ready()).toEqual({ redis: false, postgres: true, mode: 'degraded' });
    degraded = false;
    expect(await ready()).toEqual({ redis: true, postgres: true, mode: 'normal' });
  });
});
