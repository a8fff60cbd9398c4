import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CLOSE_CODES } from '../domain/errors.js';

/** How much one socket may have waiting to be written (ws `bufferedAmount`). */
export interface BackpressureLimits {
  /** Past this many bytes, typing and presence frames are dropped and `sync` waits for the client. */
  softBytes: number;
  /** Past this many, the client is a slow consumer: the socket is closed with 4008. */
  maxBytes: number;
}

export type Verdict = 'send' | 'drop' | 'close';

/**
 * Frames a client loses nothing by missing: the next typing or presence frame replaces them.
 * Every server frame is serialised with `type` as its first key, so a prefix check suffices.
 */
export function isExpendable(frame: string): boolean {
  return frame.startsWith('{"type":"typing"') || frame.startsWith('{"type":"presence"');
}

/** What to do with `frame` when `buffered` bytes are already waiting. */
export function verdict(buffered: number, frame: string, limits: BackpressureLimits): Verdict {
  if (buffered >= limits.maxBytes) return 'close';
  if (buffered >= limits.softBytes && isExpendable(frame)) return 'drop';
  return 'send';
}

export interface OutboxHooks {
  /** An expendable frame was dropped (metrics). */
  onDrop?: () => void;
  /** The socket is being closed as a slow consumer (log, metrics). */
  onSlowConsumer?: (bufferedBytes: number) => void;
}

/**
 * The bounded outgoing side of one socket. Memory per socket stays below `maxBytes` plus one
 * frame: once past it the socket is closed, nothing more is written, and ws destroys it if the
 * client does not answer the close in time (its `closeTimeout`). The client reconnects and
 * `sync`s, so a slow consumer loses no message, only its live stream.
 */
/** Bytes sent as a text frame (ws sends Buffers as binary unless told otherwise). */
const AS_TEXT = { binary: false } as const;

export function createOutbox(ws: WebSocket, socket: Duplex, limits: BackpressureLimits, hooks: OutboxHooks = {}) {
  return {
    /** `encoded`: the frame's UTF-8 bytes, when the caller encoded it once for many sockets. */
    send(frame: string, encoded?: Buffer): void {
      if (ws.readyState !== WebSocket.OPEN) return;
      switch (verdict(ws.bufferedAmount, frame, limits)) {
        case 'send':
          if (encoded) ws.send(encoded, AS_TEXT);
          else ws.send(frame);
          return;
        case 'drop':
          hooks.onDrop?.();
          return;
        case 'close':
          hooks.onSlowConsumer?.(ws.bufferedAmount);
          ws.close(CLOSE_CODES.slowConsumer, 'slow consumer: reconnect and sync');
      }
    },

    /**
     * Null when the socket can take more now; else a promise of true once its buffer has drained,
     * or false if it closed first. Bulk writers (sync) wait on it, so they pace themselves to the
     * client instead of tripping the slow-consumer limit.
     */
    drained(): Promise<boolean> | null {
      if (ws.readyState !== WebSocket.OPEN) return Promise.resolve(false);
      if (ws.bufferedAmount < limits.softBytes) return null;
      return new Promise((resolve) => {
        const done = () => {
          socket.off('drain', onDrain);
          ws.off('close', onClose);
        };
        // 'drain' is certain to come: past softBytes, the socket's write() has returned false.
        const onDrain = () => (done(), resolve(ws.readyState === WebSocket.OPEN));
        const onClose = () => (done(), resolve(false));
        socket.on('drain', onDrain);
        ws.on('close', onClose);
      });
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
