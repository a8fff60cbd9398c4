import { chatsHeld, expectedPerApi } from './placement.js';
import { type Series, sumOf } from './prom.js';

/**
 * What each process of a phase took in and spent, for scale-out (BENCHMARKS.md "Scale-out"):
 * the chat payloads each api received from Redis (its /metrics `parley_fanout_received_total`
 * delta) against the messages of the chats it holds and the system's total, and each process's
 * CPU per delivered message.
 */

export interface ReceivedByKind {
  message: number;
  updated: number;
  persisted: number;
}

export interface ApiInbound {
  label: string;
  /** Chats with a member connected to this api, of all the world's chats. */
  chats: number;
  /** Chat payloads received from Redis over the phase, by kind (null: no /metrics, e.g. the floor). */
  received: ReceivedByKind | null;
  /**
   * Acked messages of the chats it holds: what `received.message` equals when fan-out goes only
   * where the members are (with one global channel it would be the system's total).
   */
  expectedMessages: number;
  /** Acked changes of those chats (the `message.updated` payloads expected), null without changes. */
  expectedUpdated: number | null;
  /** `message` frames the api wrote to its sockets (its `parley_fanout_frames_total` delta; null without /metrics). */
  framesWritten: number | null;
  /** `message` frames of the phase's sends that arrived on its connections, counted by the clients. */
  delivered: number;
}

export interface ProcessCost {
  label: string;
  /** CPU seconds (user + system) from the start of the load until everything was delivered and stored. */
  cpuSeconds: number | null;
  /** The deliveries it is charged with: its own for an api (or relay), the system's for a worker. */
  delivered: number;
  /** cpuSeconds per delivered message, in µs. */
  cpuUsPerDelivered: number | null;
  /** cpuSeconds per acked message of the system, in µs. */
  cpuUsPerMessage: number | null;
}

export interface ScaleStats {
  /** The window the CPU was read over: load start until every ack and delivery was in and PostgreSQL held everything (ms). */
  windowMs: number;
  /** The system's acked messages (sends) over the phase, and their deliveries (`message` frames on member connections). */
  messages: number;
  delivered: number;
  /** Chats in the world, and members online per chat (deliveries per message). */
  chats: number;
  fanoutFactor: number | null;
  apis: ApiInbound[];
  /** Each server process, then `servers`: all of them together, charged with every delivery. */
  processes: ProcessCost[];
}

/** The counter deltas of one api's /metrics over the phase (null when either scrape is missing). */
export function apiCounters(
  before: readonly Series[] | null,
  after: readonly Series[] | null,
): { received: ReceivedByKind; framesWritten: number } | null {
  if (!before || !after) return null;
  const delta = (name: string, ...labels: string[]) =>
    Math.round(sumOf(after, name, ...labels) - sumOf(before, name, ...labels));
  const kind = (k: string) => delta('parley_fanout_received_total', `kind="${k}"`);
  return {
    received: { message: kind('message'), updated: kind('updated'), persisted: kind('persisted') },
    framesWritten: delta('parley_fanout_frames_total'),
  };
}

export interface ScaleInput {
  windowMs: number;
  chatOf: ArrayLike<number>;
  apiOf: ArrayLike<number>;
  /** The api labels, in the order of the api URLs (api1, api2... or relay1...; `parley` for --all-in-one). */
  apiLabels: readonly string[];
  ackedByChat: readonly number[];
  changesAckedByChat: readonly number[] | null;
  deliveredByApi: readonly number[];
  /** Per api, in the same order: its counter deltas (apiCounters), null when unknown. */
  counters: readonly (ReturnType<typeof apiCounters> | null)[];
  /** The server processes' CPU over the window, by label. */
  cpu: readonly { label: string; cpuSeconds: number | null }[];
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const per = (seconds: number | null, n: number) => (seconds === null || n <= 0 ? null : round1((seconds * 1e6) / n));

export function scaleOf(input: ScaleInput): ScaleStats {
  const apis = input.apiLabels.length;
  const held = chatsHeld(input.chatOf, input.apiOf, apis);
  const expected = expectedPerApi(held, input.ackedByChat);
  const expectedUpdated = input.changesAckedByChat ? expectedPerApi(held, input.changesAckedByChat) : null;
  const messages = input.ackedByChat.reduce((a, b) => a + b, 0);
  const delivered = input.deliveredByApi.reduce((a, b) => a + b, 0);
  const apiRows: ApiInbound[] = input.apiLabels.map((label, i) => {
    const c = input.counters[i] ?? null;
    return {
      label,
      chats: held[i]!.length,
      received: c?.received ?? null,
      expectedMessages: expected[i]!,
      expectedUpdated: expectedUpdated?.[i] ?? null,
      framesWritten: c?.framesWritten ?? null,
      delivered: input.deliveredByApi[i] ?? 0,
    };
  });
  // An api (or relay) is charged with what its own sockets got; anything else (a worker) with every delivery.
  const deliveredOf = (label: string) => {
    const i = input.apiLabels.indexOf(label);
    return i >= 0 ? (input.deliveredByApi[i] ?? 0) : delivered;
  };
  const processes: ProcessCost[] = input.cpu.map((p) => ({
    label: p.label,
    cpuSeconds: p.cpuSeconds,
    delivered: deliveredOf(p.label),
    cpuUsPerDelivered: per(p.cpuSeconds, deliveredOf(p.label)),
    cpuUsPerMessage: per(p.cpuSeconds, messages),
  }));
  const total = input.cpu.some((p) => p.cpuSeconds === null)
    ? null
    : Math.round(input.cpu.reduce((s, p) => s + p.cpuSeconds!, 0) * 100) / 100;
  processes.push({
    label: 'servers',
    cpuSeconds: total,
    delivered,
    cpuUsPerDelivered: per(total, delivered),
    cpuUsPerMessage: per(total, messages),
  });
  return {
    windowMs: Math.round(input.windowMs),
    messages,
    delivered,
    chats: input.ackedByChat.length,
    fanoutFactor: messages > 0 ? round1(delivered / messages) : null,
    apis: apiRows,
    processes,
  };
}

/**
 * Where the api's inbound traffic disagrees with the chats it holds (`received.message` is not
 * `expectedMessages`): a report line each, empty when every api received exactly its chats'
 * messages. Not a failure of the run: with one global channel every api receives everything.
 */
export function inboundMismatches(s: ScaleStats): string[] {
  return s.apis
    .filter((a) => a.received !== null && a.received.message !== a.expectedMessages)
    .map(
      (a) =>
        `${a.label} received ${a.received!.message} chat messages from Redis, its ${a.chats} chats had ${a.expectedMessages} (the system ${s.messages})`,
    );
}
