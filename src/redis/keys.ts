/**
 * Every Redis key and channel name Parley uses, in one place. A chat's keys share the hash tag
 * `{chatId}` (docs/protocol.md "Redis names"), so one Lua script may touch them all on Redis Cluster.
 * `prefix` isolates deployments (and test files) sharing one Redis.
 */
export function createKeys(prefix: string) {
  const chat = (chatId: string) => `${prefix}chat:{${chatId}}`;
  return {
    prefix,
    /** List of the chat's recent messages (JSON), ascending seq. */
    active: (chatId: string) => `${chat(chatId)}:messages:active`,
    /** The chat's seq counter (INCR). */
    seq: (chatId: string) => `${chat(chatId)}:seq`,
    /** Sorted set of seqs accepted but not yet known to be in PostgreSQL (score = seq). */
    pending: (chatId: string) => `${chat(chatId)}:pending`,
    /**
     * The chat's persist ticket (SET NX PX): present while a persist job for the chat is queued or
     * running, so that a busy chat costs one job per batch rather than one per message.
     */
    persistTicket: (chatId: string) => `${chat(chatId)}:persist-ticket`,
    /** Cached member set of the chat, with a sentinel '' marking "loaded". */
    members: (chatId: string) => `${chat(chatId)}:members`,
    /**
     * A token replaced by every membership change of the chat, before and after its PostgreSQL
     * commit: a fill of the member set writes only if the token it read before querying
     * PostgreSQL is still there, so a fill that read before a change cannot undo it.
     */
    membersVersion: (chatId: string) => `${chat(chatId)}:members-version`,
    /** The message a (sender, clientMsgId) pair produced, for idempotent retries. */
    idempotency: (chatId: string, senderId: string, clientMsgId: string) =>
      `${chat(chatId)}:idem:${senderId}:${clientMsgId}`,
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
    /** The members' read positions (hash: user id -> last read seq). */
    reads: (chatId: string) => `${chat(chatId)}:reads`,
    /** Present (short TTL) while the member is typing. */
    typing: (chatId: string, userId: string) => `${chat(chatId)}:typing:${userId}`,
    /** Throttle of the member's typing forwards (SET NX PX). */
    typingGate: (chatId: string, userId: string) => `${chat(chatId)}:typing-gate:${userId}`,
    /** The user's send token bucket (hash: tokens, ts), shared by every api process. */
    rateLimit: (userId: string) => `${prefix}ratelimit:{${userId}}`,
    /**
     * A fixed-window abuse counter (window-limit.lua): `rule` names the limit, `id` whom it counts
     * (a user id, a client address, a hashed username). Each counter is its own hash slot.
     */
    windowLimit: (rule: string, id: string) => `${prefix}limit:{${rule}:${id}}`,
    /** SCAN pattern matching every chat's pending set (the archive sweep). */
    pendingPattern: () => `${globEscape(prefix)}chat:{*}:pending`,
    /** SCAN pattern matching every key of every chat (the archive finds its chats with it). */
    chatKeysPattern: () => `${globEscape(prefix)}chat:{*}:*`,
    /** The chat id inside one of this prefix's chat keys (null for any other key). */
    chatIdOfKey: (key: string): string | null => {
      const start = `${prefix}chat:{`;
      const end = key.indexOf('}', start.length);
      return key.startsWith(start) && end > start.length ? key.slice(start.length, end) : null;
    },
    channels: {
      chatMessages: `${prefix}channel:chat-messages`,
      userPresence: `${prefix}channel:user-presence`,
      systemEvents: `${prefix}channel:system-events`,
      /** Membership changes, so every api process keeps its chat → sockets index in step. */
      membership: `${prefix}channel:membership`,
      /** Typing and read events (`chatId SP userId SP frame`), for the chat's other members. */
      chatEvents: `${prefix}channel:chat-events`,
      /** SHA-256 (hex) of a revoked session token: every api process forgets it and closes its sockets. */
      sessionRevoked: `${prefix}channel:session-revoked`,
    },
  } as const;
}

export type Keys = ReturnType<typeof createKeys>;

/** A prefix as a SCAN/KEYS glob that matches only itself (a prefix may hold `*`, `?`, `[`). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** The seq of a message JSON as the send path builds it (`"seq"` precedes the body). */
export function seqOfJson(json: string): number {
  const m = /"seq":(\d+)/.exec(json);
  if (!m?.[1]) throw new Error('message JSON without seq');
  return Number(m[1]);
}
