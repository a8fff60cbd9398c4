import type { WebSocket } from 'ws';

/**
 * What one relay process knows of who is where: each chat's members (all of them, wherever
 * connected) and the sockets on this process, by user and by chat. Filled from Redis on connect
 * and from the membership channel, so that several relay processes agree.
 */
export function createLocalSockets() {
  const members = new Map<string, Set<string>>();
  const byUser = new Map<string, Set<WebSocket>>();
  const byChat = new Map<string, Set<WebSocket>>();
  const chatsOf = new Map<WebSocket, Set<string>>();

  function join(ws: WebSocket, chatId: string): void {
    let sockets = byChat.get(chatId);
    if (!sockets) byChat.set(chatId, (sockets = new Set()));
    sockets.add(ws);
    chatsOf.get(ws)?.add(chatId);
  }

  return {
    /** Registers a socket before its chats are read, so that a chat created meanwhile still reaches it. */
    attach(userId: string, ws: WebSocket): void {
      let sockets = byUser.get(userId);
      if (!sockets) byUser.set(userId, (sockets = new Set()));
      sockets.add(ws);
      chatsOf.set(ws, new Set());
    },

    /** The socket's chats, as Redis listed them on connect. */
    joinChats(ws: WebSocket, chatIds: readonly string[]): void {
      if (!chatsOf.has(ws)) return; // closed meanwhile
      for (const chatId of chatIds) join(ws, chatId);
    },

    detach(userId: string, ws: WebSocket): void {
      byUser.get(userId)?.delete(ws);
      if (byUser.get(userId)?.size === 0) byUser.delete(userId);
      for (const chatId of chatsOf.get(ws) ?? []) byChat.get(chatId)?.delete(ws);
      chatsOf.delete(ws);
    },

    /** A chat's members (a new chat, or one announced by another relay): its local sockets join it. */
    setMembers(chatId: string, userIds: readonly string[]): void {
      members.set(chatId, new Set(userIds));
      for (const userId of userIds) for (const ws of byUser.get(userId) ?? []) join(ws, chatId);
    },

    /** The chat's members when known here (undefined: ask Redis). */
    membersOf(chatId: string): ReadonlySet<string> | undefined {
      return members.get(chatId);
    },

    /** This process's sockets of the chat's members. */
    socketsOf(chatId: string): ReadonlySet<WebSocket> | undefined {
      return byChat.get(chatId);
    },

    closeAll(): void {
      for (const ws of chatsOf.keys()) ws.terminate();
    },
  };
}

export type LocalSockets = ReturnType<typeof createLocalSockets>;
