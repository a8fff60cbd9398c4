import { randomUUID } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError, isRedisRefusedError } from '../domain/errors.js';
import type { AcceptedMessage, Message } from '../domain/types.js';
import type { RedisCircuit } from '../infra/redis-circuit.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import type { PersistJob } from '../queues/definitions.js';
import type { DirectMessageStore } from '../stores/direct-message-store.js';
import type { MembershipService } from './membership-service.js';
import type { SeqGuard } from './seq-guard.js';

export interface SendInput {
  chatId: string;
  senderId: string;
  body: string;
  clientMsgId?: string | null | undefined;
}

export interface SendServiceDeps {
  scripts: Scripts;
  keys: Keys;
  /** For handing back a persist ticket claim whose job could not be added. */
  redis: Pick<Redis, 'del'>;
  persistQueue: Queue<PersistJob>;
  persistJobOptions: JobsOptions;
  /** TTL of a chat's persist ticket, and of a send's claim on it until its job is added. */
  persistTicketMs: number;
  persistTicketClaimMs: number;
  membership: MembershipService;
  /** Degraded mode: sends written straight to PostgreSQL while the circuit is open. */
  circuit: RedisCircuit;
  direct: DirectMessageStore;
  seqGuard: SeqGuard;
  idempotencyTtlSeconds: number;
  /** TTL of a chat's read-position hash (the send moves the sender's own position). */
  readsTtlSeconds: number;
  /**
   * The per-user send limit (src/services/rate-limiter.ts): throws `rate_limited` before the send
   * script runs, so a refused send never gets a seq and nothing refused is stored.
   */
  rateLimit?: (senderId: string, clientMsgId: string | null) => Promise<void>;
  /**
   * The stored message a (sender, clientMsgId) produced: a repeated send whose original has left
   * Redis's active list (it is in PostgreSQL then) is answered with it.
   */
  findSent: (chatId: string, senderId: string, clientMsgId: string) => Promise<Message | null>;
  /** Called after every accepted send, with the time it took (metrics). */
  onAccepted?: (accepted: AcceptedMessage, startedAt: bigint) => void;
}

/** How often one send may have to fill a cache (members, seq counter) before it gives up. */
const MAX_ATTEMPTS = 4;

/**
 * ioredis refused to write the command (no connection, no offline queue): it never reached
 * Redis, so the send can safely go to PostgreSQL instead. Any other failure is ambiguous (the
 * script may have run), so the client is told to retry with its clientMsgId.
 */
const NOT_SENT = /Stream isn't writeable/;

/**
 * The send path behind both HTTP and WebSocket (docs/architecture.md "The message path"):
 * one Lua round trip (membership, idempotency, seq, append, publish), then, when the script took
 * the chat's persist ticket, the chat's persist job, then the caller acks. A send that finds the
 * ticket taken acks at once: a job that has yet to read the chat's pending set is already on its
 * way and will write this message too. The message JSON is built here once; Redis, pub/sub and
 * every socket carry those same bytes.
 */
