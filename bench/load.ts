import type { Histogram } from 'hdr-histogram-js';
import type { BenchChat } from './accounts.js';
import type { FrameSink, LoadClients } from './clients.js';
import { createLatencyHistogram, type Percentiles, percentilesOf } from './histogram.js';

/** The clients and chats the load runs over. Sends are numbered across phases by `nextIndex`. */
export interface LoadWorld {
  clients: LoadClients;
  chats: BenchChat[];
  /** The chat (index into `chats`) of each client. */
  chatOf: Int32Array;
  nextIndex: number;
}

export interface PhaseSpec {
  /** Sends per second, over all clients. */
  rate: number;
  durationS: number;
  bodyChars: number;
  /** How long to wait for outstanding acks and deliveries after the last send, in ms. */
  drainTimeoutMs: number;
}

/** How far a phase has got (for the persistence drain, which starts when the load stops). */
export interface PhaseProgress {
  readonly acked: number;
  /** Every send acked or refused, and every acked message delivered (or more). */
  readonly answered: boolean;
}

export interface PhaseHooks {
  /** At the first scheduled send. */
  started?(): void;
  /** Right after the last send went out. */
  loadEnded?(progress: PhaseProgress): void;
}

export interface PhaseResult {
  rate: number;
  durationS: number;
  sent: number;
  acked: number;
  /** Sends answered with an `error` frame (by code in `errors`). */
  refused: number;
  /** Sends with neither ack nor error by the end: lost. */
  unanswered: number;
  /** (acked message, member connection) pairs where the message never arrived: lost. */
  lostDeliveries: number;
  /** A message (or ack) that arrived twice on one connection. */
  duplicates: number;
  /** A message on a connection of a user outside its chat, or an ack on another connection. */
  misrouted: number;
  errors: Record<string, number>;
  /** Sends per second actually made, and acks per second received, over the load. */
  sendRate: number;
  ackRate: number;
  /** From the scheduled send time (open loop): these include any stall, the generator's too. */
  ack: Percentiles;
  fanout: Percentiles;
  /** From the moment the frame was actually written (what the server alone took, roughly). */
  ackFromSend: Percentiles;
  fanoutFromSend: Percentiles;
  /** How late the generator wrote each send against its timetable. */
  lateness: Percentiles;
  /** From the last send until every ack and delivery was in (null: not within drainTimeoutMs). */
  completeAfterMs: number | null;
  /** Connections the server closed during the phase. */
  closedConnections: number;
}

const PENDING = 0;
const ACKED = 1;
const REFUSED = 2;

/**
 * One open-loop load phase: send l (0-based) is due at t0 + l/rate, from client l % clients, to
 * that client's chat, whatever the replies. Latency is measured from the due time, so a slow
 * answer or a stalled generator cannot hide (no coordinated omission).
 */
class Phase implements FrameSink, PhaseProgress {
  readonly total: number;
  readonly base: number;
  readonly intervalMs: number;
  t0 = 0;
  private readonly state: Uint8Array;
  private readonly sentAt: Float64Array;
  /** Position of each send among its chat's sends, and each chat's sends in order. */
  private readonly localIdx: Uint32Array;
  readonly chatSends: Uint32Array[];
  /** Per connection: which of its chat's sends arrived. */
  readonly seen: Uint8Array[];
  readonly h = {
    ack: createLatencyHistogram(),
    fanout: createLatencyHistogram(),
    ackFromSend: createLatencyHistogram(),
    fanoutFromSend: createLatencyHistogram(),
    lateness: createLatencyHistogram(),
  };
  acked = 0;
  refused = 0;
  delivered = 0;
  expectedDeliveries = 0;
  duplicates = 0;
  misrouted = 0;
  lastAckAt = 0;
  readonly errors: Record<string, number> = {};

  constructor(
    private readonly world: LoadWorld,
    spec: PhaseSpec,
  ) {
    const clients = world.clients.size;
    this.total = Math.max(1, Math.round(spec.rate * spec.durationS));
    this.base = world.nextIndex;
    world.nextIndex += this.total;
    this.intervalMs = 1000 / spec.rate;
    this.state = new Uint8Array(this.total);
    this.sentAt = new Float64Array(this.total);
    this.localIdx = new Uint32Array(this.total);
    const counts = new Array<number>(world.chats.length).fill(0);
    for (let l = 0; l < this.total; l++) this.localIdx[l] = counts[world.chatOf[l % clients]!]!++;
    this.chatSends = counts.map((n) => new Uint32Array(n));
    for (let l = 0; l < this.total; l++) this.chatSends[world.chatOf[l % clients]!]![this.localIdx[l]!] = l;
    this.seen = Array.from({ length: clients }, (_, c) => new Uint8Array(counts[world.chatOf[c]!]!));
  }

  scheduledAt(l: number): number {
    return this.t0 + l * this.intervalMs;
  }

  markSent(l: number, now: number): void {
    this.sentAt[l] = now;
    record(this.h.lateness, now - this.scheduledAt(l));
  }

