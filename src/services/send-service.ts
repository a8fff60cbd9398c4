import { randomUUID } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import type { AcceptedMessage, Message } from '../domain/types.js';
import type { RedisCircuit } from '../infra/redis-circuit.js';
import { decodeMessage, encodeMessage, type MessageLog } from '../message-log/message-log.js';
import type { DirectMessageStore } from '../stores/direct-message-store.js';
import { enqueueClaims, logFailure } from './log-failure.js';
import type { MembershipService } from './membership-service.js';
import { rateLimited, type SendRateLimiter } from './rate-limiter.js';
import type { SeqGuard } from './seq-guard.js';

export interface SendInput {
  chatId: string;
  senderId: string;
  body: string;
  clientMsgId?: string | null | undefined;
  /** The seq of the message of the same chat this one replies to. */
  replyTo?: number | null | undefined;
}

/** The stages of one send, timed for the latency breakdown (metrics). */
export type SendStage = 'rate_limit' | 'append' | 'enqueue';

export interface SendServiceDeps {
  log: Pick<MessageLog, 'append' | 'enqueue'>;
  membership: Pick<MembershipService, 'load'>;
  /** Degraded mode: sends written straight to PostgreSQL while the circuit is open. */
  circuit: RedisCircuit;
  direct: Pick<DirectMessageStore, 'send'>;
  seqGuard: Pick<SeqGuard, 'seed'>;
  /**
   * The per-user send limit (src/services/rate-limiter.ts), taken before anything is written, so
   * a refused send never gets a seq: by the append itself (`appendBucket`) on one Redis, else by
   * `check` first (Redis Cluster, or the local bucket while Redis is down).
   */
  rateLimit?: Pick<SendRateLimiter, 'check' | 'appendBucket'>;
  /**
   * The stored message a (sender, clientMsgId) produced: a repeated send whose original has left
   * Redis's active list (it is in PostgreSQL then) is answered with it.
   */
  findSent: (chatId: string, senderId: string, clientMsgId: string) => Promise<Message | null>;
  /** Called after every accepted send, with when it started (performance.now(), metrics). */
  onAccepted?: (accepted: AcceptedMessage, startedAt: number) => void;
  /** Called with the duration of each stage of a send, in ms (metrics). */
  onStage?: (stage: SendStage, ms: number) => void;
}

/** How often one send may have to fill a cache (members, seq counter) before it gives up. */
const MAX_ATTEMPTS = 4;

/**
 * The send path behind both HTTP and WebSocket (docs/architecture.md "The message path"): the
 * rate limit, one append to the message log (membership, idempotency, seq, list, publish, ticket
 * claim in one round trip), then, when the append claimed the chat's persist ticket, the chat's
 * persist job, then the caller acks. The message JSON is built once; Redis, pub/sub and every
 * socket carry those same bytes.
 */
export function createSendService(deps: SendServiceDeps) {
  const { log } = deps;
  const stage = deps.onStage;

  async function send(input: SendInput): Promise<AcceptedMessage> {
    const startedAt = performance.now();
    const { chatId, senderId, body } = input;
    const clientMsgId = input.clientMsgId ?? null;
    // Where the append does not take the token itself (Redis Cluster, or Redis down: the local
    // bucket), a check first.
    const bucket = deps.circuit.isOpen ? null : (deps.rateLimit?.appendBucket ?? null);
    if (!bucket) await deps.rateLimit?.check(senderId, clientMsgId);
    let t = performance.now();
    if (!bucket) stage?.('rate_limit', t - startedAt);
    const draft = {
      id: randomUUID(),
      chatId,
      senderId,
      body,
      clientMsgId,
      createdAt: new Date().toISOString(),
      replyTo: input.replyTo ?? null,
      editedAt: null,
      deletedAt: null,
      reactions: [],
    };
    if (deps.circuit.isOpen && !(await deps.circuit.recoverIfConnected())) return deps.direct.send(draft);

    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      let result;
      try {
        result = await log.append(draft, bucket);
        deps.circuit.recordSuccess();
      } catch (err) {
        // Returns only when the call never reached Redis: then PostgreSQL takes it.
        logFailure(err, deps.circuit, 'send');
        return deps.direct.send(draft);
      }
      switch (result.kind) {
        case 'accepted': {
          const appended = performance.now();
          stage?.('append', appended - t);
          if (result.claim) {
            await enqueueClaims(log, [result.claim], 'message');
            stage?.('enqueue', performance.now() - appended);
          }
          const accepted = { message: result.message, json: result.json, duplicate: false };
          deps.onAccepted?.(accepted, startedAt);
          return accepted;
        }
        case 'duplicate': {
          if (result.claim) await enqueueClaims(log, [result.claim], 'message');
          if (result.json !== '') return { message: decodeMessage(result.json), json: result.json, duplicate: true };
          // The original was trimmed from the list, so PostgreSQL holds it. Found by its
          // clientMsgId rather than the seq Redis remembered: a first attempt superseded by its
          // retry (MessageStore.insertBatch) is answered with the retry that was stored.
          // Only a send with a clientMsgId can be a duplicate: the append matched it.
          if (clientMsgId === null) throw new Error('a send without a clientMsgId was answered as a duplicate');
          const stored = await deps.findSent(chatId, senderId, clientMsgId);
          if (!stored)
            throw new AppError(
              'unavailable',
              'the original message is not readable yet, retry with the same clientMsgId',
            );
          return { message: stored, json: encodeMessage(stored), duplicate: true };
        }
        case 'rate-limited':
          throw rateLimited(result.retryAfterMs, clientMsgId);
        case 'bad-reply':
          throw new AppError('validation_failed', 'replyTo must be the seq of a message of this chat');
        case 'forbidden':
          throw new AppError('forbidden', 'not a member of this chat');
        case 'no-members':
          await deps.membership.load(chatId);
          break;
        case 'no-seq':
          await deps.seqGuard.seed(chatId);
          break;
      }
      t = performance.now();
    }
    throw new AppError('unavailable', 'could not accept the message, retry with the same clientMsgId');
  }

  return { send };
}

export type SendService = ReturnType<typeof createSendService>;