export function createSendService(deps: SendServiceDeps) {
  const { scripts, keys } = deps;

  /** Adds the chat's persist job for the claim `token` took, then makes the claim the ticket. */
  async function enqueue(chatId: string, token: string): Promise<void> {
    try {
      await deps.persistQueue.add('persist', { chatId }, deps.persistJobOptions);
    } catch {
      // The message is in Redis (pending) and was published. Hand the claim back so that the
      // client's retry with the same clientMsgId claims it and adds the job; if even that fails,
      // the claim runs out and the next send, or the archive sweep, adds one.
      await deps.redis.del(keys.persistTicket(chatId)).catch(() => undefined);
      throw new AppError('unavailable', 'message accepted but not yet queued for storage; retry with the same clientMsgId');
    }
    // Off the ack's path: if this fails, the claim runs out and a later send adds a second job for
    // the chat, which finds its messages written and costs a lookup.
    scripts.confirmTicket(keys.persistTicket(chatId), token, deps.persistTicketMs).catch(() => undefined);
  }

  async function send(input: SendInput): Promise<AcceptedMessage> {
    const startedAt = process.hrtime.bigint();
    const { chatId, senderId, body } = input;
    const clientMsgId = input.clientMsgId ?? null;
    await deps.rateLimit?.(senderId, clientMsgId);
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    if (deps.circuit.isOpen && !(await deps.circuit.recoverIfConnected())) {
      return deps.direct.send({ id, chatId, senderId, body, clientMsgId, createdAt });
    }
    // Ids are validated UUIDs and createdAt is ISO, so only body and clientMsgId need escaping.
    const head = `{"id":"${id}","chatId":"${chatId}","seq":`;
    const tail = `,"senderId":"${senderId}","body":${JSON.stringify(body)},"clientMsgId":${JSON.stringify(clientMsgId)},"createdAt":"${createdAt}"}`;
    const scriptKeys: [string, string, string, string, string, string, string] = [
      keys.seq(chatId),
      keys.active(chatId),
      keys.members(chatId),
      clientMsgId ? keys.idempotency(chatId, senderId, clientMsgId) : keys.seq(chatId),
      keys.pending(chatId),
      keys.reads(chatId),
      keys.persistTicket(chatId),
    ];
    const args = [
      senderId,
      head,
      tail,
      keys.channels.chatMessages,
      chatId,
      clientMsgId ? '1' : '0',
      deps.idempotencyTtlSeconds,
      deps.readsTtlSeconds,
      deps.persistTicketClaimMs,
      id,
    ];

    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      let reply;
      try {
        reply = await scripts.send(scriptKeys, args);
        deps.circuit.recordSuccess();
      } catch (err) {
        if (err instanceof Error && NOT_SENT.test(err.message)) {
          deps.circuit.trip('send could not reach redis');
          return deps.direct.send({ id, chatId, senderId, body, clientMsgId, createdAt });
        }
        // Redis answered but refused the write (full under noeviction): the script wrote nothing,
        // Redis is reachable (no degraded mode), and the client retries later (docs/operations.md).
        if (isRedisRefusedError(err)) {
          throw new AppError('unavailable', 'message store is full or refusing writes, retry later with the same clientMsgId');
        }
        deps.circuit.recordFailure();
        throw new AppError('unavailable', 'message store unavailable, retry with the same clientMsgId');
      }
      switch (reply[0]) {
        case 'OK': {
          const json = head + reply[1] + tail;
          const message: Message = { id, chatId, seq: reply[1], senderId, body, clientMsgId, createdAt };
          if (reply[2] === 1) await enqueue(chatId, id);
          const accepted = { message, json, duplicate: false };
          deps.onAccepted?.(accepted, startedAt);
          return accepted;
        }
        case 'DUP': {
          if (reply[2] === 1) await enqueue(chatId, id);
          if (reply[1] !== '') return { message: JSON.parse(reply[1]) as Message, json: reply[1], duplicate: true };
          // The original was trimmed from the list, so PostgreSQL holds it. Found by its
          // clientMsgId rather than the seq Redis remembered: a first attempt superseded by its
          // retry (MessageStore.insertBatch) is answered with the retry that was stored.
          const stored = await deps.findSent(chatId, senderId, clientMsgId!);
          if (!stored) throw new AppError('unavailable', 'the original message is not readable yet, retry with the same clientMsgId');
          return { message: stored, json: JSON.stringify(stored), duplicate: true };
        }
        case 'FORBIDDEN':
          throw new AppError('forbidden', 'not a member of this chat');
        case 'NOMEMBERS':
          await deps.membership.load(chatId);
          break;
        case 'NOSEQ':
          await deps.seqGuard.seed(chatId);
          break;
      }
    }
    throw new AppError('unavailable', 'could not accept the message, retry with the same clientMsgId');
  }

  return { send };
}

export type SendService = ReturnType<typeof createSendService>;
