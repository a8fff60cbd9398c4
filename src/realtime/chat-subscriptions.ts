import { errorText } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/client.js';

export interface ChatSubscriptionsDeps {
  /** The fan-out's subscriber connection. */
  subscriber: RedisClient;
  /** The chat's sharded channel (keys.channels.chat). */
  channelOf: (chatId: string) => string;
  /**
   * Which channels may share one (S)SUBSCRIBE: on Redis Cluster, one command per hash slot (a
   * command naming channels of two slots fails with CROSSSLOT). On a single Redis any channels
   * may go together: the default puts them all in one group.
   */
  groupOf?: (channel: string) => string | number;
  /** How long (un)subscribes are collected before they go, one command per group (ms). */
  batchMs?: number;
  /**
   * The least time between two batches (ms): while changes keep coming (a reconnect storm, whose
   * chats come one by one as their members' upgrades get through), each batch collects what came
   * since the last one, so a storm costs a batch per `spacingMs` however many chats it brings.
   */
  spacingMs?: number;
  /** The most channels one command names (a longer batch goes as several). */
  maxPerCommand?: number;
  /** How long after a failed subscribe it is tried again (ms). */
  retryMs?: number;
  logger: Logger;
}

/** The default `spacingMs`. */
export const DEFAULT_SPACING_MS = 50;

type State = 'none' | 'subscribing' | 'subscribed' | 'unsubscribing';

interface Entry {
  /** Whether a local member holds the chat (the registry's `hold`/`release`). */
  wanted: boolean;
  state: State;
  /** Connections waiting for the subscription to be confirmed (`ready`). */
  waiters: { resolve: () => void; reject: (err: Error) => void }[];
}

/**
 * The sharded subscriptions of this api process to its chats' channels: a chat is subscribed while
 * a member of it is connected here (the registry says so with `hold` and `release`). What changes
 * within `batchMs` goes as one SSUBSCRIBE and one SUNSUBSCRIBE per group, and batches go at least
 * `spacingMs` apart, so a reconnect storm of thousands of sockets costs a command per group every
 * `spacingMs` while it lasts, not one per chat. A chat released and held again before its batch
 * went costs nothing.
 *
 * `ready(chatIds)` resolves once each of the chats is subscribed (the SSUBSCRIBE's reply came):
 * a connection gets `ready` only then, so every message published after `ready` reaches it. While
 * the subscriber connection is down nothing is waited for: what is published meanwhile is missed
 * by every socket here alike, as on any pub/sub outage, and `sync` covers it.
 */
