/**
 * Chat events that reach a chat's members but the one who caused them (typing, read), published
 * on `channel:chat-events` as `chatId SP userId SP frame` so that every api process routes them
 * without parsing the frame. The read frame is built inside read-advance.lua with the same shape.
 */
export function chatEventPayload(chatId: string, userId: string, frame: string): string {
  return `${chatId} ${userId} ${frame}`;
}

/** Splits a payload; null when it is not one. */
export function parseChatEvent(payload: string): { chatId: string; userId: string; frame: string } | null {
  const a = payload.indexOf(' ');
  const b = payload.indexOf(' ', a + 1);
  if (a <= 0 || b <= a + 1) return null;
  return { chatId: payload.slice(0, a), userId: payload.slice(a + 1, b), frame: payload.slice(b + 1) };
}

/** Ids are validated UUIDs, so they go into the JSON as they are. */
export const typingFrame = (chatId: string, userId: string): string =>
  `{"type":"typing","chatId":"${chatId}","userId":"${userId}"}`;
