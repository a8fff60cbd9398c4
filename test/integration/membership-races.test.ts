import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../helpers/http-client.js';
import { type SeamedApi, startSeamedApi } from '../helpers/seamed-api.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type TestSocket, messageWithId } from '../helpers/ws-client.js';

/**
 * Membership changes racing a socket's life: published while its chats are read at the upgrade,
 * or while the api's subscriber reconnects and the revalidation that follows fails. The api runs
 * on a pool seam (seamed-api.ts), so an answer of PostgreSQL can be held back or turned into a failure.
 */
let env: TestEnv;
let app: SeamedApi;
let http: ApiClient;
let url: string;

beforeAll(async () => {
  env = await createTestEnv({ LOG_LEVEL: 'silent' });
  app = await startSeamedApi(env);
  ({ url, api: http } = app);
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** `promise`, or a failure naming `what` after `ms` (so that a missing close fails fast). */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const messagesOf = (s: TestSocket, chatId: string) =>
  s.of('message').filter((f) => (f.message as { chatId: string }).chatId === chatId);

describe('a membership change published while a socket of the user is being opened', () => {
  it('is applied to that socket: a member removed meanwhile gets nothing more of the chat', async () => {
    const [owner, removed, watcher] = await Promise.all([
      http.newUser('owner'),
      http.newUser('removed'),
      http.newUser('watcher'),
    ]);
    const chat = await http.newChat(owner, [removed, watcher]);
    const other = await http.newChat(owner, [removed]);
    const watching = await connectClient(url, watcher.token);

    // The upgrade has read the removed member's chats (the chat among them) and waits.
    const read = deferred();
    const release = deferred();
    app.hook(async (text, params) => {
      if (!text.includes('FROM chat_members WHERE user_id = $1') || params[0] !== removed.user.id) return;
      app.hook(null);
      read.resolve();
      await release.promise;
    });
    const opening = connectClient(url, removed.token);
    await read.promise;

    expect(
      (await http.request('DELETE', `/api/chats/${chat.id}/members/${removed.user.id}`, undefined, owner.token)).status,
    ).toBe(204);
    // Published after the removal: once the watcher has it, the api has applied the removal.
    const first = await http.send(owner.token, chat.id, 'while the socket opened');
    await watching.next(messageWithId(first.body.message.id), 'the first message');
    release.resolve();
    const socket = await opening;

    const next = await http.send(owner.token, chat.id, 'after');
    await watching.next(messageWithId(next.body.message.id), 'the next message');
    const marker = await http.send(owner.token, other.id, 'marker');
    await socket.next(messageWithId(marker.body.message.id), 'the marker');
    expect(messagesOf(socket, chat.id)).toEqual([]);
    await Promise.all([socket.close(), watching.close()]);
  });
});

describe('memberships that cannot be revalidated after the subscriber reconnected', () => {
  it('close every socket with 4008 (reconnect and sync) instead of delivering on them', async () => {
    const [a, b] = await Promise.all([http.newUser('a'), http.newUser('b')]);
    const chat = await http.newChat(a, [b]);
    const [sa, sb] = await Promise.all([connectClient(url, a.token), connectClient(url, b.token)]);

    app.hook((text) => {
      if (text.includes('array_agg(chat_id)')) throw new Error('connection terminated');
    });
    await env.redis.client('KILL', 'ID', app.subscriberId);
    expect(await within(10_000, Promise.all([sa.closed, sb.closed]), 'both sockets closed')).toEqual([4008, 4008]);
    app.hook(null);

    // Reconnected sockets read their chats afresh and get the chat's events again.
    const again = await connectClient(url, b.token);
    const sent = await http.send(a.token, chat.id, 'after the resync');
    await again.next(messageWithId(sent.body.message.id), 'a message on the new socket');
    expect(sb.of('message')).toEqual([]);
    await again.close();
  });
});
