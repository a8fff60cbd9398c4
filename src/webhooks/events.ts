import { createHmac, timingSafeEqual } from 'node:crypto';
import type { MembershipChange } from '../domain/events.js';
import type { Message } from '../domain/types.js';

/** The webhook event types of the contract (docs/protocol.md "Integrations"). */
export const WEBHOOK_EVENT_TYPES = [
  'message.created',
  'message.updated',
  'member.added',
  'member.removed',
  'notification.needed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What a receiver gets, one event per POST: `id` is stable across retries and repeats (deduplicate by it). */
export interface WebhookEvent<D = unknown> {
  id: string;
  type: WebhookEventType;
  createdAt: string;
  data: D;
}

/** `data` of a notification.needed: enough for the app to send a push without asking Parley. */
export interface NotificationNeeded {
  userId: string;
  chatId: string;
  chatTitle: string | null;
  /** The chat's unread count for `userId` as of `seq` (its seq minus their read position). */
  unreadCount: number;
  seq: number;
  messageId: string;
  sender: { id: string; username: string; displayName: string };
  /** The first NOTIFY_PREVIEW_CHARS characters of the body. */
  preview: string;
}

/**
 * Event ids, derived from what the event is about so that the same event produced twice (a persist
 * batch redone after a failure, a worker that died before its batch was marked) has the same id.
 * `/` separates the parts: neither chat ids nor user ids hold one, and BullMQ refuses `:` in the
 * job ids they also are. A message is created once per (chat, seq), changed once per (chat, seq, rev).
 */
export const eventIds = {
  messageCreated: (chatId: string, seq: number) => `message.created/${chatId}/${seq}`,
  messageUpdated: (chatId: string, seq: number, rev: number) => `message.updated/${chatId}/${seq}/${rev}`,
  /** `changeId`: one random id per membership change, made once when the change is committed. */
  member: (change: 'added' | 'removed', chatId: string, userId: string, changeId: string) =>
    `member.${change}/${chatId}/${userId}/${changeId}`,
  /** One per (user, chat, seq): the debounce lets at most one out per window anyway. */
  notification: (chatId: string, userId: string, seq: number) => `notification.needed/${chatId}/${userId}/${seq}`,
};

/** message.created: the message as PostgreSQL now holds it. */
export function messageCreated(message: Message, at = new Date()): WebhookEvent<{ message: Message }> {
  return {
    id: eventIds.messageCreated(message.chatId, message.seq),
    type: 'message.created',
    createdAt: at.toISOString(),
    data: { message },
  };
}

/** message.updated: the message in its state at `rev` (an edit, a delete, a reaction). */
export function messageUpdated(message: Message, at = new Date()): WebhookEvent<{ message: Message }> {
  return {
    id: eventIds.messageUpdated(message.chatId, message.seq, message.rev),
    type: 'message.updated',
    createdAt: at.toISOString(),
    data: { message },
  };
}

/** member.added / member.removed, one per user of the change. */
export function memberEvents(
  change: Pick<MembershipChange, 'chatId' | 'userIds' | 'change'>,
  changeId: string,
  at = new Date(),
): WebhookEvent<{ chatId: string; userId: string }>[] {
  return change.userIds.map((userId) => ({
    id: eventIds.member(change.change, change.chatId, userId, changeId),
    type: change.change === 'added' ? 'member.added' : 'member.removed',
    createdAt: at.toISOString(),
    data: { chatId: change.chatId, userId },
  }));
}

export function notificationNeeded(data: NotificationNeeded, at = new Date()): WebhookEvent<NotificationNeeded> {
  return {
    id: eventIds.notification(data.chatId, data.userId, data.seq),
    type: 'notification.needed',
    createdAt: at.toISOString(),
    data,
  };
}

/** The header's name (docs/protocol.md). */
export const SIGNATURE_HEADER = 'Parley-Signature';

/** Hex HMAC-SHA256 of `<t>.<raw body>` under the secret. */
export function signatureOf(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, for a delivery made at `nowMs`. */
export function signatureHeader(secret: string, body: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${signatureOf(secret, t, body)}`;
}

/**
 * What a receiver does (tests, and a reference for apps): parses the header, recomputes the HMAC
 * over the raw body and compares in constant time; with `toleranceS`, refuses a timestamp that far
 * from `nowMs` (replays). True only when some v1 matches.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  { toleranceS, nowMs = Date.now() }: { toleranceS?: number; nowMs?: number } = {},
): boolean {
  if (!header) return false;
  const parts = header.split(',').map((p) => p.trim().split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t)) return false;
  if (toleranceS !== undefined && Math.abs(nowMs / 1000 - t) > toleranceS) return false;
  const expected = Buffer.from(signatureOf(secret, t, body), 'hex');
  return parts
    .filter(([k, v]) => k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v))
    .some(([, v]) => timingSafeEqual(Buffer.from(v as string, 'hex'), expected));
}
