/**
 * The types of Parley's public contract (docs/protocol.md, docs/ws-frames.schema.json), written
 * out here so that the SDK depends on no server code.
 */

export interface User {
  id: string;
  username: string;
  displayName: string;
  createdAt: string;
}

export interface Chat {
  id: string;
  title: string | null;
  createdBy: string;
  createdAt: string;
  lastSeq: number;
  persistedSeq: number;
}

export interface ChatMember {
  userId: string;
  username: string;
  displayName: string;
  joinedAt: string;
  /** The highest seq this member has read. */
  lastReadSeq: number;
}

export interface ChatWithMembers extends Chat {
  members: ChatMember[];
}

export interface ChatListItem extends Chat {
  lastMessage: Message | null;
  unreadCount: number;
}

export interface Reaction {
  emoji: string;
  count: number;
  userIds: string[];
}

export interface Message {
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
  reactions: Reaction[];
  rev: number;
}

export interface Presence {
  userId: string;
  status: 'online' | 'offline';
  lastSeenAt: string | null;
}

export interface ErrorBody {
  code: string;
  message: string;
  retryAfterMs?: number;
  chatId?: string;
}

/** What a `sync` names per chat: the last seen seq, with the last seen rev when known. */
export type SyncPoint = number | { seq: number; rev: number };

export type ClientFrame =
  | { type: 'send'; chatId: string; body: string; clientMsgId: string; replyTo?: number }
  | { type: 'sync'; chats: Record<string, SyncPoint> }
  | { type: 'typing'; chatId: string }
  | { type: 'read'; chatId: string; seq: number }
  | { type: 'edit'; chatId: string; seq: number; body: string; clientMsgId?: string }
  | { type: 'delete'; chatId: string; seq: number; clientMsgId?: string }
  | { type: 'react'; chatId: string; seq: number; emoji: string; on: boolean; clientMsgId?: string }
  | { type: 'ping'; ref?: string };

export type ServerFrame =
  | { type: 'ready'; user: User; connectionId: string }
  | { type: 'ack'; clientMsgId: string | null; message: Message; state: 'accepted' }
  | { type: 'message'; message: Message }
  | { type: 'message.updated'; message: Message }
  | { type: 'persisted'; chatId: string; seq: number }
  | { type: 'synced'; revs?: Record<string, number> }
  | { type: 'presence'; userId: string; status: 'online' | 'offline'; lastSeenAt: string | null }
  | { type: 'typing'; chatId: string; userId: string }
  | { type: 'read'; chatId: string; userId: string; seq: number }
  | { type: 'system'; event: string; data?: unknown }
  | ({ type: 'error'; clientMsgId?: string } & ErrorBody)
  | { type: 'pong'; ref?: string };

/** The connection as a UI shows it. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'logged-out' | 'closed';

/** Close codes the server uses (docs/protocol.md, "Additions"). */
export const CloseCodes = {
  goingAway: 1001,
  flood: 1008,
  tooBig: 1009,
  sessionEnded: 4001,
  resync: 4008,
} as const;
