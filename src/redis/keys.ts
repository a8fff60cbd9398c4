import { createLogKeys } from '../message-log/keys.js';

/**
 * Every Redis key and channel name Parley uses, in one place (those of the message log come from
 * src/message-log/keys.ts). A chat's keys share the hash tag
 * `{chatId}` (docs/protocol.md "Redis names"), so one Lua script may touch them all on Redis Cluster.
 * `prefix` isolates deployments (and test files) sharing one Redis.
 */
export function createKeys(prefix: string) {
  const chat = (chatId: string) => `${prefix}chat:{${chatId}}`;
  // The message log's keys (the list, counter, pending set, ticket, idempotency, members and
  // reads of each chat) are defined once, there.
  const log = createLogKeys(prefix);
  return {
    ...log,
    prefix,
    /**
     * A token replaced by every membership change of the chat, before and after its PostgreSQL
     * commit: a fill of the member set writes only if the token it read before querying
     * PostgreSQL is still there, so a fill that read before a change cannot undo it.
     */
    membersVersion: (chatId: string) => `${chat(chatId)}:members-version`,
    /** The chat's membership change counter: each announced change carries the next (its `v`). */
    membershipCounter: (chatId: string) => `${chat(chatId)}:membership-counter`,
    /**
     * Set once per Redis dataset; its absence means Redis lost its data (restarted empty), so seq
     * counters must be re-seeded with a gap (see src/services/seq-guard.ts).
     */
    generation: () => `${prefix}parley:generation`,
    /** The user's chat ids as last read from PostgreSQL: the fallback while PostgreSQL is away. */
    userChats: (userId: string) => `${prefix}userchats:{${userId}}`,
    /** The same kind of token as `membersVersion`, for the user's chat-id copy. */
    userChatsVersion: (userId: string) => `${prefix}userchats:{${userId}}:version`,
    /** Present while the user is online (with a TTL). */
    presence: (userId: string) => `${prefix}presence:{${userId}}`,
    /** The user's live connection ids, scored by when each expires without a heartbeat. */
    presenceConns: (userId: string) => `${prefix}presence:{${userId}}:conns`,
    /** When the user was last seen (ms), kept for a while after they went offline. */
    presenceSeen: (userId: string) => `${prefix}presence:{${userId}}:seen`,
    /** Users who may be online, scored by when their newest connection expires (the sweep's index). */
    presenceIndex: () => `${prefix}presence-index`,
    /**
     * Debounce of the member's offline notifications in the chat (SET NX PX NOTIFY_DEBOUNCE_MS):
     * while it exists no other `notification.needed` goes out for them (src/webhooks/notifications.ts).
     */
    notifyGate: (chatId: string, userId: string) => `${chat(chatId)}:notify:${userId}`,
    /**
     * A webhook receiver's delivery counts (hash: delivered, failedAttempts, dead, lastError,
     * lastErrorAt), `endpointId` a hash of its URL (src/webhooks/endpoints.ts): every worker
     * counts into it and every api reads it for GET /admin/webhooks.
     */
    webhookStats: (endpointId: string) => `${prefix}webhooks:{${endpointId}}:stats`,
    /** Present (short TTL) while the member is typing. */
    typing: (chatId: string, userId: string) => `${chat(chatId)}:typing:${userId}`,
    /** Throttle of the member's typing forwards (SET NX PX). */
    typingGate: (chatId: string, userId: string) => `${chat(chatId)}:typing-gate:${userId}`,
    /**
     * A fixed-window abuse counter (window-limit.lua): `rule` names the limit, `id` whom it counts
     * (a user id, a client address, a hashed username). Each counter is its own hash slot.
     */
    windowLimit: (rule: string, id: string) => `${prefix}limit:{${rule}:${id}}`,
    channels: {
      /**
       * A chat's own sharded channel: new and changed messages, what PostgreSQL holds, its members'
       * typing, read and presence events (CHAT_PAYLOAD in the log's keys).
       */
      chat: log.channel,
      systemEvents: `${prefix}channel:system-events`,
      /** Membership changes, so every api process keeps its chat → sockets index in step (each also goes on the chat's channel). */
      membership: `${prefix}channel:membership`,
      /** SHA-256 (hex) of a revoked session token: every api process forgets it and closes its sockets. */
      sessionRevoked: `${prefix}channel:session-revoked`,
    },
  } as const;
}

export type Keys = ReturnType<typeof createKeys>;
