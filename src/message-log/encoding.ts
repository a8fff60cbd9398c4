import type { Message } from '../domain/types.js';

/** How many reactors of one emoji the wire shows (docs/protocol.md: `userIds` up to 20). */
export const REACTION_USER_IDS_SHOWN = 20;

const str = JSON.stringify;

/** Everything after `seq` up to and including `"rev":`: the part a change rewrites. */
function afterSeq(m: Omit<Message, 'id' | 'chatId' | 'seq' | 'rev'>): string {
  return (
    `,"senderId":${str(m.senderId)},"body":${str(m.body)},"clientMsgId":${str(m.clientMsgId)},` +
    `"createdAt":${str(m.createdAt)},"replyTo":${m.replyTo ?? 'null'},"editedAt":${str(m.editedAt)},` +
    `"deletedAt":${str(m.deletedAt)},"reactions":${str(m.reactions)},"rev":`
  );
}

/**
 * The one encoding of a message in Redis and on pub/sub: JSON with its fields in this order.
 * `seq` comes early, `createdAt` is an ISO string and `rev` is last, so that the Lua scripts read
 * them with one pattern each (lua/message.lua): a pattern on a field name cannot match inside a
 * string value, where every quote is escaped, and `"rev":N}` can only end the object. Reactions
 * keep every reactor; `wireJson` shows the first REACTION_USER_IDS_SHOWN of each.
 */
export function encodeMessage(m: Message): string {
  return `{"id":${str(m.id)},"chatId":${str(m.chatId)},"seq":${m.seq}${afterSeq(m)}${m.rev}}`;
}

/**
 * A message before its seq and rev are known: the JSON around them, which the append script joins
 * with the seq and rev it allocates (`head .. seq .. middle .. rev .. '}'`), so that nothing is
 * serialised twice. Ids are validated and `createdAt` an ISO string: only the body and the
 * clientMsgId need escaping.
 */
export interface MessageTemplate {
  head: string;
  middle: string;
}

export function messageTemplate(m: Omit<Message, 'seq' | 'rev'>): MessageTemplate {
  return { head: `{"id":${str(m.id)},"chatId":${str(m.chatId)},"seq":`, middle: afterSeq(m) };
}

/** The template joined with its seq and rev: byte for byte what the append script stores. */
export const fillTemplate = (t: MessageTemplate, seq: number, rev: number): string =>
  `${t.head}${seq}${t.middle}${rev}}`;

/** A changed message up to its new rev (`json .. rev .. '}'`), which the change script allocates. */
export function changedPrefix(m: Omit<Message, 'rev'>): string {
  return `{"id":${str(m.id)},"chatId":${str(m.chatId)},"seq":${m.seq}${afterSeq(m)}`;
}

/** A message as the wire shows it: at most REACTION_USER_IDS_SHOWN reactors per emoji. */
export function toWire(m: Message): Message {
  if (!m.reactions.some((r) => r.userIds.length > REACTION_USER_IDS_SHOWN)) return m;
  return { ...m, reactions: m.reactions.map((r) => ({ ...r, userIds: r.userIds.slice(0, REACTION_USER_IDS_SHOWN) })) };
}

/**
 * The stored JSON as the wire shows it: the same bytes unless an emoji has more reactors than
 * the wire shows (rare: only then is it decoded and encoded again).
 */
export function wireJson(json: string): string {
  if (!json.includes('"reactions":[{')) return json;
  const m = decodeMessage(json);
  const wire = toWire(m);
  return wire === m ? json : encodeMessage(wire);
}

export function decodeMessage(json: string): Message {
  const m = JSON.parse(json) as Message;
  // Stored before messages had a lifecycle: the fields it did not have yet.
  if (m.rev === undefined) return { ...m, replyTo: null, editedAt: null, deletedAt: null, reactions: [], rev: 0 };
  return m;
}

const SEQ = /"seq":(\d+)/;
const REV = /"rev":(\d+)}$/;
const CREATED_AT = /"createdAt":"([^"]+)"/;

/** The seq of an encoded message. */
export function seqOf(json: string): number {
  const m = SEQ.exec(json);
  if (!m?.[1]) throw new Error('message JSON without seq');
  return Number(m[1]);
}

/** The rev of an encoded message. */
export function revOf(json: string): number {
  const m = REV.exec(json);
  if (!m?.[1]) throw new Error('message JSON without rev');
  return Number(m[1]);
}

/** When an encoded message was accepted, in ms since the epoch (NaN without a createdAt). */
export function createdAtMsOf(json: string): number {
  const m = CREATED_AT.exec(json);
  return m?.[1] ? Date.parse(m[1]) : Number.NaN;
}
