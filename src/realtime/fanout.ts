import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Keys } from '../redis/keys.js';
import type { MembershipChange } from '../services/membership-service.js';
import type { ConnectionRegistry } from './connection-registry.js';

export interface FanoutDeps {
  /** A dedicated subscriber connection (a subscribed client can run no other command). */
  subscriber: Redis;
  keys: Keys;
  registry: ConnectionRegistry;
  logger: Logger;
  /** Called per delivered message with the number of local sockets written and its JSON (metrics). */
  onDelivered?: (chatId: string, sockets: number, messageJson: string) => void;
}

/**
 * Receives what any api process published and writes it to the sockets this process holds.
 * A chat message arrives as `chatId SP messageJson`: it is routed without parsing, and its
 * `message` frame is built once for all local sockets.
 */
export function createFanout(deps: FanoutDeps) {
  const { subscriber, keys, registry } = deps;
  const handlers = new Map<string, (payload: string) => void>();

  handlers.set(keys.channels.chatMessages, (payload) => {
    const space = payload.indexOf(' ');
    const chatId = payload.slice(0, space);
    const json = payload.slice(space + 1);
    const frame = `{"type":"message","message":${json}}`;
    const n = registry.toChat(chatId, frame);
    deps.onDelivered?.(chatId, n, json);
  });

  handlers.set(keys.channels.membership, (payload) => {
    const change = JSON.parse(payload) as MembershipChange;
    registry.applyMembership(change.chatId, change.userIds, change.change);
  });

  const onMessage = (channel: string, payload: string) => {
    try {
      handlers.get(channel)?.(payload);
    } catch (err) {
      deps.logger.error({ err, channel }, 'bad pub/sub payload');
    }
  };

  return {
    /** Adds a handler for another channel (presence, system events) before `start`. */
    on(channel: string, handler: (payload: string) => void): void {
      handlers.set(channel, handler);
    },

    async start(): Promise<void> {
      subscriber.on('message', onMessage);
      await subscriber.subscribe(...handlers.keys());
    },

    async stop(): Promise<void> {
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe().catch(() => undefined);
    },
  };
}

export type Fanout = ReturnType<typeof createFanout>;