export function createChatSubscriptions(deps: ChatSubscriptionsDeps) {
  const { subscriber, channelOf, logger } = deps;
  const groupOf = deps.groupOf ?? (() => 0);
  const batchMs = deps.batchMs ?? 2;
  const spacingMs = deps.spacingMs ?? DEFAULT_SPACING_MS;
  const maxPerCommand = deps.maxPerCommand ?? 1000;
  const retryMs = deps.retryMs ?? 1000;
  const entries = new Map<string, Entry>();
  /** Chats whose entry changed since the last batch. */
  let dirty = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  let active = false;
  let lastFlushAt = -Infinity;

  function entryOf(chatId: string): Entry {
    let e = entries.get(chatId);
    if (!e) entries.set(chatId, (e = { wanted: false, state: 'none', waiters: [] }));
    return e;
  }

  function schedule(chatId: string, delayMs = batchMs): void {
    dirty.add(chatId);
    if (!active || timer) return;
    timer = setTimeout(flush, Math.max(delayMs, lastFlushAt + spacingMs - Date.now()));
  }

  function settle(e: Entry, err?: Error): void {
    const waiters = e.waiters;
    e.waiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  function grouped(chatIds: string[]): string[][] {
    const groups = new Map<string | number, string[]>();
    for (const chatId of chatIds) {
      const key = groupOf(channelOf(chatId));
      let group = groups.get(key);
      if (!group) groups.set(key, (group = []));
      group.push(chatId);
    }
    const commands: string[][] = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += maxPerCommand) commands.push(group.slice(i, i + maxPerCommand));
    }
    return commands;
  }

  function subscribe(chatIds: string[]): Promise<void>[] {
    return grouped(chatIds).map((chats) =>
      subscriber.ssubscribe(...chats.map(channelOf)).then(
        () => {
          for (const chatId of chats) {
            const e = entryOf(chatId);
            e.state = 'subscribed';
            settle(e);
            if (!e.wanted) schedule(chatId);
          }
        },
        (err: unknown) => {
          logger.warn({ err: errorText(err), chats: chats.length }, 'chat channels not subscribed: retrying');
          const failure = new Error(`chat channels not subscribed: ${errorText(err)}`);
          for (const chatId of chats) {
            const e = entryOf(chatId);
            e.state = 'none';
            settle(e, failure);
            schedule(chatId, retryMs);
          }
        },
      ),
    );
  }

  function unsubscribe(chatIds: string[]): void {
    for (const chats of grouped(chatIds)) {
      subscriber.sunsubscribe(...chats.map(channelOf)).then(
        () => {
          for (const chatId of chats) {
            const e = entryOf(chatId);
            e.state = 'none';
            if (e.wanted) schedule(chatId);
            else entries.delete(chatId);
          }
        },
        (err: unknown) => {
          logger.warn({ err: errorText(err), chats: chats.length }, 'chat channels not unsubscribed: retrying');
          for (const chatId of chats) {
            entryOf(chatId).state = 'subscribed';
            schedule(chatId, retryMs);
          }
        },
      );
    }
  }

  function flush(): void {
    timer = null;
    lastFlushAt = Date.now();
    const batch = dirty;
    dirty = new Set();
    const subs: string[] = [];
    const unsubs: string[] = [];
    for (const chatId of batch) {
      const e = entries.get(chatId);
      if (!e) continue;
      if (e.wanted && e.state === 'none') {
        e.state = 'subscribing';
        subs.push(chatId);
      } else if (!e.wanted && e.state === 'subscribed') {
        e.state = 'unsubscribing';
        unsubs.push(chatId);
      } else if (!e.wanted && e.state === 'none') {
        entries.delete(chatId);
      }
      // subscribing / unsubscribing: looked at again when the reply comes.
    }
    if (subs.length > 0) void subscribe(subs);
    if (unsubs.length > 0) unsubscribe(unsubs);
  }

  /** The subscriber dropped: nobody waits for it (see above); what was asked is sent once it is back. */
  const onClose = () => {
    for (const e of entries.values()) settle(e);
  };

  return {
    /** A local member of the chat is here now (the first one). */
    hold(chatId: string): void {
      const e = entryOf(chatId);
      e.wanted = true;
      if (e.state !== 'subscribed') schedule(chatId);
    },

    /** The chat's last local member went. */
    release(chatId: string): void {
      const e = entries.get(chatId);
      if (!e) return;
      e.wanted = false;
      schedule(chatId);
    },

    /** Resolves once every one of these chats (those still held) is subscribed; see above. */
    ready(chatIds: Iterable<string>): Promise<void> {
      if (!active || subscriber.status !== 'ready') return Promise.resolve();
      const waits: Promise<void>[] = [];
      for (const chatId of chatIds) {
        const e = entries.get(chatId);
        if (!e?.wanted || e.state === 'subscribed') continue;
        waits.push(new Promise<void>((resolve, reject) => e.waiters.push({ resolve, reject })));
      }
      return waits.length === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined);
    },

    /**
     * After the subscriber reconnected: every held chat subscribed again, one command per group
     * (idempotent where ioredis's own resubscribe came first). Resolves once all are confirmed,
     * so that what the fan-out held meanwhile can be released.
     */
    async resubscribeAll(): Promise<void> {
      const chats = [...entries].filter(([, e]) => e.wanted && e.state === 'subscribed').map(([chatId]) => chatId);
      await Promise.all(subscribe(chats));
      if (chats.some((chatId) => entries.get(chatId)?.state === 'none')) {
        throw new Error('chat channels not subscribed again after the reconnect');
      }
    },

    /** Whether this process is subscribed to the chat (tests, metrics). */
    subscribed(chatId: string): boolean {
      return entries.get(chatId)?.state === 'subscribed';
    },

    start(): void {
      active = true;
      subscriber.on('close', onClose);
      if (dirty.size > 0 && !timer) timer = setTimeout(flush, batchMs);
    },

    stop(): void {
      active = false;
      subscriber.off('close', onClose);
      if (timer) clearTimeout(timer);
      timer = null;
      for (const e of entries.values()) settle(e);
    },
  };
}

export type ChatSubscriptions = ReturnType<typeof createChatSubscriptions>;
