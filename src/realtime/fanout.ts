import { CLOSE_CODES, errorText } from '../domain/errors.js';
import { type MembershipChange, parseChatEvent } from '../domain/events.js';
import { messageFrame, messageUpdatedFrame, persistedFrame } from '../domain/frames.js';
import type { Logger } from '../logger.js';
import { seqOf } from '../message-log/encoding.js';
import { CHAT_PAYLOAD, type ChatPayloadKind } from '../message-log/keys.js';
import { wireJson } from '../message-log/message-log.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { ChatSubscriptions } from './chat-subscriptions.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { createMemberVersions } from './member-versions.js';

export interface FanoutDeps {
  /** A dedicated subscriber connection (a subscribed client can run no other command) for the classic channels. */
  subscriber: RedisClient;
  /**
   * Another one for the chats' sharded channels: ioredis leaves subscriber mode when the last
   * sharded channel of a connection is unsubscribed, whatever classic channels it still has, and
   * then drops their messages; on one connection, a chat's last member leaving here would end
   * system, membership and session-revocation deliveries.
   */
  chatSubscriber: RedisClient;
  keys: Keys;
  registry: ConnectionRegistry;
  /** This process's subscriptions to its chats' sharded channels (the registry holds and releases them). */
  subscriptions: ChatSubscriptions;
  /** The chats of each of these users, read from PostgreSQL in one query (users without any may be missing). */
  chatIdsOfUsers: (userIds: string[]) => Promise<Map<string, string[]>>;
  logger: Logger;
  /** The features' channels (system events, revoked sessions), beside the chats' own. */
  channels: readonly Channel[];
  /** The features' kinds of payload on the chats' channels (presence), beside the fan-out's own. */
  chatPayloads?: readonly ChatPayload[];
  /**
   * Called per delivered message with the number of local sockets written, its JSON, when it
   * arrived (ms since the epoch) and how long writing it took (ms): metrics.
   */
  onDelivered?: (chatId: string, sockets: number, messageJson: string, receivedAt: number, writeMs: number) => void;
  /**
   * Up to `count` of the chat's messages (JSON) after `seq`, from the log: what a member added
   * here missed while this process subscribed to the chat. Without it nothing is caught up.
   */
  messagesAfter?: (chatId: string, seq: number, count: number) => Promise<string[]>;
  /** Called per payload received on a chat's channel, by kind: metrics (what this process takes in). */
  onReceived?: (kind: ChatPayloadKind) => void;
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

/** A kind of payload on the chats' channels that a feature writes to the sockets this process holds. */
export interface ChatPayload {
  kind: ChatPayloadKind;
  /** Writes one payload (what follows `kind SP`) of the chat's channel; a throw is logged as a bad payload. */
  handle(chatId: string, rest: string): void;
}

/** The kinds the fan-out writes itself; a feature's ChatPayload takes any other. */
const OWN_KINDS: readonly ChatPayloadKind[] = ['message', 'updated', 'persisted', 'event', 'membership'];

/** Payloads held while memberships are revalidated; past this many, every local socket is told to resync instead. */
const HOLD_MAX = 50_000;
/** Tells a client to reconnect and `sync` (the code a slow consumer gets too): it loses nothing. */
const RESYNC = CLOSE_CODES.slowConsumer;
/** The most messages a catch-up delivers (a member added during a burst this large syncs for the rest). */
const CATCH_UP_MAX = 1000;

/**
 * Receives what any api process published and writes it to the sockets this process holds: each
 * chat's own sharded channel (`channel:chat-messages:{chatId}`, subscribed only while a member of
 * the chat is connected here: chat-subscriptions.ts), the shared membership channel, the
 * features' beside them (`channels`). A payload on a chat's channel starts with its kind (`m SP
 * messageJson`, `u SP messageJson`, `p SP seq`, `e SP chatId SP userId SP frame` for typing and
 * read events, and the features' own: presence) and the chat is the channel's: it is routed
 * without parsing, and its frame is built once for all local sockets.
 *
 * Membership changes reach the chat index only through pub/sub, which drops whatever is published
 * while the subscriber connection is down. So when it drops, chat-scoped payloads are held; once it
 * is subscribed again, every local user's chats are read afresh from PostgreSQL (one query), and
 * only then is what was held delivered, in order. If that read fails, every local socket is closed
 * with 4008 (reconnect and sync) rather than fed on memberships nobody can vouch for.
 */
export function createFanout(deps: FanoutDeps) {
  const { subscriber, chatSubscriber, keys, registry, logger } = deps;
  const handlers = new Map<string, { handle: (payload: string) => void; scope: ChannelScope }>();
  /**
   * Non-null while deliveries are held: what arrived meanwhile, in order (at most HOLD_MAX), each
   * with whether it came on a chat's sharded channel.
   */
  let held: [string, string, boolean][] | null = null;
  let overflowed = false;
  /** Bumped on every drop: a revalidation that a newer drop overtook leaves the work to the newer one. */
  let generation = 0;
  let started = false;

  /** Where the chat id starts and ends in a chat channel's name. */
  const chatChannelHead = keys.channels.chat('').length - 1;
  const kinds: Record<string, ChatPayloadKind> = {};
  for (const [kind, marker] of Object.entries(CHAT_PAYLOAD)) kinds[marker] = kind as ChatPayloadKind;
  /** The features' kinds, by marker. */
  const featureKinds = new Map<string, ChatPayload['handle']>();
  for (const p of deps.chatPayloads ?? []) {
    const marker = CHAT_PAYLOAD[p.kind];
    if (OWN_KINDS.includes(p.kind) || featureKinds.has(marker)) {
      throw new Error(`chat payload kind '${p.kind}' has a handler already`);
    }
    featureKinds.set(marker, p.handle);
  }

  /** One payload of a chat's channel: `kind SP rest`. */
  function dispatchChat(channel: string, payload: string): void {
    try {
      const chatId = channel.slice(chatChannelHead, -1);
      const rest = payload.slice(2);
      switch (payload.slice(0, 2)) {
        case `${CHAT_PAYLOAD.message} `: {
          const frame = messageFrame(rest);
          const receivedAt = Date.now();
          const t = performance.now();
          const n = registry.toChat(chatId, frame);
          deps.onDelivered?.(chatId, n, rest, receivedAt, performance.now() - t);
          return;
        }
        // Changes to messages: to every connection of every member, in the order Redis published
        // them (one channel per chat: the same order as the chat's revs).
        case `${CHAT_PAYLOAD.updated} `:
          registry.toChat(chatId, messageUpdatedFrame(wireJson(rest)));
          return;
        // What PostgreSQL holds, after each write batch.
        case `${CHAT_PAYLOAD.persisted} `: {
          const n = Number(rest);
          if (!Number.isSafeInteger(n)) throw new Error('malformed persisted announcement');
          registry.toChat(chatId, persistedFrame(chatId, n));
          return;
        }
        // Membership changes, in order with the chat's messages (and on the shared channel too).
        case `${CHAT_PAYLOAD.membership} `: {
          const change = JSON.parse(rest) as MembershipChange;
          if (change.chatId !== chatId) throw new Error('malformed membership change');
          applyMembership(change);
          return;
        }
        // Typing and read events: to the chat's members here, but the one who caused them.
        case `${CHAT_PAYLOAD.event} `: {
          const event = parseChatEvent(rest);
          if (event?.chatId !== chatId) throw new Error('malformed chat event');
          registry.toChat(chatId, event.frame, event.userId);
          return;
        }
        default: {
          const handle = payload.charAt(1) === ' ' ? featureKinds.get(payload.charAt(0)) : undefined;
          if (!handle) throw new Error('unknown chat payload kind');
          handle(chatId, rest);
        }
      }
    } catch (err) {
      logger.error({ err, channel }, 'bad pub/sub payload');
    }
  }

  /**
   * Chats being caught up: what their channel brought meanwhile, delivered after the catch-up. A
   * member added to a chat none of whose members was here is in the chat from the membership
   * change on, as before, but the chat's channel is subscribed only a moment later; what was
   * published in between (after the change's `seq`) comes from the log, then what the channel
   * brought meanwhile, without the messages the log already gave.
   */
  const catching = new Map<string, [string, string][]>();

  async function catchUp(
    chatId: string,
    userIds: readonly string[],
    after: number,
    messagesAfter: NonNullable<FanoutDeps['messagesAfter']>,
  ): Promise<void> {
    let upto = after;
    try {
      await deps.subscriptions.ready([chatId]);
      const jsons = await messagesAfter(chatId, after, CATCH_UP_MAX);
      const members = userIds.filter((u) => [...registry.connectionsOf(u)].some((c) => c.chats.has(chatId)));
      for (const json of jsons) {
        upto = Math.max(upto, seqOf(json));
        if (members.length > 0) registry.toUsers(members, messageFrame(json));
      }
    } catch (err) {
      logger.warn({ err: errorText(err), chatId }, 'added member not caught up (its sync covers the gap)');
    } finally {
      const queue = catching.get(chatId) ?? [];
      catching.delete(chatId);
      for (const [channel, payload] of queue) {
        if (payload.startsWith(`${CHAT_PAYLOAD.message} `) && seqOf(payload.slice(2)) <= upto) continue;
        dispatchChat(channel, payload);
      }
    }
  }

  /** Of each (chat, user), the newest change applied: its copy on the other channel, or older ones, are not. */
  const versions = createMemberVersions({ ttlMs: 10_000, maxPairs: 100_000 });

  /** A membership change, from either of its channels (the first copy of it that comes). */
  function applyMembership(change: MembershipChange): void {
    const v = change.v;
    const userIds =
      v === undefined ? change.userIds : change.userIds.filter((u) => versions.newer(change.chatId, u, v));
    if (userIds.length === 0) return;
    const fresh = change.change === 'added' && !registry.holds(change.chatId);
    registry.applyMembership(change.chatId, userIds, change.change);
    if (
      fresh &&
      deps.messagesAfter &&
      typeof change.seq === 'number' &&
      registry.holds(change.chatId) &&
      !catching.has(change.chatId)
    ) {
      catching.set(change.chatId, []);
      void catchUp(change.chatId, userIds, change.seq, deps.messagesAfter);
    }
  }

  handlers.set(keys.channels.membership, {
    scope: 'chat',
    handle: (payload) => applyMembership(JSON.parse(payload) as MembershipChange),
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
      if (held.length < HOLD_MAX) held.push([channel, payload, false]);
      else overflowed = true;
      return;
    }
    dispatch(channel, payload);
  };

  const onChatMessage = (channel: string, payload: string) => {
    const kind = kinds[payload.charAt(0)];
    if (kind) deps.onReceived?.(kind);
    if (held) {
      if (held.length < HOLD_MAX) held.push([channel, payload, true]);
      else overflowed = true;
      return;
    }
    if (catching.size > 0) {
      const queue = catching.get(channel.slice(chatChannelHead, -1));
      if (queue) {
        queue.push([channel, payload]);
        return;
      }
    }
    dispatchChat(channel, payload);
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
    await deps.subscriptions.resubscribeAll();
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
    for (const [channel, payload, chat] of queue) {
      if (chat) dispatchChat(channel, payload);
      else dispatch(channel, payload);
    }
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
      chatSubscriber.on('smessage', onChatMessage);
      for (const s of [subscriber, chatSubscriber]) {
        s.on('close', onDown);
        s.on('ready', onReady);
      }
      await subscriber.subscribe(...handlers.keys());
      deps.subscriptions.start();
      started = true;
    },

    async stop(): Promise<void> {
      started = false;
      deps.subscriptions.stop();
      subscriber.off('message', onMessage);
      chatSubscriber.off('smessage', onChatMessage);
      for (const s of [subscriber, chatSubscriber]) {
        s.off('close', onDown);
        s.off('ready', onReady);
      }
      await subscriber.unsubscribe().catch(() => undefined);
      await chatSubscriber.sunsubscribe().catch(() => undefined);
    },
  };
}

export type Fanout = ReturnType<typeof createFanout>;
