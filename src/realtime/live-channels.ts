import { type PresenceChange, parseChatEvent, type SystemEvent } from '../domain/events.js';
import { presenceFrame, systemFrame } from '../domain/frames.js';
import type { Keys } from '../redis/keys.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { ChannelScope } from './fanout.js';

/** The part of the fan-out this module needs: a handler per channel, added before it starts. */
export interface ChannelSubscriber {
  on(channel: string, handler: (payload: string) => void, scope?: ChannelScope): void;
}

/**
 * The fan-out of presence, typing, read and system events to the sockets this process holds.
 * Typing and read go to the chat's connections but the author's; presence goes to every
 * connection that shares one of the user's chats, once per connection however many chats it shares.
 */
export function registerLiveChannels(fanout: ChannelSubscriber, keys: Keys, registry: ConnectionRegistry): void {
  fanout.on(keys.channels.chatEvents, (payload) => {
    const event = parseChatEvent(payload);
    if (!event) throw new Error('malformed chat event');
    registry.toChat(event.chatId, event.frame, event.userId);
  });

  fanout.on(keys.channels.userPresence, (payload) => {
    const change = JSON.parse(payload) as PresenceChange;
    registry.toMembersOf(change.chatIds, presenceFrame(change), change.userId);
  });

  fanout.on(
    keys.channels.systemEvents,
    (payload) => {
      registry.toAll(systemFrame(JSON.parse(payload) as SystemEvent));
    },
    'global',
  );
}