  ack(conn: number, g: number, now: number): void {
    const l = g - this.base;
    if (l < 0 || l >= this.total) return; // an earlier phase's straggler
    if (this.state[l] !== PENDING) return void this.duplicates++;
    if (conn !== l % this.world.clients.size) this.misrouted++;
    this.state[l] = ACKED;
    this.acked++;
    this.lastAckAt = now;
    this.expectedDeliveries += this.world.chats[this.world.chatOf[conn]!]!.members.length;
    record(this.h.ack, now - this.scheduledAt(l));
    record(this.h.ackFromSend, now - this.sentAt[l]!);
  }

  message(conn: number, g: number, now: number): void {
    const l = g - this.base;
    if (l < 0 || l >= this.total) return;
    const sender = l % this.world.clients.size;
    if (this.world.chatOf[sender] !== this.world.chatOf[conn]) return void this.misrouted++;
    const seen = this.seen[conn]!;
    const j = this.localIdx[l]!;
    if (seen[j] === 1) return void this.duplicates++;
    seen[j] = 1;
    this.delivered++;
    if (conn === sender) return; // the sender's own copy: checked for loss, not a fan-out latency
    record(this.h.fanout, now - this.scheduledAt(l));
    record(this.h.fanoutFromSend, now - this.sentAt[l]!);
  }

  error(_conn: number, g: number, code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    const l = g - this.base;
    if (l >= 0 && l < this.total && this.state[l] === PENDING) {
      this.state[l] = REFUSED;
      this.refused++;
    }
  }

  get answered(): boolean {
    return this.acked + this.refused === this.total && this.delivered >= this.expectedDeliveries;
  }

  /** Acked messages that some member connection (the sender's own included) never received. */
  lostDeliveries(): number {
    let lost = 0;
    this.seen.forEach((seen, conn) => {
      const sends = this.chatSends[this.world.chatOf[conn]!]!;
      for (let j = 0; j < sends.length; j++) if (seen[j] === 0 && this.state[sends[j]!] === ACKED) lost++;
    });
    return lost;
  }
}

/** Latencies in ms, recorded in µs. */
function record(h: Histogram, ms: number): void {
  h.recordValue(Math.max(0, Math.round(ms * 1000)));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runPhase(world: LoadWorld, spec: PhaseSpec, hooks: PhaseHooks = {}): Promise<PhaseResult> {
  const phase = new Phase(world, spec);
  const clients = world.clients;
  const n = clients.size;
  const body = 'bench message '.padEnd(spec.bodyChars, 'abcdefghij').slice(0, spec.bodyChars);
  // Pre-serialised: a send is the client's prefix, its index, and `"}`.
  const prefixes = Array.from(
    { length: n },
    (_, c) => `{"type":"send","chatId":"${world.chats[world.chatOf[c]!]!.id}","body":"${body}","clientMsgId":"`,
  );
  const closedBefore = clients.unexpectedCloses;
  clients.sink = phase;
  phase.t0 = performance.now() + 20;
  let next = 0;
  let lastSentAt = 0;
  await sleep(20);
  hooks.started?.();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(phase.total, Math.floor((performance.now() - phase.t0) / phase.intervalMs) + 1);
      while (next < due) {
        const now = performance.now();
        phase.markSent(next, now);
        clients.send(next % n, prefixes[next % n]! + (phase.base + next) + '"}');
        lastSentAt = now;
        next++;
      }
      if (next >= phase.total) return resolve();
      // Timers have 1 ms granularity: the lateness histogram shows what that costs.
      setTimeout(tick, Math.max(0, Math.floor(phase.scheduledAt(next) - performance.now())));
    };
    tick();
  });
  hooks.loadEnded?.(phase);
  const endedAt = performance.now();
  while (!phase.answered && performance.now() - endedAt < spec.drainTimeoutMs) await sleep(10);
  const completeAfterMs = phase.answered ? Math.round(performance.now() - endedAt) : null;

  const seconds = (t: number) => Math.max(1e-9, (t - phase.t0) / 1000);
  return {
    rate: spec.rate,
    durationS: spec.durationS,
    sent: phase.total,
    acked: phase.acked,
    refused: phase.refused,
    unanswered: phase.total - phase.acked - phase.refused,
    lostDeliveries: phase.lostDeliveries(),
    duplicates: phase.duplicates,
    misrouted: phase.misrouted,
    errors: phase.errors,
    sendRate: Math.round(phase.total / (seconds(lastSentAt) + phase.intervalMs / 1000)),
    ackRate: Math.round(phase.acked / seconds(phase.lastAckAt || lastSentAt)),
    ack: percentilesOf(phase.h.ack),
    fanout: percentilesOf(phase.h.fanout),
    ackFromSend: percentilesOf(phase.h.ackFromSend),
    fanoutFromSend: percentilesOf(phase.h.fanoutFromSend),
    lateness: percentilesOf(phase.h.lateness),
    completeAfterMs,
    closedConnections: clients.unexpectedCloses - closedBefore,
  };
}
