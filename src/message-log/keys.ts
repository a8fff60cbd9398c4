/**
 * The key layout of the message log: every key of a chat carries the hash tag `{chatId}`, so that
 * one script may touch them all (one Redis Cluster slot per chat). `prefix` isolates deployments
 * (and test files) sharing one Redis.
 */
export function createLogKeys(prefix: string) {
  const chat = (chatId: string) => `${prefix}chat:{${chatId}}`;
  return {
    prefix,
    /** List of the chat's recent messages (JSON, see encoding.ts), ascending seq. */
    active: (chatId: string) => `${chat(chatId)}:messages:active`,
    /** The chat's seq counter (INCR). */
    seq: (chatId: string) => `${chat(chatId)}:seq`,
    /** The chat's rev counter (INCR): every change in the chat, a new message too, takes the next one. */
    rev: (chatId: string) => `${chat(chatId)}:rev`,
    /** Hash seq → JSON now of each message whose latest change is not yet known to be in PostgreSQL. */
    changed: (chatId: string) => `${chat(chatId)}:changed`,
    /** Sorted set of the seqs of messages with a change not yet in PostgreSQL (score = that change's rev). */
    pendingChanges: (chatId: string) => `${chat(chatId)}:changes:pending`,
    /** Sorted set of changed messages' seqs by the rev of their last change, for `sync` with {seq, rev}. */
    revs: (chatId: string) => `${chat(chatId)}:revs`,
    /** The rev after which `revs` holds every change of the chat (a sync from below it reads PostgreSQL too). */
    revsFloor: (chatId: string) => `${chat(chatId)}:revs:floor`,
    /** Sorted set of seqs accepted but not yet known to be in PostgreSQL (score = seq). */
    pending: (chatId: string) => `${chat(chatId)}:pending`,
    /**
     * The chat's persist ticket: held while a persist job for the chat is queued, running, or
     * about to be added by whoever holds its claim (persist-ticket.ts).
     */
    ticket: (chatId: string) => `${chat(chatId)}:persist-ticket`,
    /** The seq a (sender, clientMsgId) pair got, for idempotent retries. */
    idempotency: (chatId: string, senderId: string, clientMsgId: string) =>
      `${chat(chatId)}:idem:${senderId}:${clientMsgId}`,
    /** Cached member set of the chat ('' marks "loaded"): the append script checks membership in it. */
    members: (chatId: string) => `${chat(chatId)}:members`,
    /** The members' read positions: the append script moves the sender's. */
    reads: (chatId: string) => `${chat(chatId)}:reads`,
    /** The sender's send token bucket (hash: tokens, ts), shared by every api process; the append takes from it. */
    rateLimit: (userId: string) => `${prefix}ratelimit:{${userId}}`,
    /** SCAN pattern of every chat's pending set. */
    pendingPattern: () => `${globEscape(prefix)}chat:{*}:pending`,
    /** SCAN pattern of every key of every chat. */
    chatKeysPattern: () => `${globEscape(prefix)}chat:{*}:*`,
    /** The chat id inside one of this prefix's chat keys (null for any other key). */
    chatIdOfKey: (key: string): string | null => {
      const start = `${prefix}chat:{`;
      const end = key.indexOf('}', start.length);
      return key.startsWith(start) && end > start.length ? key.slice(start.length, end) : null;
    },
    /**
     * The chat's sharded channel (SPUBLISH/SSUBSCRIBE; its hash tag is the chat's, so a script of
     * the chat publishes to it in its own slot): appended messages (`m SP json`), changed messages
     * (`u SP json`, the whole message with its new rev), what PostgreSQL holds (`p SP seq`, from
     * the persist worker), a member's typing and read events (`e SP chatId SP userId SP frame`)
     * and the presence transitions of its members (`s SP changeId SP userId SP frame`) and its
     * membership changes (`r SP json`), in the
     * order Redis published them. Only api processes holding a member of the chat subscribe to it.
     */
    channel: (chatId: string) => `${prefix}channel:chat-messages:{${chatId}}`,
  } as const;
}

export type LogKeys = ReturnType<typeof createLogKeys>;

/** A prefix as a SCAN/KEYS glob that matches only itself (a prefix may hold `*`, `?`, `[`). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The kind marker that starts each payload on a chat's channel (`kind SP rest`):
 * - `m SP json`: a new message, `u SP json`: a changed one (the whole message, its new rev);
 * - `p SP seq`: PostgreSQL holds the chat's messages up to seq;
 * - `e SP chatId SP userId SP frame`: a member's typing or read event, for the chat's other members
 *   (typing.lua, read-advance.lua);
 * - `s SP changeId SP userId SP frame`: a member came online or went offline. A transition is
 *   published on every chat of the user, each with the same changeId, so that a process holding
 *   a member of several of them writes it to each connection once.
 * - `r SP json`: a membership change of the chat (MembershipChange), in order with its messages.
 */
export const CHAT_PAYLOAD = {
  message: 'm',
  updated: 'u',
  persisted: 'p',
  event: 'e',
  presence: 's',
  membership: 'r',
} as const;

/** A payload kind by its name (the label of parley_fanout_received_total). */
export type ChatPayloadKind = keyof typeof CHAT_PAYLOAD;
