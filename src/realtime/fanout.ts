import type { Redis } from 'ioredis';
import { CLOSE_CODES, errorText } from '../domain/errors.js';
import { type MembershipChange, parseChatEvent, parseChatMessage } from '../domain/events.js';
import { messageFrame, messageUpdatedFrame, persistedFrame } from '../domain/frames.js';
import type { Logger } from '../logger.js';
import { wireJson } from '../message-log/message-log.js';
import type { Keys } from '../redis/keys.js';
import type { ConnectionRegistry } from './connection-registry.js';

export interface FanoutDeps {
  /** A dedicated subscriber connection (a subscribed client can run no other command). */
  subscriber: Redis;
  keys: Keys;
  registry: ConnectionRegistry;
  /** The chats of each of these users, read from PostgreSQL in one query (users without any may be missing). */
  chatIdsOfUsers: (userIds: string[]) => Promise<Map<string, string[]>>;
  logger: Logger;
  /** The features' channels (presence, system events, revoked sessions), beside the chats' own. */
  channels: readonly Channel[];
  /**
   * Called per delivered message with the number of local sockets written, its JSON, when it
   * arrived (ms since the epoch) and how long writing it took (ms): metrics.
   */
  onDelivered?: (chatId: string, sockets: number, messageJson: string, receivedAt: number, writeMs: number) => void;
}

/**
 * Whether a channel's payloads reach members of a chat (held while memberships may be stale) or
 * concern no chat (system events, revoked sessions: delivered at once).
 */
export type ChannelScope = 'chat' | 'global';

/** A pub/sub channel whose payloads a feature writes to the sockets this process holds. */
export interface Channel {
  name: string;
  /** 'chat' when absent. */
  scope?: ChannelScope;
  /** Writes one payload to the local sockets it concerns; a throw is logged as a bad payload. */
  handle(payload: string): void;
}

/** Payloads held while memberships are revalidated; past this many, every local socket is told to resync instead. */
const HOLD_MAX = 50_000;
/** Tells a client to reconnect and `sync` (the code a slow consumer gets too): it loses nothing. */
const RESYNC = CLOSE_CODES.slowConsumer;

/**
 * Receives what any api process published and writes it to the sockets this process holds: the
 * chats' own channels here (messages, membership changes, typing and read events), the features'
 * beside them (`channels`). A chat message arrives as `chatId SP messageJson`: it is routed without
 * parsing, and its `message` frame is built once for all local sockets.
 *
 * Membership changes reach the chat index only through pub/sub, which drops whatever is published
 * while the subscriber connection is down. So when it drops, chat-scoped payloads are held; once it
 * is subscribed again, every local user's chats are read afresh from PostgreSQL (one query), and
 * only then is what was held delivered, in order. If that read fails, every local socket is closed
 * with 4008 (reconnect and sync) rather than fed on memberships nobody can vouch for.
 */
