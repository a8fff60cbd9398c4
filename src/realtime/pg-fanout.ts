import type pg from 'pg';
import { errorText } from '../domain/errors.js';
import { parseChatMessage } from '../domain/events.js';
import { messageFrame, messageUpdatedFrame } from '../domain/frames.js';
import type { Logger } from '../logger.js';
import { encodeMessage, wireJson } from '../message-log/message-log.js';
import { PG_MESSAGES_CHANNEL, PG_UPDATES_CHANNEL } from '../stores/direct-message-store.js';
import type { MessageStore } from '../stores/message-store.js';
import type { ConnectionRegistry } from './connection-registry.js';

export interface PgFanoutDeps {
  /** Opens a dedicated connection for LISTEN (created by the composition root's factory). */
  connect: () => Promise<pg.Client>;
  registry: ConnectionRegistry;
  messages: MessageStore;
  /**
   * The chat's members in PostgreSQL. Membership changes made while Redis is away are not
   * announced (they travel by Redis pub/sub), so this path delivers to the members PostgreSQL
   * names rather than to the chat index.
   */
  memberIds: (chatId: string) => Promise<string[] | null>;
  logger: Logger;
  retryMs: number;
}

/**
 * Live fan-out without Redis: messages sent in degraded mode are NOTIFYed by the transaction
 * that stores them, and every api process LISTENs, so members on other processes still get
 * them. The listener reconnects by itself while PostgreSQL is away.
 */
export function createPgFanout(deps: PgFanoutDeps) {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  /** A new message (`message`) or a changed one (`message.updated`), to the chat's members. */
  async function deliver(payload: string, frame: (json: string) => string): Promise<void> {
    // `chatId SP json`, or `chatId SP @seq` (direct-message-store.ts notifyPayload).
    const { chatId, json: inline } = parseChatMessage(payload);
    let json = inline;
    if (json.startsWith('@')) {
      // Too large for a NOTIFY: read it back (as it is now).
      const m = await deps.messages.get(chatId, Number(json.slice(1)));
      if (!m) return;
      json = encodeMessage(m);
    }
    const members = await deps.memberIds(chatId);
    if (members) deps.registry.toUsers(members, frame(wireJson(json)));
  }
  const frames: Record<string, (json: string) => string> = {
    [PG_MESSAGES_CHANNEL]: messageFrame,
    [PG_UPDATES_CHANNEL]: messageUpdatedFrame,
  };

  async function listen(): Promise<void> {
    if (stopped) return;
    try {
      const c = await deps.connect();
      c.on('notification', (n) => {
        const frame = frames[n.channel];
        if (frame && n.payload) {
          deliver(n.payload, frame).catch((err: unknown) => deps.logger.warn({ err }, 'pg fan-out delivery failed'));
        }
      });
      c.on('error', () => undefined);
      c.on('end', () => {
        client = undefined;
        schedule();
      });
      await c.query(`LISTEN ${PG_MESSAGES_CHANNEL}; LISTEN ${PG_UPDATES_CHANNEL}`);
      // Stopped while this connection was being made: stop() found nothing to end, so end it here.
      if (stopped) {
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
    } catch (err) {
      deps.logger.debug({ err: errorText(err) }, 'pg listener not connected, retrying');
      schedule();
    }
  }

  function schedule(): void {
    if (stopped || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void listen();
    }, deps.retryMs);
    retry.unref();
  }

  return {
    start: listen,
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
