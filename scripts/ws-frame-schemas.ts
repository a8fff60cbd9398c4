/**
 * `npm run docs:schemas`: writes docs/ws-frames.schema.json, the WebSocket frames as JSON Schema,
 * from the zod schemas (the client frames the server parses, the server frames it sends). A test
 * fails while the committed file differs from what this generates.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { createSchemas } from '../src/domain/schemas.js';
import { wsFramesJsonSchema } from '../src/domain/ws-frames-json-schema.js';

export const WS_FRAMES_SCHEMA_FILE = fileURLToPath(new URL('../docs/ws-frames.schema.json', import.meta.url));

/** The file's content, with the default limits (an empty environment: nothing of this machine's). */
export function renderWsFramesSchema(): string {
  const config = loadConfig({});
  const schemas = createSchemas({
    messageMaxChars: config.MESSAGE_MAX_CHARS,
    chatMaxMembers: config.CHAT_MAX_MEMBERS,
    syncMaxChats: config.SYNC_MAX_CHATS,
  });
  return `${JSON.stringify(wsFramesJsonSchema(schemas.frame), null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(WS_FRAMES_SCHEMA_FILE, renderWsFramesSchema());
  console.log(`wrote ${WS_FRAMES_SCHEMA_FILE}`);
}
