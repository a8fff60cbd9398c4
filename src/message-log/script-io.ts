import type { MessageTemplate } from './encoding.js';

/**
 * What the message log's scripts take and answer (scripts.ts runs them): their settings, inputs
 * and replies, as the rest of the log and its callers see them.
 */

/** Settings the scripts take on every call (config values, fixed for a process). */
export interface LogSettings {
  /** How long a clientMsgId is remembered for idempotent retries, in seconds. */
  idempotencyTtlS: number;
  /** TTL of a chat's read-position hash, renewed by every send, in seconds. */
  readsTtlS: number;
  /** TTL of a claim on a persist ticket (until its job add confirms it), in ms. */
  claimMs: number;
  /** TTL of a confirmed persist ticket, in ms. */
  ticketMs: number;
  /** Most persisted messages an active list keeps. */
  listMax: number;
  /** Replicas an append or change waits for (WAIT) before it answers; 0: none. */
  waitReplicas: number;
  /** How long it waits for them, in ms. */
  waitTimeoutMs: number;
}

export type AppendReply =
  /** Accepted with `seq` and `rev`; `claimed`: this call took the chat's free persist ticket. */
  | { kind: 'accepted'; seq: number; rev: number; claimed: boolean }
  /** `replyTo` names a seq the chat has not issued. */
  | { kind: 'bad-reply' }
  /** The sender's bucket had no token: nothing was written. */
  | { kind: 'rate-limited'; retryAfterMs: number }
  /** A repeated clientMsgId: the original's JSON ('' once it left the active list). */
  | { kind: 'duplicate'; json: string; claimed: boolean }
  | { kind: 'forbidden' }
  /** The member set is not cached: load it and append again. */
  | { kind: 'no-members' }
  /** The seq or rev counter is missing: seed them and append again. */
  | { kind: 'no-seq' };

export type ChangeReply =
  /** Committed at `rev`; `json` is the new state; `claimed`: the caller must enqueue. */
  | { kind: 'changed'; rev: number; json: string; claimed: boolean }
  /** The clientMsgId was used before, for the message at `seq`, whose state now is `json` ('' if not in Redis). */
  | { kind: 'duplicate'; seq: number; json: string }
  /** The message changed since it was read: `json` is its state now. */
  | { kind: 'stale'; json: string }
  /** Asked for no change (prefix null), and the checks passed: `json` is the state now. */
  | { kind: 'unchanged'; json: string }
  /** Redis holds no copy: read it from PostgreSQL and pass it as `stored`. */
  | { kind: 'not-loaded' }
  | { kind: 'rate-limited'; retryAfterMs: number }
  | { kind: 'forbidden' }
  | { kind: 'no-members' }
  | { kind: 'no-seq' };

export interface ChangeInput {
  chatId: string;
  actorId: string;
  seq: number;
  clientMsgId: string | null;
  /** The rev of the state the new one was computed from. */
  fromRev: number;
  /** The new state's JSON up to `"rev":` (encoding.ts changedPrefix), or null: no change (only the checks). */
  prefix: string | null;
  /** The message as PostgreSQL holds it, when Redis had no copy. */
  stored: string | null;
  claimToken: string;
  bucket: { capacity: number; perSecond: number } | null;
}

export interface ChangesSinceReply {
  /** Redis's change index holds every change after the rev asked for (else read PostgreSQL too). */
  complete: boolean;
  /** The chat's rev now. */
  rev: number;
  /** Changed messages in rev order: their JSON now, '' for one only PostgreSQL holds. */
  changed: { seq: number; json: string }[];
}

export interface AppendInput {
  chatId: string;
  senderId: string;
  clientMsgId: string | null;
  /** The seq this message replies to, or null. */
  replyTo: number | null;
  template: MessageTemplate;
  /** The token of the ticket claim this call may take (unique per call). */
  claimToken: string;
  /** The sender's send bucket to take a token from in the same step, or null (taken elsewhere, or no limit). */
  bucket: { capacity: number; perSecond: number } | null;
}

export interface HistoryReply {
  /** The list's first seq (0 when empty). */
  head: number;
  /** The list holds every seq from its head to the counter, so it alone answers that range. */
  complete: boolean;
  /** The chat's counter (-1 when missing). */
  counter: number;
  jsons: string[];
}

/** What a persist batch wrote for one chat: new messages by seq, and changes by (seq, rev). */
export interface PersistedChat {
  chatId: string;
  seqs: readonly (number | string)[];
  changes?: readonly { seq: number; rev: number }[];
}

/** The log's settings from the config's keys. */
export function logSettingsOf(config: {
  IDEMPOTENCY_TTL_S: number;
  ACTIVE_TTL_S: number;
  PERSIST_TICKET_CLAIM_MS: number;
  PERSIST_TICKET_MS: number;
  ACTIVE_LIST_MAX: number;
  REDIS_WAIT_REPLICAS: number;
  REDIS_WAIT_TIMEOUT_MS: number;
}): LogSettings {
  return {
    idempotencyTtlS: config.IDEMPOTENCY_TTL_S,
    // A chat's read positions live as long as its other keys once idle.
    readsTtlS: config.ACTIVE_TTL_S,
    claimMs: config.PERSIST_TICKET_CLAIM_MS,
    ticketMs: config.PERSIST_TICKET_MS,
    listMax: config.ACTIVE_LIST_MAX,
    waitReplicas: config.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
  };
}
