import type { Connection } from '../domain/connection.js';
import type { HttpRoutes } from '../http/app.js';
import type { Channel, ChatPayload } from '../realtime/fanout.js';
import type { FrameHandlers } from '../ws/frame-handler.js';
import type { ConnectionAdmission } from '../ws/upgrade-slots.js';

/**
 * One thing the api serves (chats, presence, typing...), as the transports see it: its HTTP routes,
 * its client frames, the pub/sub channels and the kinds of payload on the chats' channels it writes
 * to local sockets, and what it does as sockets and the process come and go. Every part is
 * optional. A feature is a small factory over services the composition root built (src/api.ts),
 * which lists the features once and mounts them together.
 */
export interface Feature {
  /** Names it in the shutdown log. */
  readonly name: string;
  readonly routes?: HttpRoutes;
  readonly frames?: FrameHandlers;
  readonly channels?: readonly Channel[];
  /** Kinds of payload on the chats' channels (CHAT_PAYLOAD) it writes to local sockets. */
  readonly chatPayloads?: readonly ChatPayload[];
  /** Counts each connection before its upgrade, across processes (one feature at most). */
  readonly admission?: ConnectionAdmission;
  /** A socket opened (after its `ready`). */
  onOpen?(conn: Connection): void;
  onClose?(conn: Connection): void;
  /** Once the fan-out is subscribed. */
  start?(): void;
  /** The process is going away: called before its sockets close. */
  stopping?(): void;
  /** After the sockets closed, before the queues and Redis do: lets what their closes started finish. */
  stop?(): Promise<void>;
}

/** The features' parts, gathered for the seam each belongs to (routes, frames, channels, chat payloads, hooks). */
export function mountFeatures(features: readonly Feature[]) {
  const frames: Record<string, unknown> = {};
  for (const feature of features) {
    for (const [type, handler] of Object.entries(feature.frames ?? {})) {
      if (type in frames) throw new Error(`two features answer '${type}' frames (${feature.name} is the second)`);
      frames[type] = handler;
    }
  }
  const admissions = features.flatMap((f) => (f.admission ? [f.admission] : []));
  if (admissions.length > 1) throw new Error('more than one feature admits connections');
  return {
    routes: features.flatMap((f) => (f.routes ? [f.routes] : [])),
    frames: frames as FrameHandlers,
    channels: features.flatMap((f) => f.channels ?? []),
    chatPayloads: features.flatMap((f) => f.chatPayloads ?? []),
    admission: admissions[0],
    onOpen(conn: Connection): void {
      for (const f of features) f.onOpen?.(conn);
    },
    onClose(conn: Connection): void {
      for (const f of features) f.onClose?.(conn);
    },
    start(): void {
      for (const f of features) f.start?.();
    },
    stopping(): void {
      for (const f of features) f.stopping?.();
    },
    /** Each feature's `stop`, named, for its own shutdown step. */
    stops: features.flatMap((f) => (f.stop ? [{ name: f.name, stop: async () => f.stop?.() }] : [])),
  };
}
