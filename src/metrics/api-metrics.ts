import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AcceptedMessage } from '../domain/types.js';
import type { ChatPayloadKind } from '../message-log/keys.js';
import { createdAtMsOf } from '../message-log/message-log.js';

/** Latency buckets in seconds: sub-millisecond to a few seconds, where chat latency lives. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** One send (or delivery) in this many has its stages observed. */
const STAGE_SAMPLE = 8;
/** Buckets of one stage of a send or a delivery: tens of microseconds up. */
const STAGE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

/**
 * The api process's own metrics, fed by the hooks the send path, the fan-out and the WebSocket
 * gateway expose (sendService.onAccepted, fanout.onDelivered, gateway.onOpen/onClose).
 */
export function createApiMetrics(registry: Registry) {
  const registers = [registry];
  const connections = new Gauge({
    name: 'parley_ws_connections',
    help: 'Open WebSocket connections on this process',
    registers,
  });
  const sends = new Counter({
    name: 'parley_sends_total',
    help: 'Messages accepted (acked) by this process, duplicates excluded',
    registers,
  });
  const ackLatency = new Histogram({
    name: 'parley_send_ack_seconds',
    help: 'From the start of a send to its acceptance (Redis script and job enqueued), in seconds',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const fanoutLatency = new Histogram({
    name: 'parley_fanout_seconds',
    help: "From a message's acceptance (its createdAt) to its frame written to this process's sockets, in seconds",
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const sendStages = new Histogram({
    name: 'parley_send_stage_seconds',
    help: 'One stage of an accepted send (one send in 8 is observed): rate_limit (the per-user bucket, where the append does not take it itself), append (the message log script), enqueue (the persist job add, when the append claimed the ticket), ack_written (from the start of the send to the ack written to the socket)',
    labelNames: ['stage'],
    buckets: STAGE_BUCKETS,
    registers,
  });
  const fanoutStages = new Histogram({
    name: 'parley_fanout_stage_seconds',
    help: "One stage of a delivery (one in 8 is observed): received (from the message's acceptance to its arrival from pub/sub here), written (writing its frame to this process's sockets)",
    labelNames: ['stage'],
    buckets: STAGE_BUCKETS,
    registers,
  });
  // Stages are sampled (one send or delivery in STAGE_SAMPLE): their distribution is what an
  // operator reads, and every observation costs the hot path. Counted per stage, so each stage's
  // sample is a regular one in STAGE_SAMPLE.
  const counts = new Map<string, number>();
  const sampled = (name: string) => {
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n === STAGE_SAMPLE ? 0 : n);
    return n === STAGE_SAMPLE;
  };
  // Children made once: an observation on the hot path allocates no label object.
  const stage = {
    rate_limit: sendStages.labels('rate_limit'),
    append: sendStages.labels('append'),
    enqueue: sendStages.labels('enqueue'),
    ack_written: sendStages.labels('ack_written'),
    received: fanoutStages.labels('received'),
    written: fanoutStages.labels('written'),
  };
  const fanoutMessages = new Counter({
    name: 'parley_fanout_messages_total',
    help: 'Chat messages received from pub/sub',
    registers,
  });
  const fanoutReceived = new Counter({
    name: 'parley_fanout_received_total',
    help: "Payloads received on the chats' channels from Redis, by kind (only the chats with a member connected here)",
    labelNames: ['kind'] as const,
    registers,
  });
  const received = {
    message: fanoutReceived.labels('message'),
    updated: fanoutReceived.labels('updated'),
    persisted: fanoutReceived.labels('persisted'),
    event: fanoutReceived.labels('event'),
    presence: fanoutReceived.labels('presence'),
    membership: fanoutReceived.labels('membership'),
  } satisfies Record<ChatPayloadKind, unknown>;
  const fanoutFrames = new Counter({
    name: 'parley_fanout_frames_total',
    help: 'Message frames written to local sockets',
    registers,
  });

  return {
    /** `startedAt`: performance.now() when the send began. */
    onAccepted(_accepted: AcceptedMessage, startedAt: number): void {
      sends.inc();
      ackLatency.observe((performance.now() - startedAt) / 1000);
    },

    /** A stage of a send (send-service.ts onStage), in ms; one send in STAGE_SAMPLE is observed. */
    onSendStage(name: 'rate_limit' | 'append' | 'enqueue' | 'ack_written', ms: number): void {
      if (sampled(name)) stage[name].observe(ms / 1000);
    },

    /**
     * `json` is the message as published; its createdAt is when the sending api accepted it.
     * `receivedAt` (ms since the epoch) is when pub/sub handed it here, `writeNs` how long writing
     * its frame to the local sockets took.
     */
    onDelivered(_chatId: string, sockets: number, json?: string, receivedAt?: number, writeMs?: number): void {
      fanoutMessages.inc();
      if (sockets === 0) return;
      fanoutFrames.inc(sockets);
      const createdAt = json ? createdAtMsOf(json) : Number.NaN;
      // Clocks of two machines may disagree by a little; a negative latency says nothing.
      const staged = sampled('delivery');
      if (!Number.isNaN(createdAt)) {
        fanoutLatency.observe(Math.max(0, Date.now() - createdAt) / 1000);
        if (staged && receivedAt !== undefined) stage.received.observe(Math.max(0, receivedAt - createdAt) / 1000);
      }
      if (staged && writeMs !== undefined) stage.written.observe(writeMs / 1000);
    },

    /**
     * A payload arrived on a chat's channel (a new message, a changed one, a persisted seq, a
     * typing or read event, a presence transition).
     */
    onReceived(kind: ChatPayloadKind): void {
      received[kind].inc();
    },

    onOpen(): void {
      connections.inc();
    },

    onClose(): void {
      connections.dec();
    },
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;
