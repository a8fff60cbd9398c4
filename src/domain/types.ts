/** Domain types of the public contract (docs/protocol.md); ids are opaque strings, times ISO-8601. */

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
  /** Every message of the chat up to this seq is in PostgreSQL (0 until the first is stored). */
  persistedSeq: number;
}

export interface ChatMember {
  userId: string;
  username: string;
  displayName: string;
  joinedAt: string;
  lastReadSeq: number;
}

/** One emoji's reactions on a message: who, in the order they reacted. */
export interface Reaction {
  emoji: string;
  count: number;
  /** Every reactor as stored; the wire shows the first REACTION_USER_IDS_SHOWN (encoding.ts). */
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
  /** The seq of the message of the same chat this one answers, or null. */
  replyTo: number | null;
  /** When the body was last edited (null: never). */
  editedAt: string | null;
  /** When the message was deleted (a tombstone: body '' and no reactions), or null. */
  deletedAt: string | null;
  /** Ordered by first use of each emoji. */
  reactions: Reaction[];
  /** The chat's revision at this message's last change (its creation, an edit, a delete, a reaction). */
  rev: number;
}

/** A change to an existing message (docs/protocol.md "Message lifecycle"). */
export type MessageChange =
  { kind: 'edit'; body: string } | { kind: 'delete' } | { kind: 'react'; emoji: string; on: boolean };

/** A message as the send path accepted it: its JSON is built once and reused everywhere. */
export interface AcceptedMessage {
  message: Message;
  /** `JSON.stringify(message)`, byte for byte what Redis, pub/sub and the sockets carry. */
  json: string;
  /** True when this send repeated an earlier clientMsgId and got the original back. */
  duplicate: boolean;
}

/** The lifecycle fields of a message just sent: no reply unless given, never edited, deleted or reacted to. */
export const freshMessage = (replyTo: number | null = null) => ({
  replyTo,
  editedAt: null,
  deletedAt: null,
  reactions: [] as Reaction[],
});
