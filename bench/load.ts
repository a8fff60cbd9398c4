import type { Histogram } from 'hdr-histogram-js';
import type { BenchChat } from './accounts.js';
import { type FrameSink, type LoadClients, seqIn } from './clients.js';
import { createLatencyHistogram, type Percentiles, percentilesOf } from './histogram.js';

/**
 * The clients and chats the load runs over. Operations (sends and changes) are numbered across
 * phases by `nextIndex`.
 */
export interface LoadWorld {
  clients: LoadClients;
  chats: BenchChat[];
  /** The chat (index into `chats`) of each client. */
  chatOf: Int32Array;
  /** The api (index into the target's api URLs) each client is connected to, and how many there are. */
  apiOf: Int32Array;
  apis: number;
  nextIndex: number;
  /** Per client: the seqs of its latest acked messages (newest last), which its changes edit or react to. */
  recent: number[][];
  /** Per client: the seqs of its messages it has its reaction on. */
  reacted: Set<number>[];
}

export interface PhaseSpec {
  /** Operations (sends, and changes with `changes`) per second, over all clients. */
  rate: number;
  durationS: number;
  bodyChars: number;
  /** How long to wait for outstanding acks and deliveries after the last send, in ms. */
  drainTimeoutMs: number;
  /**
   * Share of the operations that edit or react to (turn a reaction on or off, alternately) one of
   * the client's own recent messages instead of sending a new one (default 0). A client with no
   * message free of a change under way sends instead.
   */
  changes?: number;
}

/** The changes of a phase (docs/protocol.md "Message lifecycle"), measured as the sends are. */
export interface ChangeStats {
  /** The share of the operations asked for. */
  share: number;
  /** Changes made: edits and reactions (on or off). */
  sent: number;
  edits: number;
  reactions: number;
  acked: number;
  /** Answered with an `error` frame (by code in `errors`). */
  refused: number;
  /** Neither ack nor error by the end: lost. */
  unanswered: number;
  /** (acked change, member connection) pairs where its `message.updated` never arrived: lost. */
  lostUpdates: number;
  /** `message.updated` frames of no change the phase made (an earlier phase's straggler). */
  strayUpdates: number;
  errors: Record<string, number>;
  /** From the scheduled time, as for sends: the change's ack, and its `message.updated` at the other members. */
  ack: Percentiles;
  fanout: Percentiles;
  ackFromSend: Percentiles;
  fanoutFromSend: Percentiles;
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
  /** Messages sent and acked (changes: in `changes`). */
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
  /** Operations (sends and changes) per second actually made, and acks per second received, over the load. */
  sendRate: number;
  ackRate: number;
  /** The changes (null when the phase made none: no `changes` share). */
  changes: ChangeStats | null;
  /** Of the sends, from the scheduled send time (open loop): these include any stall, the generator's too. */
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
  /** Acked sends per chat (index into the world's chats): what each chat's channel carried. */
  ackedByChat: number[];
  /** Acked changes per chat (null without changes): the `message.updated` payloads each chat's channel carried. */
  changesAckedByChat: number[] | null;
  /** `message` frames (the senders' own copies included) that arrived on the connections of each api. */
  deliveredByApi: number[];
}

const PENDING = 0;
const ACKED = 1;
const REFUSED = 2;

const SEND = 0;
const CHANGE = 1;
/** How many of its latest messages a client's changes pick from. */
const RECENT = 8;

