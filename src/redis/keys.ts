/**
 * Every Redis key and channel name Parley uses, in one place. A chat's keys share the hash tag
 * `{chatId}` (PROTOCOL.md "Redis names"), so one Lua script may touch them all on Redis Cluster.
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
    /** Cached member set of the chat, with a sentinel '' marking "loaded". */
    members: (chatId: string) => `${chat(chatId)}:members`,
    /** The message a (sender, clientMsgId) pair produced, for idempotent retries. */
    idempotency: (chatId: string, senderId: string, clientMsgId: string) =>
      `${chat(chatId)}:idem:${senderId}:${clientMsgId}`,
    /** Present while the user is online (with a TTL). */
    presence: (userId: string) => `${prefix}presence:{${userId}}`,
    /** SCAN pattern matching every chat's pending set (the archive sweep). */
    pendingPattern: () => `${prefix}chat:{*}:pending`,
    channels: {
      chatMessages: `${prefix}channel:chat-messages`,
      userPresence: `${prefix}channel:user-presence`,
      systemEvents: `${prefix}channel:system-events`,
      /** Membership changes, so every api process keeps its chat → sockets index in step. */
      membership: `${prefix}channel:membership`,
    },
  } as const;
}

export type Keys = ReturnType<typeof createKeys>;

/** The seq of a message JSON as the send path builds it (`"seq"` precedes the body). */
export function seqOfJson(json: string): number {
  const m = /"seq":(\d+)/.exec(json);
  if (!m?.[1]) throw new Error('message JSON without seq');
  return Number(m[1]);
}
