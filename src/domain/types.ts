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
}

export interface ChatMember {
  userId: string;
  username: string;
  displayName: string;
  joinedAt: string;
  lastReadSeq: number;
}

export interface Message {
  id: string;
  chatId: string;
  seq: number;
  senderId: string;
  body: string;
  clientMsgId: string | null;
  createdAt: string;
}

/** A message as the send path accepted it: its JSON is built once and reused everywhere. */
export interface AcceptedMessage {
  message: Message;
  /** `JSON.stringify(message)`, byte for byte what Redis, pub/sub and the sockets carry. */
  json: string;
  /** True when this send repeated an earlier clientMsgId and got the original back. */
  duplicate: boolean;
}