/** A small seeded PRNG (mulberry32): the same choice of operations in every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One open-loop load phase: operation l (0-based) is due at t0 + l/rate, from client l % clients,
 * to that client's chat, whatever the replies: a send, or (a `changes` share of them) an edit or
 * a reaction of one of the client's recent messages. Latency is measured from the due time, so a
 * slow answer or a stalled generator cannot hide (no coordinated omission).
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
    changeAck: createLatencyHistogram(),
    changeFanout: createLatencyHistogram(),
    changeAckFromSend: createLatencyHistogram(),
    changeFanoutFromSend: createLatencyHistogram(),
  };
  /** Each operation's kind (SEND or CHANGE), and for a change: its message's seq, and where its update arrived. */
  private readonly kind: Uint8Array;
  private readonly changeSeq: Float64Array;
  private readonly updates: Uint16Array;
  private readonly updateSeen = new Set<number>();
  /** The operations that are reactions (for a refusal to undo the client's view). */
  readonly reactions = new Set<number>();
  /** Per chat: the seq of each changed message → its latest change (operation index). */
  private readonly changing: Map<number, number>[];
  readonly changeShare: number;
  readonly change = {
    sent: 0,
    edits: 0,
    reactions: 0,
    acked: 0,
    refused: 0,
    expectedUpdates: 0,
    updates: 0,
    stray: 0,
    errors: {} as Record<string, number>,
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
    this.changeShare = spec.changes ?? 0;
    this.kind = new Uint8Array(this.total);
    this.changeSeq = new Float64Array(this.changeShare > 0 ? this.total : 0);
    this.updates = new Uint16Array(this.changeShare > 0 ? this.total : 0);
    this.changing = world.chats.map(() => new Map());
  }

  private members(conn: number): number {
    return this.world.chats[this.world.chatOf[conn]!]!.members.length;
  }

  /** True while a change of the chat's message `seq` waits for its ack or its updates. */
  busy(chat: number, seq: number): boolean {
    const l = this.changing[chat]!.get(seq);
    return (
      l !== undefined && (this.state[l] === PENDING || this.updates[l]! < this.members(l % this.world.clients.size))
    );
  }

  /** Operation l is a change of the sender's message `seq`. */
  markChange(l: number, seq: number, edit: boolean): void {
    const sender = l % this.world.clients.size;
    this.kind[l] = CHANGE;
    this.changeSeq[l] = seq;
    this.changing[this.world.chatOf[sender]!]!.set(seq, l);
    this.change.sent++;
    if (edit) this.change.edits++;
    else this.change.reactions++;
  }

  scheduledAt(l: number): number {
    return this.t0 + l * this.intervalMs;
  }

  markSent(l: number, now: number): void {
    this.sentAt[l] = now;
    record(this.h.lateness, now - this.scheduledAt(l));
  }

  ack(conn: number, g: number, now: number, frame: Buffer): void {
    const l = g - this.base;
    if (l < 0 || l >= this.total) return; // an earlier phase's straggler
    if (this.state[l] !== PENDING) return void this.duplicates++;
    if (conn !== l % this.world.clients.size) this.misrouted++;
    this.state[l] = ACKED;
    this.lastAckAt = now;
    if (this.kind[l] === CHANGE) {
      this.change.acked++;
      this.change.expectedUpdates += this.members(conn);
      record(this.h.changeAck, now - this.scheduledAt(l));
      record(this.h.changeAckFromSend, now - this.sentAt[l]!);
      return;
    }
    this.acked++;
    this.expectedDeliveries += this.members(conn);
    record(this.h.ack, now - this.scheduledAt(l));
    record(this.h.ackFromSend, now - this.sentAt[l]!);
    if (this.changeShare > 0 && conn === l % this.world.clients.size) {
      // The sender's new message, which its next changes may pick.
      const seq = seqIn(frame);
      const recent = this.world.recent[conn]!;
      if (seq > 0) recent.push(seq);
      if (recent.length > RECENT) recent.shift();
    }
  }

  updated(conn: number, m: { chatId: string; seq: number; rev: number }, now: number): void {
    const chat = this.world.chatOf[conn]!;
    if (this.world.chats[chat]!.id !== m.chatId) return void this.misrouted++;
    const l = this.changing[chat]!.get(m.seq);
    if (l === undefined) return void this.change.stray++;
    const n = this.world.clients.size;
    const key = l * n + conn;
    if (this.updateSeen.has(key)) return void this.duplicates++;
    this.updateSeen.add(key);
    this.updates[l]!++;
    this.change.updates++;
    if (conn === l % n) return; // the changer's own copy: checked for loss, not a fan-out latency
    record(this.h.changeFanout, now - this.scheduledAt(l));
    record(this.h.changeFanoutFromSend, now - this.sentAt[l]!);
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

  error(conn: number, g: number, code: string): void {
    const l = g - this.base;
    const isChange = l >= 0 && l < this.total && this.kind[l] === CHANGE;
    const errors = isChange ? this.change.errors : this.errors;
    errors[code] = (errors[code] ?? 0) + 1;
    if (l >= 0 && l < this.total && this.state[l] === PENDING) {
      this.state[l] = REFUSED;
      if (!isChange) return void this.refused++;
      this.change.refused++;
      // A refused reaction did not turn: the client's next one of that message turns the same way.
      const reacted = this.world.reacted[conn];
      const seq = this.changeSeq[l]!;
      if (reacted && this.reactions.has(l)) {
        if (reacted.has(seq)) reacted.delete(seq);
        else reacted.add(seq);
      }
    }
  }

  get answered(): boolean {
    return (
      this.acked + this.refused + this.change.acked + this.change.refused === this.total &&
      this.delivered >= this.expectedDeliveries &&
      this.change.updates >= this.change.expectedUpdates
    );
  }

  /** Acked changes whose `message.updated` some member connection (the changer's own included) never received. */
  lostUpdates(): number {
    let lost = 0;
    for (let l = 0; l < this.total; l++) {
      if (this.kind[l] !== CHANGE || this.state[l] !== ACKED) continue;
      lost += Math.max(0, this.members(l % this.world.clients.size) - this.updates[l]!);
    }
    return lost;
  }

  /** Acked sends and acked changes per chat. */
  ackedByChat(): { sends: number[]; changes: number[] } {
    const n = this.world.clients.size;
    const sends = new Array<number>(this.world.chats.length).fill(0);
    const changes = new Array<number>(this.world.chats.length).fill(0);
    for (let l = 0; l < this.total; l++) {
      if (this.state[l] !== ACKED) continue;
      const chat = this.world.chatOf[l % n]!;
      if (this.kind[l] === CHANGE) changes[chat]!++;
      else sends[chat]!++;
    }
    return { sends, changes };
  }

  /** `message` frames of this phase's sends that arrived, per api (each counted once per connection). */
  deliveredByApi(): number[] {
    const out = new Array<number>(this.world.apis).fill(0);
    this.seen.forEach((seen, conn) => {
      let got = 0;
      for (let j = 0; j < seen.length; j++) got += seen[j]!;
      out[this.world.apiOf[conn]!]! += got;
    });
    return out;
  }

  /** Acked messages that some member connection (the sender's own included) never received. */
  lostDeliveries(): number {
    let lost = 0;
    this.seen.forEach((seen, conn) => {
      const sends = this.chatSends[this.world.chatOf[conn]!]!;
      for (let j = 0; j < sends.length; j++) {
        const l = sends[j]!;
        if (seen[j] === 0 && this.state[l] === ACKED && this.kind[l] === SEND) lost++;
      }
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
  // The operation's index first: every edit of a message changes its body.
  const editBody = (g: number) => `${g} bench edit `.padEnd(spec.bodyChars, 'klmnopqrst').slice(0, spec.bodyChars);
  const random = seeded(phase.base + 1);
  /** Operation l as a change of one of its client's recent messages (none free: null, a send). */
  const changeFrame = (l: number, c: number): string | null => {
    const chat = world.chatOf[c]!;
    const recent = world.recent[c]!;
    let seq = -1;
    for (let i = recent.length - 1; i >= 0; i--) {
      if (!phase.busy(chat, recent[i]!)) {
        seq = recent[i]!;
        break;
      }
    }
    if (seq < 0) return null;
    const g = phase.base + l;
    const at = `"chatId":"${world.chats[chat]!.id}","seq":${seq}`;
    // Edits and reactions alternate; a reaction goes on, then off, then on again.
    const edit = phase.change.sent % 2 === 0;
    phase.markChange(l, seq, edit);
    if (edit) return `{"type":"edit",${at},"body":"${editBody(g)}","clientMsgId":"${g}"}`;
    phase.reactions.add(l);
    const reacted = world.reacted[c]!;
    const on = !reacted.has(seq);
    if (on) reacted.add(seq);
    else reacted.delete(seq);
    return `{"type":"react",${at},"emoji":"👍","on":${on},"clientMsgId":"${g}"}`;
  };
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
        const c = next % n;
        const frame = phase.changeShare > 0 && random() < phase.changeShare ? changeFrame(next, c) : null;
        const now = performance.now();
        phase.markSent(next, now);
        clients.send(c, frame ?? prefixes[c]! + (phase.base + next) + '"}');
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
  const byChat = phase.ackedByChat();
  return {
    rate: spec.rate,
    durationS: spec.durationS,
    sent: phase.total - phase.change.sent,
    acked: phase.acked,
    refused: phase.refused,
    unanswered: phase.total - phase.change.sent - phase.acked - phase.refused,
    lostDeliveries: phase.lostDeliveries(),
    duplicates: phase.duplicates,
    misrouted: phase.misrouted,
    errors: phase.errors,
    sendRate: Math.round(phase.total / (seconds(lastSentAt) + phase.intervalMs / 1000)),
    ackRate: Math.round((phase.acked + phase.change.acked) / seconds(phase.lastAckAt || lastSentAt)),
    changes:
      phase.changeShare > 0
        ? {
            share: phase.changeShare,
            sent: phase.change.sent,
            edits: phase.change.edits,
            reactions: phase.change.reactions,
            acked: phase.change.acked,
            refused: phase.change.refused,
            unanswered: phase.change.sent - phase.change.acked - phase.change.refused,
            lostUpdates: phase.lostUpdates(),
            strayUpdates: phase.change.stray,
            errors: phase.change.errors,
            ack: percentilesOf(phase.h.changeAck),
            fanout: percentilesOf(phase.h.changeFanout),
            ackFromSend: percentilesOf(phase.h.changeAckFromSend),
            fanoutFromSend: percentilesOf(phase.h.changeFanoutFromSend),
          }
        : null,
    ack: percentilesOf(phase.h.ack),
    fanout: percentilesOf(phase.h.fanout),
    ackFromSend: percentilesOf(phase.h.ackFromSend),
    fanoutFromSend: percentilesOf(phase.h.fanoutFromSend),
    lateness: percentilesOf(phase.h.lateness),
    completeAfterMs,
    closedConnections: clients.unexpectedCloses - closedBefore,
    ackedByChat: byChat.sends,
    changesAckedByChat: phase.changeShare > 0 ? byChat.changes : null,
    deliveredByApi: phase.deliveredByApi(),
  };
}
