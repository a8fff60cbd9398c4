import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';
import { createLocalSockets } from './local-sockets.js';

/** An error's text (src/domain/errors.ts's errorText, which the floor may not import: it carries only ws and ioredis). */
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The least a chat relay must do for the bench's load: accounts and chats over HTTP, a WebSocket
 * per user, and per `send` a seq (Redis INCR), a publish on one Redis channel (`chatId SP json`,
 * as Parley publishes), an ack to the sender once published, and the `message` frame to every
 * local socket of the chat's members on every relay process. It stores no message, checks no
 * password and limits nothing: a user is their username, a token names its user.
 */
export interface RelayDeps {
  /** Commands (autopipelined by the caller). */
  redis: Redis;
  /** A connection of its own for pub/sub. */
  subscriber: Redis;
  keyPrefix: string;
}

interface FloorUser {
  id: string;
  username: string;
  displayName: string;
  createdAt: string;
}

/** Bytes sent as a text frame (ws sends Buffers as binary unless told otherwise), as Parley's outbox does. */
const AS_TEXT = { binary: false } as const;
const BODY_MAX = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Users are not stored: the id is derived from the username, so every relay process agrees on it. */
function userOf(username: string): FloorUser {
  const h = createHash('sha256').update(username).digest('hex');
  const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  return { id, username, displayName: username, createdAt: new Date().toISOString() };
}

const tokenOf = (user: FloorUser) => Buffer.from(JSON.stringify(user)).toString('base64url');

function userOfToken(token: string | null | undefined): FloorUser {
  try {
    const user = JSON.parse(Buffer.from(token ?? '', 'base64url').toString()) as Partial<FloorUser>;
    if (typeof user.id === 'string' && typeof user.username === 'string') return user as FloorUser;
  } catch {
    // not a token of ours
  }
  throw new HttpError(401, 'unauthorized', 'missing or bad token');
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_MAX) throw new HttpError(413, 'payload_too_large', 'body too large');
    chunks.push(chunk);
  }
  try {
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString());
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new HttpError(400, 'validation_failed', 'body must be a JSON object');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const errorFrame = (code: string, message: string, clientMsgId?: unknown) =>
  JSON.stringify({ type: 'error', code, message, ...(typeof clientMsgId === 'string' ? { clientMsgId } : {}) });

