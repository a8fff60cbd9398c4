/**
 * The chat list's page cursor (GET /api/chats `cursor`, `nextCursor`). Clients treat it as
 * opaque; inside it is where the previous page ended in the list's order (most recent activity
 * first, then chat id): the last chat's activity, exact to the microsecond as PostgreSQL keeps it
 * (a millisecond Date would skip or repeat chats whose times differ below it), and its id.
 */
export interface ChatCursor {
  /** The last listed chat's activity, in microseconds since the epoch (decimal digits). */
  activityUs: string;
  chatId: string;
}

/** Version tag, so that a later layout can tell old cursors apart. */
const TAG = 'c1';
const LAYOUT = /^c1:(\d{1,17}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function encodeChatCursor(cursor: ChatCursor): string {
  return Buffer.from(`${TAG}:${cursor.activityUs}:${cursor.chatId}`).toString('base64url');
}

/** The cursor inside `text`, or null when it is not one this server issued. */
export function decodeChatCursor(text: string): ChatCursor | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(text)) return null;
  const m = LAYOUT.exec(Buffer.from(text, 'base64url').toString('latin1'));
  return m?.[1] && m[2] ? { activityUs: m[1], chatId: m[2] } : null;
}
