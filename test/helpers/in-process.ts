import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startApi } from '../../src/main.js';
import { startWorkers } from '../../workers/main.js';
import { ApiClient } from './http-client.js';
import type { TestEnv } from './test-env.js';

export interface InProcess {
  url: string;
  api: ApiClient;
  /** Stops the api (and the workers, when started). */
  stop(): Promise<void>;
  stopWorkers?: () => Promise<void>;
}

/**
 * The real api composition root (and optionally the workers') inside the test process, on a free
 * port, against the test's own database and Redis prefix.
 */
export async function startInProcess(
  env: TestEnv,
  { workers = true, overrides = {} }: { workers?: boolean; overrides?: Record<string, string> } = {},
): Promise<InProcess> {
  const config = loadConfig({ ...env.env, ...overrides });
  const logger = createLogger(config.LOG_LEVEL, 'test');
  const api = await startApi(config, logger);
  const stopWorkers = workers ? await startWorkers(config, logger) : undefined;
  return {
    url: api.url,
    api: new ApiClient(api.url),
    stopWorkers,
    async stop() {
      await api.stop();
      await stopWorkers?.();
    },
  };
}
