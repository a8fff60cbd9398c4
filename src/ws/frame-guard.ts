import { clientMsgIdSchema } from '../domain/schemas.js';
import { type BucketLimits, createTokenBucket } from '../services/token-bucket.js';

/** Per-connection frame limits (config WS_FRAME_*, WS_FLOOD_*). */
export interface FrameGuardLimits {
  /** Frames per connection; a capacity or rate of 0 turns the limit off. */
  frames: BucketLimits;
  /** Refused frames (this limit or the per-user send limit) tolerated per window... */
  floodMaxRefused: number;
  /** ...of this many ms; one more and the connection is closed with 1008. */
  floodWindowMs: number;
}

/**
 * One connection's frame budget, in memory: a frame costs a token before any work is done, so a
 * flooding client costs a refusal, not a parse or a Redis call. A client that keeps going after
 * being refused is closed (policy violation) instead of being answered forever.
 */
export function createFrameGuard(limits: FrameGuardLimits, now: () => number = Date.now) {
  const enabled = limits.frames.capacity > 0 && limits.frames.perSecond > 0;
  const bucket = createTokenBucket(limits.frames, now);
  let windowStart = now();
  let refused = 0;

  return {
    /** 0 when the frame may be handled, else the ms until it could be. */
    admit(): number {
      return enabled ? bucket.take() : 0;
    },

    /**
     * Charges work a frame asks for beyond its own token (a `sync` of many chats): 0 when taken,
     * else the ms until it could be (nothing taken). Never more than the burst, so that the
     * largest valid frame can always be admitted once the bucket is full.
     */
    charge(cost: number): number {
      return enabled && cost > 0 ? bucket.take(Math.min(cost, limits.frames.capacity)) : 0;
    },

    /** Records a refused frame; true when the client has kept flooding and must be closed. */
    refused(): boolean {
      const t = now();
      if (t - windowStart > limits.floodWindowMs) {
        windowStart = t;
        refused = 0;
      }
      refused += 1;
      return refused > limits.floodMaxRefused;
    },
  };
}

export type FrameGuard = ReturnType<typeof createFrameGuard>;

/**
 * Chats a `sync` may name per frame token. Each chat named costs a history read (Redis, maybe
 * PostgreSQL), so a `sync` pays for its chats beyond its first token: at the default 300-frame
 * burst and 100/s, a connection can ask about 3,000 chats at once and 1,000 a second after that,
 * where a reconnecting client with 2,000 chats needs four frames of 500.
 */
export const SYNC_CHATS_PER_TOKEN = 10;

/** Tokens a `sync` naming `chats` chats costs beyond the frame's own. */
export function syncCost(chats: number): number {
  return Math.max(0, Math.ceil(chats / SYNC_CHATS_PER_TOKEN) - 1);
}

/**
 * The clientMsgId of a refused `send`, so that its refusal names it (docs/protocol.md). Only a valid
 * id is echoed; anything else is answered without one.
 */
export function clientMsgIdOf(raw: string): string | null {
  if (!raw.includes('"clientMsgId"')) return null;
  try {
    const frame: unknown = JSON.parse(raw);
    const id = (frame as { clientMsgId?: unknown } | null)?.clientMsgId;
    return clientMsgIdSchema.safeParse(id).success ? (id as string) : null;
  } catch {
    return null;
  }
}
