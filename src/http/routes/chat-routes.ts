import { Hono } from 'hono';
import { idSchema, type Schemas } from '../../domain/schemas.js';
import type { ChatService } from '../../services/chat-service.js';
import type { HistoryService } from '../../services/history-service.js';
import type { MembershipService } from '../../services/membership-service.js';
import type { SendService } from '../../services/send-service.js';
import { type AppEnv, parse, parseQuery, readBody } from '../context.js';

export interface ChatRoutesDeps {
  schemas: Schemas;
  chats: ChatService;
  membership: MembershipService;
  sender: SendService;
  history: HistoryService;
}

/** /api/chats: chats, members, messages and history. */
export function chatRoutes(deps: ChatRoutesDeps) {
  const { schemas } = deps;
  const app = new Hono<AppEnv>();
  const chatId = (raw: string) => parse(idSchema, raw);

  app.post('/', async (c) => {
    const input = await readBody(c, schemas.createChatBody);
    return c.json({ chat: await deps.chats.create(c.get('user').id, input) }, 201);
  });

  // Paged (docs/protocol.md): `?limit=1..200` (default 50) and `cursor`, a previous page's nextCursor.
  app.get('/', async (c) => {
    const { limit, cursor } = parseQuery(c, schemas.listChatsQuery);
    return c.json(await deps.chats.list(c.get('user').id, { limit, cursor }));
  });

  app.get('/:chatId', async (c) =>
    c.json({ chat: await deps.chats.get(c.get('user').id, chatId(c.req.param('chatId'))) }),
  );

  app.post('/:chatId/members', async (c) => {
    const id = chatId(c.req.param('chatId'));
    const { userId } = await readBody(c, schemas.addMemberBody);
    await deps.chats.addMember(c.get('user').id, id, userId);
    return c.json({ chatId: id, userId }, 201);
  });

  app.delete('/:chatId/members/:userId', async (c) => {
    const id = chatId(c.req.param('chatId'));
    const userId = parse(idSchema, c.req.param('userId'));
    await deps.chats.removeMember(c.get('user').id, id, userId);
    return c.body(null, 204);
  });

  app.post('/:chatId/messages', async (c) => {
    const id = chatId(c.req.param('chatId'));
    const input = await readBody(c, schemas.sendBody);
    const accepted = await deps.sender.send({ chatId: id, senderId: c.get('user').id, ...input });
    return c.body(`{"message":${accepted.json}}`, 201, { 'content-type': 'application/json' });
  });

  app.get('/:chatId/messages', async (c) => {
    const id = chatId(c.req.param('chatId'));
    const query = parseQuery(c, schemas.historyQuery);
    await deps.membership.requireMember(id, c.get('user').id);
    return c.json(await deps.history.page(id, query));
  });

  return app;
}
