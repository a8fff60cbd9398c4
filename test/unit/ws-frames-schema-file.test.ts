import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderWsFramesSchema, WS_FRAMES_SCHEMA_FILE } from '../../scripts/ws-frame-schemas.js';

describe('docs/ws-frames.schema.json', () => {
  it('is what `npm run docs:schemas` generates from the zod schemas (run it after changing a frame)', async () => {
    const committed = await readFile(WS_FRAMES_SCHEMA_FILE, 'utf8').catch(() => '(missing)');
    expect(committed).toBe(renderWsFramesSchema());
  });
});
