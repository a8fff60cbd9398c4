/**
 * What the api processes (and the workers) tell each other over Redis pub/sub. Channel names are
 * in src/redis/keys.ts; every api process subscribes to the shared ones, and to a chat's own
 * sharded channel while it holds a member of the chat (src/realtime/fanout.ts; its payloads,
 * `kind SP rest`, are in src/message-log/keys.ts).
 */

/** A PostgreSQL NOTIFY of a chat message (degraded mode): `chatId SP messageJson`. */
export function parseChatMessage(payload: string): { chatId: string; json: string } {
  const space = payload.indexOf(' ');
  return { chatId: payload.slice(0, space), json: payload.slice(space + 1) };
}

/** `channel:membership` (JSON): a membership change, so every api process updates its chat → sockets index. */
export interface MembershipChange {
  chatId: string;
  userIds: string[];
  change: 'added' | 'removed';
  /**
   * Of an addition: the chat's seq counter, read before the change was published (0 when the
   * chat has no counter in Redis: its log then holds only what came after). An api process
   * that held none of the chat's members subscribes to its channel only now, so it delivers the
   * messages after this seq that arrived before its subscription from the log (fanout.ts).
   */
  seq?: number;
  /**
   * The chat's membership change counter after this change (absent from a process that predates
   * it): a change is published on two channels, and of a user's changes in a chat only the
   * newest applies, whichever copy comes first (member-versions.ts).
   */
  v?: number;
}

/**
 * A presence transition and the chats whose members should hear of it: published on each of those
 * chats' channels (presenceEventPayload), without the list.
 */
export interface PresenceChange {
  userId: string;
  status: 'online' | 'offline';
  /** ISO-8601: when the user came online, or was last seen before going offline. */
  lastSeenAt: string;
  chatIds: string[];
}

/** `channel:system-events` (JSON): a system-wide notice for every client of every api process. */
export interface SystemEvent {
  event: string;
  data: unknown;
}

/**
 * Events that reach a chat's members but the one who caused them (typing, read), on the chat's
 * channel after their kind marker (`e`), as `chatId SP userId SP frame` so that every api process
 * routes them without parsing the frame. The user id is percent-encoded there (payloadUserId): ids
 * are opaque and may hold spaces. The read event is built inside read-advance.lua with the same
 * shape, from the encoded id the caller passes.
 */
export function chatEventPayload(chatId: string, userId: string, frame: string): string {
  return `${chatId} ${payloadUserId(userId)} ${frame}`;
}

/** A user id as it goes between spaces in a payload: percent-encoded (no space left in it). */
export const payloadUserId = (userId: string): string => encodeURIComponent(userId);

/** Splits a chat event; null when the payload is not one. */
export function parseChatEvent(payload: string): { chatId: string; userId: string; frame: string } | null {
  const a = payload.indexOf(' ');
  const b = payload.indexOf(' ', a + 1);
  if (a <= 0 || b <= a + 1) return null;
  let userId: string;
  try {
    userId = decodeURIComponent(payload.slice(a + 1, b));
  } catch {
    return null;
  }
  return { chatId: payload.slice(0, a), userId, frame: payload.slice(b + 1) };
}

/**
 * A presence transition on each of the user's chats' channels, after its kind marker (`s`), as
 * `changeId SP userId SP frame` (the id percent-encoded, as in chatEventPayload): the frame is written as it is, to everyone here sharing one of
 * the chats but the user, and `changeId` (the same on every chat, no spaces) tells the copies of
 * one transition apart from the next one, so that each connection gets it once.
 */
export function presenceEventPayload(changeId: string, userId: string, frame: string): string {
  return `${changeId} ${payloadUserId(userId)} ${frame}`;
}

/** Splits a presence event; null when the payload is not one. */
export function parsePresenceEvent(payload: string): { changeId: string; userId: string; frame: string } | null {
  const parts = parseChatEvent(payload);
  return parts && { changeId: parts.chatId, userId: parts.userId, frame: parts.frame };
}
