import type { TypingService } from '../services/typing-service.js';
import type { Feature } from './feature.js';

/**
 * Typing indicators: the `typing` frame, forwarded (thinned to about one per window) to the chat's
 * other members through the chat's own channel (services/typing-service.ts). Nothing is stored.
 */
export function typingFeature(deps: { typing: TypingService }): Feature {
  return {
    name: 'typing',
    frames: {
      async typing(conn, frame) {
        await deps.typing.typing(conn.userId, frame.chatId);
      },
    },
  };
}
