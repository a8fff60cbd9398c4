import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig } from '../../src/config.js';

describe('config', () => {
  it('has a safe default for every setting', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(3000);
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.QUEUE_PREFIX).toMatch(/^\{.+\}$/);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'abc', REDIS_URL: 'not a url', ACTIVE_LIST_MAX: '-1' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('PORT');
    expect(problems).toContain('REDIS_URL');
    expect(problems).toContain('ACTIVE_LIST_MAX');
  });

  it('refuses to start with an ADMIN_TOKEN or BULL_BOARD_PASSWORD under 16 characters, listing both', () => {
    let error: unknown;
    try {
      loadConfig({ ADMIN_TOKEN: 'short-token', BULL_BOARD_PASSWORD: 'x'.repeat(15) });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.find((p) => p.startsWith('ADMIN_TOKEN:'))).toMatch(/at least 16 characters/);
    expect(problems.find((p) => p.startsWith('BULL_BOARD_PASSWORD:'))).toMatch(/at least 16 characters/);
    // The problems name the keys, never the values.
    expect(problems.join('\n')).not.toContain('short-token');
  });

  it('takes operator secrets of 16 characters or more, and leaves them off when unset or empty', () => {
    const config = loadConfig({ ADMIN_TOKEN: 'a'.repeat(16), BULL_BOARD_PASSWORD: 'b'.repeat(40) });
    expect(config.ADMIN_TOKEN).toBe('a'.repeat(16));
    expect(config.BULL_BOARD_PASSWORD).toBe('b'.repeat(40));
    const off = loadConfig({ ADMIN_TOKEN: '', BULL_BOARD_PASSWORD: '' });
    expect(off.ADMIN_TOKEN).toBeUndefined();
    expect(off.BULL_BOARD_PASSWORD).toBeUndefined();
  });

  it('refuses a headers timeout above the request timeout (Node would not start the server)', () => {
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '4000' })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS: must not be above/,
    );
    expect(
      loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '4000', HTTP_REQUEST_TIMEOUT_MS: '4000' }).HTTP_HEADERS_TIMEOUT_MS,
    ).toBe(4000);
  });

  it('lists exactly the schema keys in .env.example', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const listed = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]).sort();
    expect(listed).toEqual(Object.keys(configSchema.shape).sort());
  });

  it('accepts the values .env.example shows', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const env = Object.fromEntries([...example.matchAll(/^([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    expect(() => loadConfig(env)).not.toThrow();
  });
});