export function createRelay(deps: RelayDeps) {
  const { redis, subscriber, keyPrefix: p } = deps;
  const keys = {
    members: (chatId: string) => `${p}chat:${chatId}:members`,
    seq: (chatId: string) => `${p}chat:${chatId}:seq`,
    chatsOf: (userId: string) => `${p}user:${userId}:chats`,
    messages: `${p}channel:messages`,
    membership: `${p}channel:membership`,
  };
  const local = createLocalSockets();

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://floor').pathname;
    if (req.method !== 'POST') throw new HttpError(404, 'not_found', 'no such route');
    if (path === '/api/users' || path === '/api/sessions') {
      const { username } = await jsonBody(req);
      if (typeof username !== 'string' || username === '')
        throw new HttpError(400, 'validation_failed', 'username is required');
      const user = userOf(username);
      return path === '/api/users' ? reply(res, 201, { user }) : reply(res, 201, { token: tokenOf(user), user });
    }
    if (path === '/api/chats') {
      const creator = userOfToken(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]);
      const { title, memberIds } = await jsonBody(req);
      if (!Array.isArray(memberIds) || !memberIds.every((m) => typeof m === 'string')) {
        throw new HttpError(400, 'validation_failed', 'memberIds must be an array of user ids');
      }
      const chat = {
        id: randomUUID(),
        title: typeof title === 'string' ? title : null,
        createdBy: creator.id,
        createdAt: new Date().toISOString(),
        lastSeq: 0,
      };
      const members = [...new Set([creator.id, ...(memberIds as string[])])];
      // In Redis for the relays that see a member connect later, announced for those that hold one now.
      await Promise.all([
        redis.sadd(keys.members(chat.id), ...members),
        ...members.map((m) => redis.sadd(keys.chatsOf(m), chat.id)),
        redis.publish(keys.membership, `${chat.id} ${members.join(',')}`),
      ]);
      local.setMembers(chat.id, members);
      return reply(res, 201, { chat });
    }
    throw new HttpError(404, 'not_found', 'no such route');
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal', errorText(err));
      if (!res.headersSent) reply(res, e.status, { error: { code: e.code, message: e.message } });
    });
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: BODY_MAX });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://floor');
    let user: FloorUser;
    try {
      if (url.pathname !== '/ws') throw new HttpError(404, 'not_found', 'no such route');
      user = userOfToken(url.searchParams.get('token'));
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      socket.end(`HTTP/1.1 ${status} Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => void accept(ws, user));
  });

  async function accept(ws: WebSocket, user: FloorUser): Promise<void> {
    local.attach(user.id, ws);
    ws.on('close', () => local.detach(user.id, ws));
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) void onFrame(ws, user, data);
    });
    try {
      local.joinChats(ws, await redis.smembers(keys.chatsOf(user.id)));
    } catch (err) {
      ws.close(1011, `chats unavailable: ${errorText(err)}`);
      return;
    }
    ws.send(JSON.stringify({ type: 'ready', user, connectionId: randomUUID() }));
  }

  async function membersOf(chatId: string): Promise<ReadonlySet<string>> {
    const known = local.membersOf(chatId);
    if (known) return known;
    // A chat another relay created before this one subscribed: Redis has its members.
    const ids = await redis.smembers(keys.members(chatId));
    if (ids.length > 0) local.setMembers(chatId, ids);
    return new Set(ids);
  }

  async function onFrame(ws: WebSocket, user: FloorUser, data: Buffer): Promise<void> {
    let frame: { type?: unknown; chatId?: unknown; body?: unknown; clientMsgId?: unknown };
    try {
      frame = JSON.parse(data.toString()) as typeof frame;
    } catch {
      return void ws.send(errorFrame('validation_failed', 'frames must be JSON'));
    }
    const { chatId, body, clientMsgId } = frame;
    if (frame.type !== 'send' || typeof chatId !== 'string' || typeof body !== 'string') {
      return void ws.send(
        errorFrame('validation_failed', 'only send frames {chatId, body, clientMsgId} are relayed', clientMsgId),
      );
    }
    try {
      if (!(await membersOf(chatId)).has(user.id))
        return void ws.send(errorFrame('forbidden', 'not a member of this chat', clientMsgId));
      const seq = await redis.incr(keys.seq(chatId));
      const cmid = typeof clientMsgId === 'string' ? clientMsgId : null;
      // The fields of Parley's message, in its order.
      const json = JSON.stringify({
        id: randomUUID(),
        chatId,
        seq,
        senderId: user.id,
        body,
        clientMsgId: cmid,
        createdAt: new Date().toISOString(),
      });
      await redis.publish(keys.messages, `${chatId} ${json}`);
      if (ws.readyState === WebSocket.OPEN)
        ws.send(`{"type":"ack","clientMsgId":${JSON.stringify(cmid)},"message":${json}}`);
    } catch (err) {
      if (ws.readyState === WebSocket.OPEN) ws.send(errorFrame('internal', errorText(err), clientMsgId));
    }
  }

  function onPublished(channel: string, payload: string): void {
    const space = payload.indexOf(' ');
    const chatId = payload.slice(0, space);
    if (channel === keys.membership) return local.setMembers(chatId, payload.slice(space + 1).split(','));
    if (channel !== keys.messages) return;
    const sockets = local.socketsOf(chatId);
    if (!sockets || sockets.size === 0) return;
    // Encoded once for every local socket of the chat, as Parley's fan-out does.
    const frame = Buffer.from(`{"type":"message","message":${payload.slice(space + 1)}}`);
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(frame, AS_TEXT);
  }

  return {
    /** Subscribes to the message and membership channels (before listening: nothing is missed). */
    async start(): Promise<void> {
      subscriber.on('message', onPublished);
      await subscriber.subscribe(keys.messages, keys.membership);
    },

    listen(port: number, host: string): Promise<string> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const { address, port: bound } = server.address() as AddressInfo;
          resolve(`http://${address}:${bound}`);
        });
      });
    },

    async close(): Promise<void> {
      local.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
