import type pg from 'pg';
import type { ApiClient } from './http-client.js';
import type { Frame, TestSocket } from './ws-client.js';

/** A message as the contract describes it (docs/protocol.md "Message lifecycle"). */
export interface WireMessage {
  id: string;
  chatId: string;
  seq: number;
  senderId: string;
  body: string;
  clientMsgId: string | null;
  createdAt: string;
  replyTo: number | null;
  editedAt: string | null;
  deletedAt: string | null;
  reactions: { emoji: string; count: number; userIds: string[] }[];
  rev: number;
}

let counter = 0;
/** A clientMsgId nobody used before in this test process. */
export const cid = (tag = 'c') => `${tag}-${process.pid}-${++counter}`;

/**
 * Sends a frame carrying a clientMsgId (send, edit, delete, react) and resolves with the `ack` or
 * `error` answering it.
 */
export async function request(socket: TestSocket, frame: { clientMsgId: string } & Record<string, unknown>) {
  const from = socket.frames.length;
  socket.send(frame);
  return socket.next(
    (f) => (f.type === 'ack' || f.type === 'error') && f.clientMsgId === frame.clientMsgId,
    `the answer to ${frame.type as string} ${frame.clientMsgId}`,
    from,
  );
}

/** Like `request`, but the answer must be an ack; resolves with the acked message. */
export async function acked(
  socket: TestSocket,
  frame: { clientMsgId: string } & Record<string, unknown>,
): Promise<WireMessage & { ackState: unknown }> {
  const answer = await request(socket, frame);
  if (answer.type !== 'ack') throw new Error(`${frame.type as string} refused: ${JSON.stringify(answer)}`);
  return { ...(answer.message as WireMessage), ackState: answer.state };
}

/** The `message.updated` frames a socket got for one message, in arrival order. */
export const updatesOf = (socket: TestSocket, chatId: string, seq: number): WireMessage[] =>
  socket
    .of('message.updated')
    .map((f) => f.message as WireMessage)
    .filter((m) => m.chatId === chatId && m.seq === seq);

/** The `message` frames a socket got for one chat, in arrival order. */
export const messagesOf = (socket: TestSocket, chatId: string): WireMessage[] =>
  socket
    .of('message')
    .map((f) => f.message as WireMessage)
    .filter((m) => m.chatId === chatId);

/** The contract's HTTP routes for changing a message. */
export const changes = (http: ApiClient) => ({
  edit: (token: string, chatId: string, seq: number, body: string) =>
    http.request('PATCH', `/api/chats/${chatId}/messages/${seq}`, { body }, token),
  remove: (token: string, chatId: string, seq: number) =>
    http.request('DELETE', `/api/chats/${chatId}/messages/${seq}`, undefined, token),
  react: (token: string, chatId: string, seq: number, emoji: string, on = true) =>
    http.request(
      on ? 'PUT' : 'DELETE',
      `/api/chats/${chatId}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`,
      undefined,
      token,
    ),
  sendReply: (token: string, chatId: string, body: string, replyTo: unknown, clientMsgId?: string) =>
    http.request(
      'POST',
      `/api/chats/${chatId}/messages`,
      { body, replyTo, ...(clientMsgId ? { clientMsgId } : {}) },
      token,
    ),
  chat: (token: string, chatId: string) => http.request('GET', `/api/chats/${chatId}`, undefined, token),
  chatList: (token: string) => http.request('GET', '/api/chats?limit=200', undefined, token),
  /** One message as history shows it now (null when the page does not hold it). */
  async historyOf(token: string, chatId: string, seq: number): Promise<WireMessage | null> {
    const r = await http.request('GET', `/api/chats/${chatId}/messages?after=${seq - 1}&limit=1`, undefined, token);
    if (r.status !== 200) throw new Error(`history: ${r.status} ${JSON.stringify(r.body)}`);
    const m = (r.body.messages as WireMessage[])[0];
    return m && m.seq === seq ? m : null;
  },
});

/** A message's row in PostgreSQL, in the wire's shape (null when it is not there). */
export async function storedMessage(pool: pg.Pool, chatId: string, seq: number): Promise<WireMessage | null> {
  const rows = await storedMessages(pool, chatId);
  return rows.find((r) => r.seq === seq) ?? null;
}

/** Every row of a chat in PostgreSQL, ascending seq, in the wire's shape. */
export async function storedMessages(pool: pg.Pool, chatId: string): Promise<WireMessage[]> {
  const { rows } = await pool.query(
    `SELECT id::text, chat_id::text, seq::int, sender_id::text, body, client_msg_id, created_at, reply_to::int,
            edited_at, deleted_at, reactions, rev::int
       FROM messages WHERE chat_id = $1 ORDER BY seq`,
    [chatId],
  );
  // The test pool (createPgPool) reads timestamptz as ISO strings already; a plain pool gives Dates.
  const iso = (d: Date | string | null) => (d === null ? null : typeof d === 'string' ? d : d.toISOString());
  return rows.map((r) => ({
    id: r.id,
    chatId: r.chat_id,
    seq: r.seq,
    senderId: r.sender_id,
    body: r.body,
    clientMsgId: r.client_msg_id,
    createdAt: iso(r.created_at)!,
    replyTo: r.reply_to,
    editedAt: iso(r.edited_at),
    deletedAt: iso(r.deleted_at),
    reactions: r.reactions,
    rev: r.rev,
  }));
}

/** How many of the chat's seqs 1..seq PostgreSQL holds. */
export async function heldUpTo(pool: pg.Pool, chatId: string, seq: number): Promise<number> {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM messages WHERE chat_id = $1 AND seq <= $2', [
    chatId,
    seq,
  ]);
  return rows[0].n as number;
}

export interface PersistedCheck {
  chatId: string;
  seq: number;
  /** How many of seqs 1..seq PostgreSQL held when the frame arrived (queried right then). */
  held: number;
}

/**
 * Queries PostgreSQL the moment each `persisted` frame reaches the socket (on the socket's own
 * message event, before anything else runs): `checks()` resolves with what it held for each.
 */
export function watchPersisted(socket: TestSocket, pool: pg.Pool) {
  const pending: Promise<PersistedCheck>[] = [];
  socket.ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as Frame;
    if (f.type !== 'persisted') return;
    const chatId = f.chatId as string;
    const seq = f.seq as number;
    pending.push(heldUpTo(pool, chatId, seq).then((held) => ({ chatId, seq, held })));
  });
  return { checks: () => Promise.all(pending) };
}
