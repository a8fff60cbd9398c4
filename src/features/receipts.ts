import { idSchema, type Schemas } from '../domain/schemas.js';
import { parse, readBody } from '../http/context.js';
import type { ReceiptService } from '../services/receipt-service.js';
import type { Feature } from './feature.js';

/**
 * Read receipts: the `read` frame and its HTTP twin POST /api/chats/:chatId/read `{seq}` move the
 * member's read position forward (services/receipt-service.ts); the chat's other members get a
 * `read` frame through the chat's own channel.
 */
export function receiptsFeature(deps: { receipts: ReceiptService; schemas: Schemas }): Feature {
  const { receipts } = deps;
  return {
    name: 'receipts',
    routes: {
      api(api) {
        api.post('/chats/:chatId/read', async (c) => {
          const chatId = parse(idSchema, c.req.param('chatId'));
          const { seq } = await readBody(c, deps.schemas.readBody);
          await receipts.markRead(c.get('user').id, chatId, seq);
          return c.body(null, 204);
        });
      },
    },
    frames: {
      async read(conn, frame) {
        await receipts.markRead(conn.userId, frame.chatId, frame.seq);
      },
    },
  };
}
