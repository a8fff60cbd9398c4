import { Hono } from 'hono';
import { idSchema, type Schemas } from '../../domain/schemas.js';
import type { ReceiptService } from '../../services/receipt-service.js';
import { type AppEnv, parse, readBody } from '../context.js';

/** POST /api/chats/:chatId/read `{seq}`: the HTTP twin of the `read` frame. */
export function receiptRoutes(deps: { receipts: ReceiptService; schemas: Schemas }) {
  const app = new Hono<AppEnv>();
  app.post('/:chatId/read', async (c) => {
    const chatId = parse(idSchema, c.req.param('chatId'));
    const { seq } = await readBody(c, deps.schemas.readBody);
    await deps.receipts.markRead(c.get('user').id, chatId, seq);
    return c.body(null, 204);
  });
  return app;
}
