import type { Connection } from '../domain/connection.js';
import type { ChatSubscriptions } from './chat-subscriptions.js';

/**
 * The sockets this api process holds, indexed by user and by chat, so that a published message
 * is written to exactly the connections of that chat's members here. A user's chats are held
 * once per user, whatever number of sockets the user has open: the chat index points at users,
 * and each user at their connections.
 */
/** What the gateway knows of a socket before the registry gives it its user's chats. */
export type ConnectionInit = Omit<Connection, 'chats'>;

/** A change of the chat sets, as it arrives (pub/sub) or as a fresh read of PostgreSQL. */
type Change = { chatId: string; change: 'added' | 'removed' } | { replace: readonly string[] };

interface UserEntry {
  readonly userId: string;
  readonly chats: Set<string>;
  readonly connections: Set<Connection>;
  /** Upgrades of this user under way (admitted, not yet attached): the entry stays while any is. */
  pending: number;
  /** Until the user's chats are first read: resolves once they are in `chats`. */
  loading: Promise<void> | null;
  loaded: boolean;
  /**
   * Changes that arrived while the chats were being read, applied once they are: a change
   * published between the read and the registration is never missed.
   */
  journal: Change[] | null;
}

/**
 * `subscriptions`: told when a chat gets its first local member and loses its last (so that this
 * process receives only its chats' traffic); `begin` waits for the user's chats to be subscribed.
 */
