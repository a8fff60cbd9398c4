/**
 * The sockets this api process holds, indexed by user and by chat, so that a published message
 * is written to exactly the connections of that chat's members here. Kept in step with membership
 * changes on connections that are already open.
 */
export interface Connection {
  readonly id: string;
  readonly userId: string;
  /** Chats whose events this connection receives. */
  readonly chats: Set<string>;
  /**
   * Writes an already-serialised frame (may drop typing/presence, or close a slow consumer).
   * `encoded`, when given, is the frame's UTF-8 bytes: a frame for many sockets is encoded once.
   */
  send(frame: string, encoded?: Buffer): void;
  /**
   * Null when the socket can take more now, else resolves once it has drained (true) or closed
   * (false): bulk writers such as `sync` wait on it so that they keep pace with the client.
   */
  drained?(): Promise<boolean> | null;
}

export function createConnectionRegistry() {
  const byUser = new Map<string, Set<Connection>>();
  const byChat = new Map<string, Set<Connection>>();

  function join(conn: Connection, chatId: string): void {
    conn.chats.add(chatId);
    let set = byChat.get(chatId);
    if (!set) byChat.set(chatId, (set = new Set()));
    set.add(conn);
  }

  function leave(conn: Connection, chatId: string): void {
    conn.chats.delete(chatId);
    const set = byChat.get(chatId);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) byChat.delete(chatId);
  }

  return {
    add(conn: Connection, chatIds: Iterable<string>): void {
      let set = byUser.get(conn.userId);
      if (!set) byUser.set(conn.userId, (set = new Set()));
      set.add(conn);
      for (const chatId of chatIds) join(conn, chatId);
    },

    remove(conn: Connection): void {
      for (const chatId of [...conn.chats]) leave(conn, chatId);
      const set = byUser.get(conn.userId);
      set?.delete(conn);
      if (set?.size === 0) byUser.delete(conn.userId);
    },

    /** Every connection of these users (here) starts or stops receiving the chat's events. */
    applyMembership(chatId: string, userIds: string[], change: 'added' | 'removed'): void {
      for (const userId of userIds) {
        for (const conn of byUser.get(userId) ?? []) (change === 'added' ? join : leave)(conn, chatId);
      }
    },

    /** Writes one frame to every connection in the chat; returns how many got it. */
    toChat(chatId: string, frame: string, except?: (conn: Connection) => boolean): number {
      const conns = byChat.get(chatId);
      if (!conns) return 0;
      const encoded = conns.size > 1 ? Buffer.from(frame) : undefined;
      let n = 0;
      for (const conn of conns) {
        if (except?.(conn)) continue;
        conn.send(frame, encoded);
        n++;
      }
      return n;
    },

    toUser(userId: string, frame: string): number {
      let n = 0;
      for (const conn of byUser.get(userId) ?? []) {
        conn.send(frame);
        n++;
      }
      return n;
    },

    toAll(frame: string): number {
      const encoded = Buffer.from(frame);
      let n = 0;
      for (const set of byUser.values()) for (const conn of set) (conn.send(frame, encoded), n++);
      return n;
    },

    connectionsOf(userId: string): ReadonlySet<Connection> {
      return byUser.get(userId) ?? new Set();
    },

    get size(): number {
      let n = 0;
      for (const set of byUser.values()) n += set.size;
      return n;
    },
  };
}

export type ConnectionRegistry = ReturnType<typeof createConnectionRegistry>;
