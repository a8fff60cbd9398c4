import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The layers are a check (eslint.config.js, `import-x/no-restricted-paths`), not a sentence in the
 * README: linted as if it were a file at `path`, an import that points the wrong way fails, and
 * one that points the right way passes. Nothing is written to disk.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const RULE = 'import-x/no-restricted-paths';
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: root, overrideConfigFile: 'eslint.config.js' });
});

/** The layer rule's messages for a module at `path` (from the repository root) that imports `from`. */
async function layerErrors(path: string, from: string): Promise<string[]> {
  const code = `import * as probe from '${from}';\n\nexport const probed = probe;\n`;
  const [result] = await eslint.lintText(code, { filePath: `${root}${path}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe('the layer check', () => {
  it('fails on a lower layer importing a higher one', async () => {
    expect(await layerErrors('src/domain/probe.ts', '../services/send-service.js')).toEqual([
      expect.stringContaining('a lower layer imports a higher one'),
    ]);
    expect(await layerErrors('src/services/probe.ts', '../realtime/connection-registry.js')).toHaveLength(1);
    expect(await layerErrors('src/ws/probe.ts', '../features/chats.js')).toHaveLength(1);
  });

  it('fails on src/ importing workers/', async () => {
    expect(await layerErrors('src/services/probe.ts', '../../workers/persist-worker.js')).toEqual([
      expect.stringContaining('src/ imports workers/'),
    ]);
  });

  it('fails on a worker importing an api transport or feature', async () => {
    for (const transport of ['ws/gateway.js', 'http/app.js', 'realtime/fanout.js', 'features/chats.js', 'api.js']) {
      expect(await layerErrors('workers/probe.ts', `../src/${transport}`), transport).toEqual([
        expect.stringContaining('a worker imports an api transport'),
      ]);
    }
  });

  it('passes imports that point down, and a worker using the layers below the transports', async () => {
    expect(await layerErrors('src/services/probe.ts', '../domain/connection.js')).toEqual([]);
    expect(await layerErrors('src/features/probe.ts', '../ws/frame-handler.js')).toEqual([]);
    expect(await layerErrors('src/api.ts', './features/chats.js')).toEqual([]);
    expect(await layerErrors('workers/probe.ts', '../src/message-log/message-log.js')).toEqual([]);
  });
});