export function createConnectionRegistry(subscriptions?: Pick<ChatSubscriptions, 'hold' | 'release' | 'ready'>) {
  const users = new Map<string, UserEntry>();
  const byChat = new Map<string, Set<UserEntry>>();
  let connections = 0;

  function join(entry: UserEntry, chatId: string): void {
    entry.chats.add(chatId);
    let set = byChat.get(chatId);
    if (!set) {
      byChat.set(chatId, (set = new Set()));
      subscriptions?.hold(chatId);
    }
    set.add(entry);
  }

  function leave(entry: UserEntry, chatId: string): void {
    entry.chats.delete(chatId);
    const set = byChat.get(chatId);
    if (!set) return;
    set.delete(entry);
    if (set.size === 0) {
      byChat.delete(chatId);
      subscriptions?.release(chatId);
    }
  }

  function apply(entry: UserEntry, change: Change): void {
    if (!entry.loaded) {
      entry.journal?.push(change);
      return;
    }
    if ('replace' in change) {
      const next = new Set(change.replace);
      for (const chatId of [...entry.chats]) if (!next.has(chatId)) leave(entry, chatId);
      for (const chatId of next) join(entry, chatId);
    } else if (change.change === 'added') {
      join(entry, change.chatId);
    } else {
      leave(entry, change.chatId);
    }
  }

  function dropIfUnused(entry: UserEntry): void {
    if (entry.connections.size > 0 || entry.pending > 0 || users.get(entry.userId) !== entry) return;
    for (const chatId of entry.chats) leave(entry, chatId);
    users.delete(entry.userId);
  }

  function load(entry: UserEntry, loadChats: () => Promise<string[]>): Promise<void> {
    entry.journal = [];
    const loading = loadChats().then(
      (chatIds) => {
        entry.loaded = true;
        entry.loading = null;
        for (const chatId of chatIds) join(entry, chatId);
        const journal = entry.journal ?? [];
        entry.journal = null;
        for (const change of journal) apply(entry, change);
      },
      (err: unknown) => {
        entry.loading = null;
        entry.journal = null;
        throw err;
      },
    );
    entry.loading = loading;
    return loading;
  }

  function deliver(entries: Iterable<UserEntry>, frame: string, encoded: Buffer | undefined): number {
    let n = 0;
    for (const entry of entries) {
      for (const conn of entry.connections) {
        conn.send(frame, encoded);
        n++;
      }
    }
    return n;
  }

  return {
    /**
     * Registers an upgrade of the user before their chats are read, so that membership changes
     * arriving meanwhile are applied to them. The user's first upgrade here reads the chats
     * (`loadChats`); later ones share them (the set is kept current by `applyMembership`).
     * Resolves once the chats are there and this process is subscribed to each (so that every
     * message published after the `ready` that follows reaches the socket); then `attach` the
     * socket, or `abandon` the upgrade.
     */
    async begin(userId: string, loadChats: () => Promise<string[]>): Promise<void> {
      let entry = users.get(userId);
      if (!entry) {
        entry = {
          userId,
          chats: new Set(),
          connections: new Set(),
          pending: 0,
          loading: null,
          loaded: false,
          journal: null,
        };
        users.set(userId, entry);
      }
      entry.pending++;
      try {
        if (!entry.loaded) await (entry.loading ?? load(entry, loadChats));
        await subscriptions?.ready(entry.chats);
      } catch (err) {
        entry.pending--;
        dropIfUnused(entry);
        throw err;
      }
    },

    /** The upgrade `begin` registered is now a socket: it receives its user's chats' events. */
    attach(init: ConnectionInit): Connection {
      const entry = users.get(init.userId);
      if (!entry?.loaded) throw new Error('attach without a completed begin');
      entry.pending--;
      // Spelled out rather than spread: a spread gave every connection a hidden class of its own (~0.5 KB each).
      const conn: Connection = {
        id: init.id,
        userId: init.userId,
        chats: entry.chats,
        send: init.send,
        drained: init.drained,
        close: init.close,
      };
      entry.connections.add(conn);
      connections++;
      return conn;
    },

    /** The upgrade `begin` registered did not become a socket. */
    abandon(userId: string): void {
      const entry = users.get(userId);
      if (!entry) return;
      entry.pending--;
      dropIfUnused(entry);
    },

    remove(conn: Connection): void {
      const entry = users.get(conn.userId);
      if (!entry?.connections.delete(conn)) return;
      connections--;
      dropIfUnused(entry);
    },

    /** These users' connections (here) start or stop receiving the chat's events. */
    applyMembership(chatId: string, userIds: string[], change: 'added' | 'removed'): void {
      for (const userId of userIds) {
        const entry = users.get(userId);
        if (entry) apply(entry, { chatId, change });
      }
    },

    /** Sets users' chats to a fresh read of PostgreSQL (users missing from it have none). */
    replaceChats(userIds: Iterable<string>, chatIdsByUser: ReadonlyMap<string, readonly string[]>): void {
      for (const userId of userIds) {
        const entry = users.get(userId);
        if (entry) apply(entry, { replace: chatIdsByUser.get(userId) ?? [] });
      }
    },

    /** Whether a member of the chat is here. */
    holds(chatId: string): boolean {
      return byChat.has(chatId);
    },

    /** Every user with a connection (or an upgrade under way) here. */
    userIds(): string[] {
      return [...users.keys()];
    },

    /** Writes one frame to every connection of the chat's members here; returns how many got it. */
    toChat(chatId: string, frame: string, exceptUserId?: string): number {
      const members = byChat.get(chatId);
      if (!members) return 0;
      let sockets = 0;
      for (const entry of members) if (entry.userId !== exceptUserId) sockets += entry.connections.size;
      if (sockets === 0) return 0;
      const encoded = sockets > 1 ? Buffer.from(frame) : undefined;
      for (const entry of members) {
        if (entry.userId === exceptUserId) continue;
        for (const conn of entry.connections) conn.send(frame, encoded);
      }
      return sockets;
    },

    /**
     * Writes one frame once to every connection of the members of any of these chats. With
     * `firstTime`, only to the members with a connection for whom it answers true: a frame whose
     * copies come on several chats' channels reaches each member once across the calls.
     */
    toMembersOf(
      chatIds: Iterable<string>,
      frame: string,
      exceptUserId?: string,
      firstTime?: (userId: string) => boolean,
    ): number {
      const entries = new Set<UserEntry>();
      for (const chatId of chatIds) {
        for (const entry of byChat.get(chatId) ?? []) {
          if (entry.userId === exceptUserId || entries.has(entry)) continue;
          if (firstTime && (entry.connections.size === 0 || !firstTime(entry.userId))) continue;
          entries.add(entry);
        }
      }
      return deliver(entries, frame, entries.size > 0 ? Buffer.from(frame) : undefined);
    },

    /** Writes one frame to every connection of these users here. */
    toUsers(userIds: Iterable<string>, frame: string): number {
      const entries = [...userIds].flatMap((u) => users.get(u) ?? []);
      return deliver(entries, frame, entries.length > 0 ? Buffer.from(frame) : undefined);
    },

    toAll(frame: string): number {
      return deliver(users.values(), frame, Buffer.from(frame));
    },

    connectionsOf(userId: string): ReadonlySet<Connection> {
      return users.get(userId)?.connections ?? new Set();
    },

    /** Every connection here (a snapshot). */
    all(): Connection[] {
      return [...users.values()].flatMap((entry) => [...entry.connections]);
    },

    /** Open connections here. */
    get size(): number {
      return connections;
    },
  };
}

export type ConnectionRegistry = ReturnType<typeof createConnectionRegistry>;
