import { z } from 'zod';
import { idSchema, type Schemas, seqSchema } from './schemas.js';
import { serverFrame } from './server-frames.js';

/**
 * The WebSocket frames, both ways, as one JSON Schema (draft 2020-12) document: `ClientFrame` is
 * generated from the schema the frame handler parses with, `ServerFrame` from server-frames.ts.
 * Input mode: objects stay open (a client must ignore fields it does not know, the server ignores
 * those it does not use).
 */
export function wsFramesJsonSchema(frame: Schemas['frame']): Record<string, unknown> {
  const both = z.toJSONSchema(z.object({ client: frame, server: serverFrame }), {
    io: 'input',
    unrepresentable: syncChats,
  });
  const client = both.properties?.client;
  if (typeof client !== 'object') throw new Error('the client frame has no JSON Schema');
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Parley WebSocket frames',
    description:
      'Every frame on GET /ws is one JSON text message: ClientFrame from client to server, ServerFrame from server to client. Limits (body length, chats per sync) are the defaults; a deployment may set others (MESSAGE_MAX_CHARS, SYNC_MAX_CHATS).',
    anyOf: [{ $ref: '#/$defs/ClientFrame' }, { $ref: '#/$defs/ServerFrame' }],
    $defs: { ClientFrame: { description: 'a frame a client sends', ...client }, ...both.$defs },
  };
}

/**
 * The one unrepresentable schema: `sync`'s `chats` is checked to be an object (and counted)
 * before its record is parsed, so its input side is a custom check; its shape is the record.
 */
function syncChats(ctx: { path: (string | number)[] }) {
  if (ctx.path.at(-1) !== 'chats') return 'throw' as const;
  const record = z.toJSONSchema(z.record(idSchema, seqSchema), { io: 'input' }) as Record<string, unknown>;
  delete record.$schema;
  return { ...record, description: 'chatId → the last seq the client holds; at most SYNC_MAX_CHATS chats' };
}
