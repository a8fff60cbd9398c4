import type { Message } from '../domain/types.js';

/**
 * The one encoding of a message in Redis, on pub/sub and on the wire: JSON with its fields in
 * this order. `seq` comes early and `createdAt` is written as an ISO string, so that the Lua
 * scripts read them with one pattern each (lua/message.lua): a pattern on a field name cannot
 * match inside a string value, where every quote is escaped.
 */
export function encodeMessage(m: Message): string {
  return (
    `{"id":${JSON.stringify(m.id)},"chatId":${JSON.stringify(m.chatId)},"seq":${m.seq},"senderId":${JSON.stringify(m.senderId)},` +
    `"body":${JSON.stringify(m.body)},"clientMsgId":${JSON.stringify(m.clientMsgId)},"createdAt":${JSON.stringify(m.createdAt)}}`
  );
}

/**
 * A message before its seq is known: the JSON around it, which the append script joins with the
 * seq it allocates (`head .. seq .. tail`), so that nothing is serialised twice. Ids are
 * validated UUIDs and `createdAt` an ISO string: only the body and the clientMsgId need escaping.
 */
export interface MessageTemplate {
  head: string;
  tail: string;
}

export function messageTemplate(m: Omit<Message, 'seq'>): MessageTemplate {
  return {
    head: `{"id":"${m.id}","chatId":"${m.chatId}","seq":`,
    tail: `,"senderId":"${m.senderId}","body":${JSON.stringify(m.body)},"clientMsgId":${JSON.stringify(m.clientMsgId)},"createdAt":"${m.createdAt}"}`,
  };
}

/** The template joined with its seq: byte for byte what the append script stores. */
export const fillTemplate = (t: MessageTemplate, seq: number): string => t.head + seq + t.tail;

export function decodeMessage(json: string): Message {
  return JSON.parse(json) as Message;
}

const SEQ = /"seq":(\d+)/;
const CREATED_AT = /"createdAt":"([^"]+)"/;

/** The seq of an encoded message. */
export function seqOf(json: string): number {
  const m = SEQ.exec(json);
  if (!m?.[1]) throw new Error('message JSON without seq');
  return Number(m[1]);
}

/** When an encoded message was accepted, in ms since the epoch (NaN without a createdAt). */
export function createdAtMsOf(json: string): number {
  const m = CREATED_AT.exec(json);
  return m?.[1] ? Date.parse(m[1]) : Number.NaN;
}