export function createFanout(deps: FanoutDeps) {
  const { subscriber, keys, registry, logger } = deps;
  const handlers = new Map<string, { handle: (payload: string) => void; scope: ChannelScope }>();
  /** Non-null while deliveries are held: what arrived meanwhile, in order (at most HOLD_MAX). */
  let held: [string, string][] | null = null;
  let overflowed = false;
  /** Bumped on every drop: a revalidation that a newer drop overtook leaves the work to the newer one. */
  let generation = 0;
  let started = false;

  handlers.set(keys.channels.chatMessages, {
    scope: 'chat',
    handle: (payload) => {
      const { chatId, json } = parseChatMessage(payload);
      const frame = messageFrame(json);
      const receivedAt = Date.now();
      const t = performance.now();
      const n = registry.toChat(chatId, frame);
      deps.onDelivered?.(chatId, n, json, receivedAt, performance.now() - t);
    },
  });

  // Changes to messages: to every connection of every member, in the order Redis published them
  // (one subscriber connection: the same order as the chat's revs).
  handlers.set(keys.channels.chatUpdates, {
    scope: 'chat',
    handle: (payload) => {
      const { chatId, json } = parseChatMessage(payload);
      registry.toChat(chatId, messageUpdatedFrame(wireJson(json)));
    },
  });

  // What PostgreSQL holds, after each write batch: `chatId SP seq`.
  handlers.set(keys.channels.chatPersisted, {
    scope: 'chat',
    handle: (payload) => {
      const { chatId, json: seq } = parseChatMessage(payload);
      const n = Number(seq);
      if (!Number.isSafeInteger(n)) throw new Error('malformed persisted announcement');
      registry.toChat(chatId, persistedFrame(chatId, n));
    },
  });

  handlers.set(keys.channels.membership, {
    scope: 'chat',
    handle: (payload) => {
      const change = JSON.parse(payload) as MembershipChange;
      registry.applyMembership(change.chatId, change.userIds, change.change);
    },
  });

  // Typing and read events: to the chat's members here, but the one who caused them.
  handlers.set(keys.channels.chatEvents, {
    scope: 'chat',
    handle: (payload) => {
      const event = parseChatEvent(payload);
      if (!event) throw new Error('malformed chat event');
      registry.toChat(event.chatId, event.frame, event.userId);
    },
  });

  for (const channel of deps.channels) {
    handlers.set(channel.name, { handle: channel.handle, scope: channel.scope ?? 'chat' });
  }

  function dispatch(channel: string, payload: string): void {
    try {
      handlers.get(channel)?.handle(payload);
    } catch (err) {
      logger.error({ err, channel }, 'bad pub/sub payload');
    }
  }

  const onMessage = (channel: string, payload: string) => {
    if (held && handlers.get(channel)?.scope !== 'global') {
      if (held.length < HOLD_MAX) held.push([channel, payload]);
      else overflowed = true;
      return;
    }
    dispatch(channel, payload);
  };

  function closeEverySocket(reason: string): void {
    for (const conn of registry.all()) conn.close(RESYNC, reason);
  }

  const onDown = () => {
    if (!started) return;
    generation++;
    held ??= [];
  };

  async function revalidate(gen: number): Promise<void> {
    // Subscribed again before the read (our SUBSCRIBE is answered after ioredis's own resubscribe):
    // a change published from here on arrives, and one published before is in what the read sees.
    await subscriber.subscribe(...handlers.keys());
    const userIds = registry.userIds();
    const chats = userIds.length > 0 ? await deps.chatIdsOfUsers(userIds) : new Map<string, string[]>();
    if (gen !== generation) return;
    registry.replaceChats(userIds, chats);
    release();
  }

  /** Delivers what was held, in order (synchronously: nothing new can arrive in between). */
  function release(): void {
    if (overflowed) closeEverySocket('missed events: reconnect and sync');
    const queue = held ?? [];
    held = null;
    overflowed = false;
    for (const [channel, payload] of queue) dispatch(channel, payload);
  }

  const onReady = () => {
    if (!held) return;
    const gen = generation;
    revalidate(gen).catch((err: unknown) => {
      if (gen !== generation) return;
      logger.warn(
        { err: errorText(err) },
        'memberships not revalidated after pub/sub reconnect: sockets told to resync',
      );
      closeEverySocket('memberships unknown: reconnect and sync');
      held = null;
      overflowed = false;
    });
  };

  return {
    async start(): Promise<void> {
      subscriber.on('message', onMessage);
      subscriber.on('close', onDown);
      subscriber.on('ready', onReady);
      await subscriber.subscribe(...handlers.keys());
      started = true;
    },

    async stop(): Promise<void> {
      started = false;
      subscriber.off('message', onMessage);
      subscriber.off('close', onDown);
      subscriber.off('ready', onReady);
      await subscriber.unsubscribe().catch(() => undefined);
    },
  };
}

export type Fanout = ReturnType<typeof createFanout>;
