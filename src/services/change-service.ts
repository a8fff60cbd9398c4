import { AppError } from '../domain/errors.js';
import { applyChange } from '../domain/message-changes.js';
import type { AcceptedMessage, Message, MessageChange } from '../domain/types.js';
import type { RedisCircuit } from '../infra/redis-circuit.js';
import { decodeMessage, encodeMessage, type MessageLog } from '../message-log/message-log.js';
import type { DirectMessageStore } from '../stores/direct-message-store.js';
import { enqueueClaims, logFailure } from './log-failure.js';
import type { MembershipService } from './membership-service.js';
import { rateLimited, type SendRateLimiter } from './rate-limiter.js';
import type { SeqGuard } from './seq-guard.js';

export interface ChangeInput {
  chatId: string;
  seq: number;
  actorId: string;
  change: MessageChange;
  clientMsgId?: string | null | undefined;
}

/** A change as accepted: the message's state now (or as it was, `changed` false: nothing to change). */
export interface AcceptedChange extends AcceptedMessage {
  changed: boolean;
}

export interface ChangeServiceDeps {
  log: Pick<MessageLog, 'change' | 'enqueue'>;
  membership: Pick<MembershipService, 'load'>;
  circuit: RedisCircuit;
  direct: Pick<DirectMessageStore, 'change'>;
  seqGuard: Pick<SeqGuard, 'seed'>;
  rateLimit?: Pick<SendRateLimiter, 'check' | 'appendBucket'>;
  /** A message as PostgreSQL holds it. */
  storedMessage: (chatId: string, seq: number) => Promise<Message | null>;
  /** The chat's creator (who may delete any message of it), or null for no such chat. */
  creatorOf: (chatId: string) => Promise<string | null>;
  /** Called after every accepted change that changed something (recent acks, metrics). */
  onAccepted?: (accepted: AcceptedChange) => void;
  now?: () => string;
}

const MAX_ATTEMPTS = 4;

/**
 * How long after Redis became unreachable changes wait before going to PostgreSQL: every api
 * process writes what it acked through Redis to PostgreSQL as its circuit opens (api.ts), and a
 * change computed from PostgreSQL's copy before another api's acks are there would lose them.
 */
const DEGRADED_CHANGE_GRACE_MS = 1000;

/**
 * Edits, deletes and reactions (docs/protocol.md "Message lifecycle"), behind both HTTP and
 * WebSocket, on the send path's terms: the same rate limit, membership and idempotency, acked only
 * once the change cannot be lost: committed to the message log (Redis), which publishes it and
 * keeps it pending for PostgreSQL under the chat's persist ticket, like a new message; with Redis
 * unreachable, written straight to PostgreSQL (degraded mode). The rules themselves are
 * domain/message-changes.ts.
 */
export function createChangeService(deps: ChangeServiceDeps) {
  const now = deps.now ?? (() => new Date().toISOString());
  // A chat's creator never changes: once read, kept (bounded, oldest first out).
  const creators = new Map<string, string>();

  async function creatorOf(chatId: string): Promise<string | null> {
    const known = creators.get(chatId);
    if (known) return known;
    const creator = await deps.creatorOf(chatId);
    if (creator) {
      if (creators.size >= 10_000) creators.delete(creators.keys().next().value as string);
      creators.set(chatId, creator);
    }
    return creator;
  }

  /** The rules for this change, with the chat's creator read only for a delete by someone other than the sender. */
  function rules(input: ChangeInput, at: string) {
    return async (current: Message): Promise<Message | null> => {
      const byOther = input.change.kind === 'delete' && current.senderId !== input.actorId;
      const chatCreatorId = byOther ? await creatorOf(input.chatId) : null;
      return applyChange(current, input.change, { actorId: input.actorId, chatCreatorId, now: at });
    };
  }

  async function change(input: ChangeInput): Promise<AcceptedChange> {
    const { chatId, seq, actorId } = input;
    const clientMsgId = input.clientMsgId ?? null;
    const bucket = deps.circuit.isOpen ? null : (deps.rateLimit?.appendBucket ?? null);
    if (!bucket) await deps.rateLimit?.check(actorId, clientMsgId);
    const at = now();

    if (deps.circuit.isOpen && !(await deps.circuit.recoverIfConnected())) {
      return degraded(input, at);
    }
    const apply = rules(input, at);

    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      let result;
      try {
        result = await deps.log.change({
          chatId,
          actorId,
          seq,
          clientMsgId,
          apply,
          loadStored: () => deps.storedMessage(chatId, seq),
          bucket,
        });
        deps.circuit.recordSuccess();
      } catch (err) {
        if (err instanceof AppError) throw err;
        // Returns only when the call never reached Redis: then PostgreSQL takes it.
        logFailure(err, deps.circuit, 'change');
        return degraded(input, at);
      }
      switch (result.kind) {
        case 'changed': {
          if (result.claim) await enqueueClaims(deps.log, [result.claim], 'change');
          const accepted = { message: result.message, json: result.json, duplicate: false, changed: true };
          deps.onAccepted?.(accepted);
          return accepted;
        }
        case 'unchanged':
          return { message: result.message, json: result.json, duplicate: false, changed: false };
        case 'duplicate': {
          if (result.json !== '') {
            return { message: decodeMessage(result.json), json: result.json, duplicate: true, changed: false };
          }
          const stored = await deps.storedMessage(chatId, result.seq);
          if (!stored) throw new AppError('unavailable', 'the message is not readable yet, retry');
          return { message: stored, json: encodeMessage(stored), duplicate: true, changed: false };
        }
        case 'not-found':
          throw new AppError('not_found', 'no such message');
        case 'rate-limited':
          throw rateLimited(result.retryAfterMs, clientMsgId);
        case 'forbidden':
          throw new AppError('forbidden', 'not a member of this chat');
        case 'no-members':
          await deps.membership.load(chatId);
          break;
        case 'no-seq':
          await deps.seqGuard.seed(chatId);
          break;
      }
    }
    throw new AppError('unavailable', 'could not accept the change, retry with the same clientMsgId');
  }

  async function degraded(input: ChangeInput, at: string): Promise<AcceptedChange> {
    const wait = DEGRADED_CHANGE_GRACE_MS - deps.circuit.openForMs;
    if (wait > 0) {
      throw new AppError('unavailable', 'message store switching to PostgreSQL; retry with the same clientMsgId', {
        retryAfterMs: wait,
      });
    }
    return deps.direct.change({
      chatId: input.chatId,
      seq: input.seq,
      actorId: input.actorId,
      apply: rules(input, at),
    });
  }

  return { change };
}

export type ChangeService = ReturnType<typeof createChangeService>;
