import { AppError } from '../domain/errors.js';
import { chatEventPayload } from '../domain/events.js';
import { typingFrame } from '../domain/frames.js';
import { CHAT_PAYLOAD } from '../message-log/keys.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import type { MembershipService } from './membership-service.js';

export interface TypingServiceDeps {
  scripts: Scripts;
  keys: Keys;
  membership: MembershipService;
  /** How long the typing key lives without a new typing frame, in ms. */
  ttlMs: number;
  /** Forwards per member and chat are at most one per this window, in ms. */
  throttleMs: number;
}

/**
 * Typing indicators live only in Redis: a key that expires by itself, and a SET NX PX gate that
 * thins a burst to about one forward per window, published on the chat's own channel (only the api
 * processes holding a member of the chat receive it). Nothing reaches PostgreSQL.
 */
export function createTypingService(deps: TypingServiceDeps) {
  const { scripts, keys } = deps;

  return {
    /** Tells the chat's other members; returns false when the frame was thinned out. */
    async typing(userId: string, chatId: string): Promise<boolean> {
      await deps.membership.requireMember(chatId, userId);
      try {
        const forwarded = await scripts.typing(
          [keys.typing(chatId, userId), keys.typingGate(chatId, userId)],
          deps.ttlMs,
          deps.throttleMs,
          keys.channels.chat(chatId),
          `${CHAT_PAYLOAD.event} ${chatEventPayload(chatId, userId, typingFrame(chatId, userId))}`,
        );
        return forwarded === 1;
      } catch {
        // Typing has no fallback without Redis (docs/architecture.md "Degraded modes").
        throw new AppError('unavailable', 'typing indicators are unavailable, try again');
      }
    },
  };
}

export type TypingService = ReturnType<typeof createTypingService>;
