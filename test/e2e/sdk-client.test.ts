import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type ConnectionState,
  type LocalMessage,
  type OutboxItem,
  type OutboxStorage,
  ParleyClient,
  type ParleyClientOptions,
  ParleyHttp,
  type WebSocketConstructor,
} from '../../clients/js/src/index.js';
import { ApiClient, type TestUser } from '../helpers/http-client.js';
import { type RunningProcess, startApiProcess, startWorkerProcess } from '../helpers/processes.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { waitFor } from '../helpers/wait.js';

let env: TestEnv;
let api1: RunningProcess;
let api2: RunningProcess;
let worker: RunningProcess;
const extra: RunningProcess[] = [];
const clients: ParleyClient[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  [api1, api2, worker] = await Promise.all([
    startApiProcess(env.env),
    startApiProcess(env.env),
    startWorkerProcess(env.env),
  ]);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([api1, api2, worker, ...extra].map((p) => p?.kill('SIGTERM')));
  await env?.cleanup();
});

/** An SDK client as an app in Node makes it: `ws` for the socket, quick backoff for the test. */
function sdk(user: TestUser, urls: ParleyClientOptions['urls'], options: Partial<ParleyClientOptions> = {}) {
  const client = new ParleyClient({
    urls,
    token: user.token,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    backoff: { baseMs: 50, maxMs: 400 },
    ...options,
  });
  clients.push(client);
  const seen: LocalMessage[] = [];
  const states: ConnectionState[] = [];
  client.on('message', (m) => seen.push(m));
  client.on('state', (s) => states.push(s));
  return { client, seen, states };
}

const opened = (client: ParleyClient) => waitFor(() => client.state === 'open', 'the connection open');

async function users(api: ApiClient, n: number): Promise<TestUser[]> {
  return Promise.all([...Array(n).keys()].map((i) => api.newUser(`sdk${i}`)));
}

async function newChat(api: ApiClient, creator: TestUser, others: TestUser[]): Promise<string> {
  const r = await api.request('POST', '/api/chats', { memberIds: others.map((o) => o.user.id) }, creator.token);
  expect(r.status).toBe(201);
  return (r.body as { chat: { id: string } }).chat.id;
}

const seqsOf = (messages: LocalMessage[], chatId: string) =>
  messages.filter((m) => m.chatId === chatId).map((m) => m.seq);
const range = (n: number) => [...Array(n).keys()].map((i) => i + 1);

describe('@parley/client against real api processes', () => {
  it('an api SIGKILLed under a stream: the client reconnects to the other api, syncs, and sees every message once, in order', async () => {
    const api = new ApiClient(api2.url);
    const [sender, reader] = await users(api, 2);
    const chatId = await newChat(api, sender!, [reader!]);
    // The reader's list names api1 first: its first connection is there.
    const { client, seen, states } = sdk(reader!, [api1.url, api2.url]);
    client.watch(chatId);
    client.connect();
    await opened(client);
    expect(client.state).toBe('open');

    const total = 120;
    const http = new ParleyHttp({ baseUrls: () => [api2.url], token: () => sender!.token });
    const sending = (async () => {
      for (let i = 1; i <= total; i++) await http.sendMessage(chatId, { body: `m${i}`, clientMsgId: `k${i}` });
    })();
    await waitFor(() => seen.length >= 20, 'the reader got the first 20 messages');
    expect(await api1.kill('SIGKILL')).toBe(null);
    await sending;
    await waitFor(() => seen.length >= total, 'the reader got every message', { timeoutMs: 30_000 });
    expect(states).toContain('reconnecting');
    expect(client.state).toBe('open');
    expect(seqsOf(seen, chatId)).toEqual(range(total));
    expect(seen.map((m) => m.body)).toEqual(range(total).map((i) => `m${i}`));
    expect(client.messages(chatId).map((m) => m.seq)).toEqual(range(total));
  });

  it('sends made while disconnected are delivered once after the reconnect, in order', async () => {
    const api = new ApiClient(api2.url);
    const [writer, reader] = await users(api, 2);
    const chatId = await newChat(api, writer!, [reader!]);
    const doomed = await startApiProcess(env.env);
    extra.push(doomed);
    let current = doomed.url;
    const { client } = sdk(writer!, () => current);
    client.watch(chatId);
    client.connect();
    await opened(client);
    const other = sdk(reader!, [api2.url]);
    other.client.watch(chatId);
    other.client.connect();
    await opened(other.client);

    await doomed.kill('SIGKILL');
    await waitFor(() => client.state === 'reconnecting', 'the writer noticed the dead api');
    const changes = [1, 2, 3, 4, 5].map((i) => client.send(chatId, `offline ${i}`));
    expect(client.pending(chatId).map((p) => p.body)).toEqual([1, 2, 3, 4, 5].map((i) => `offline ${i}`));
    expect(client.pending(chatId).every((p) => p.state === 'sending')).toBe(true);

    current = api2.url; // the provider now names a live api
    const acked = await Promise.all(changes.map((c) => c.accepted));
    expect(acked.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(client.outbox.size).toBe(0);
    await waitFor(() => other.seen.length >= 5, 'the reader got the five');
    expect(other.seen.map((m) => m.body)).toEqual([1, 2, 3, 4, 5].map((i) => `offline ${i}`));
    expect(client.messages(chatId).map((m) => m.body)).toEqual([1, 2, 3, 4, 5].map((i) => `offline ${i}`));

    // Exactly once in the store too (what PostgreSQL got, once the worker wrote it).
    await waitFor(async () => {
      const r = await env.pool.query('SELECT count(*)::int AS n FROM messages WHERE chat_id = $1', [chatId]);
      return r.rows[0].n >= 5;
    }, 'the five persisted');
    const { rows } = await env.pool.query('SELECT seq, body FROM messages WHERE chat_id = $1 ORDER BY seq', [chatId]);
    expect(rows.map((r) => r.body)).toEqual([1, 2, 3, 4, 5].map((i) => `offline ${i}`));
    // The state moves on to persisted with the worker's `persisted` frame.
    await waitFor(() => client.messages(chatId).every((m) => m.state === 'persisted'), 'the five persisted ticks');
  });

  it('a lost ack: the change is sent again and stored once', async () => {
    const api = new ApiClient(api2.url);
    const [writer] = await users(api, 1);
    const chatId = await newChat(api, writer!, []);
    const { client } = sdk(writer!, [api2.url], { resendAfterMs: 200 });
    client.watch(chatId);
    client.connect();
    await opened(client);
    // Both the ack and the message frame of the first try never reach the client.
    client.testSeam.dropNext((f) => f.type === 'ack');
    client.testSeam.dropNext((f) => f.type === 'message');
    const change = client.send(chatId, 'once');
    const message = await change.accepted;
    expect(message.seq).toBe(1);
    const history = await client.http.history(chatId);
    expect(history.messages.map((m) => m.body)).toEqual(['once']);
  });

  it('a seq gap (a dropped frame) is repaired by a sync of the chat', async () => {
    const api = new ApiClient(api2.url);
    const [sender, reader] = await users(api, 2);
    const chatId = await newChat(api, sender!, [reader!]);
    const { client, seen } = sdk(reader!, [api2.url]);
    const gaps: { chatId: string; expected: number; got: number }[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.watch(chatId);
    client.connect();
    await opened(client);
    client.testSeam.dropNext((f) => f.type === 'message' && f.message.seq === 3);
    const http = new ParleyHttp({ baseUrls: () => [api2.url], token: () => sender!.token });
    for (let i = 1; i <= 6; i++) await http.sendMessage(chatId, { body: `g${i}`, clientMsgId: `g${i}` });
    await waitFor(() => seen.length >= 6, 'all six delivered');
    expect(gaps).toEqual([{ chatId, expected: 3, got: 4 }]);
    expect(seqsOf(seen, chatId)).toEqual(range(6));
    expect(client.testSeam.drops).toHaveLength(0); // the drop did happen
  });

  it('edits, deletes and reactions reach the app as updates, not as new messages', async () => {
    const api = new ApiClient(api2.url);
    const [a, b] = await users(api, 2);
    const chatId = await newChat(api, a!, [b!]);
    const alice = sdk(a!, [api2.url]);
    const bob = sdk(b!, [api2.url]);
    const updates: LocalMessage[] = [];
    bob.client.on('updated', (m) => updates.push(m));
    for (const c of [alice, bob]) {
      c.client.watch(chatId);
      c.client.connect();
      await opened(c.client);
    }
    const first = await alice.client.send(chatId, 'hello').accepted;
    await alice.client.send(chatId, 'second').accepted;
    await alice.client.edit(chatId, first.seq, 'hello, edited').accepted;
    await bob.client.react(chatId, first.seq, '👍').accepted;
    await alice.client.delete(chatId, 2).accepted;
    await waitFor(
      () => bob.client.messages(chatId)[1]?.deletedAt && bob.client.messages(chatId)[0]?.reactions.length,
      'bob sees the edit, the reaction and the delete',
    );
    expect(bob.seen.map((m) => m.seq)).toEqual([1, 2]);
    expect(bob.client.messages(chatId)[0]).toMatchObject({
      body: 'hello, edited',
      reactions: [{ emoji: '👍', count: 1 }],
    });
    expect(updates.some((m) => m.body === 'hello, edited')).toBe(true);
  });

  it('unsent changes survive a reload through the storage hook, and one already stored is not stored twice', async () => {
    const api = new ApiClient(api2.url);
    const [writer] = await users(api, 1);
    const chatId = await newChat(api, writer!, []);
    let saved: readonly OutboxItem[] = [];
    const storage: OutboxStorage = { load: () => saved, save: (items) => void (saved = [...items]) };

    // The first page: its first send reaches the server but neither its ack nor its message
    // frame comes back; the second and third are made after that, and the page goes away.
    const page1 = sdk(writer!, [api2.url], { storage });
    page1.client.watch(chatId);
    page1.client.connect();
    await opened(page1.client);
    page1.client.testSeam.dropNext((f) => f.type === 'ack');
    page1.client.testSeam.dropNext((f) => f.type === 'message');
    page1.client.send(chatId, 'r1');
    page1.client.send(chatId, 'r2');
    page1.client.send(chatId, 'r3');
    await waitFor(async () => (await page1.client.http.history(chatId)).messages.length === 1, 'r1 stored');
    page1.client.close();
    expect(saved.map((i) => (i.kind === 'send' ? i.body : i.kind))).toEqual(['r1', 'r2', 'r3']);

    const page2 = sdk(writer!, [api2.url], { storage });
    page2.client.watch(chatId);
    page2.client.connect();
    await waitFor(() => page2.client.outbox.size === 0 && page2.seen.length >= 3, 'the three acked and seen');
    expect(saved).toEqual([]);
    expect((await page2.client.http.history(chatId)).messages.map((m) => m.body)).toEqual(['r1', 'r2', 'r3']);
    expect(page2.seen.map((m) => m.body)).toEqual(['r1', 'r2', 'r3']);
  });

  it('local state: typing users, read positions, unread counts and presence', async () => {
    const api = new ApiClient(api2.url);
    const [a, b] = await users(api, 2);
    const chatId = await newChat(api, a!, [b!]);
    const alice = sdk(a!, [api2.url]);
    alice.client.watch(chatId);
    alice.client.connect();
    await opened(alice.client);
    const bob = sdk(b!, [api2.url]);
    await bob.client.loadChats();
    bob.client.connect();
    await opened(bob.client);
    await waitFor(() => alice.client.presence(b!.user.id)?.status === 'online', 'alice sees bob online');

    await waitFor(() => {
      alice.client.typing(chatId);
      return bob.client.typingUsers(chatId).includes(a!.user.id);
    }, 'bob sees alice typing');
    for (const body of ['x', 'y', 'z']) await alice.client.send(chatId, body).accepted;
    await waitFor(() => bob.seen.length >= 3, 'bob got three');
    expect(bob.client.typingUsers(chatId)).toEqual([]); // her message ended her typing
    expect(bob.client.chat(chatId)!.unreadCount).toBe(3);
    await bob.client.markRead(chatId, 2);
    expect(bob.client.chat(chatId)!.unreadCount).toBe(1);
    await waitFor(() => alice.client.chat(chatId)!.reads.get(b!.user.id) === 2, 'alice sees bob read up to 2');

    bob.client.close();
    await waitFor(() => alice.client.presence(b!.user.id)?.status === 'offline', 'alice sees bob offline');
  });

  it('members by username: findUser, addMemberByUsername, and loadMembers seeding the read positions and presence', async () => {
    const api = new ApiClient(api2.url);
    const [a, b] = await users(api, 2);
    const alice = sdk(a!, [api2.url]);
    const found = await alice.client.http.findUser(b!.user.username.toUpperCase());
    expect(found.user.id).toBe(b!.user.id);
    await expect(alice.client.http.findUser('nobody_at_all')).rejects.toMatchObject({ status: 404, code: 'not_found' });

    const { chat } = await alice.client.http.createChat({ title: 'by name', memberIds: [] });
    expect((await alice.client.addMemberByUsername(chat.id, b!.user.username)).id).toBe(b!.user.id);
    const sent = await alice.client.http.sendMessage(chat.id, { body: 'read me' });
    await new ParleyHttp({ baseUrls: () => [api2.url], token: () => b!.token }).markRead(chat.id, sent.message.seq);

    // Read positions reach PostgreSQL in batches: asked again until bob's is stored.
    await waitFor(async () => {
      await alice.client.loadMembers(chat.id);
      return alice.client.chat(chat.id)!.reads.get(b!.user.id) === sent.message.seq;
    }, "bob's stored read position in alice's state");
    const members = alice.client.chat(chat.id)!.members;
    expect(members.map((m) => m.username).sort()).toEqual([a!.user.username, b!.user.username].sort());
    expect(members.find((m) => m.userId === b!.user.id)!.lastReadSeq).toBe(sent.message.seq);
    // Bob's presence was never announced to alice (no connection): fetched with the members.
    expect(alice.client.presence(b!.user.id)).toMatchObject({ userId: b!.user.id, status: 'offline' });
  });

  it('loadOlder after a sync brought an older changed message: the history below the newest has no hole', async () => {
    const api = new ApiClient(api2.url);
    const [a, b] = await users(api, 2);
    const chatId = await newChat(api, a!, [b!]);
    const http = new ParleyHttp({ baseUrls: () => [api2.url], token: () => a!.token });
    for (const body of ['1', '2', '3', '4']) await http.sendMessage(chatId, { body });
    await http.editMessage(chatId, 1, '1, edited');
    const bob = sdk(b!, [api2.url]);
    await bob.client.loadChats(); // from the newest (4); the sync brings 1 as changed
    const synced = new Promise((resolve) => bob.client.on('synced', resolve));
    bob.client.connect();
    await synced;
    await waitFor(() => bob.client.messages(chatId).some((m) => m.seq === 1), 'the edited first message synced');
    await bob.client.loadOlder(chatId);
    expect(bob.client.messages(chatId).map((m) => [m.seq, m.body])).toEqual([
      [1, '1, edited'],
      [2, '2'],
      [3, '3'],
      [4, '4'],
    ]);
  });

  it('4001: a logout elsewhere (DELETE /api/sessions) surfaces as logged-out, with no reconnect', async () => {
    const api = new ApiClient(api2.url);
    const [u] = await users(api, 1);
    const { client, states } = sdk(u!, [api2.url]);
    client.connect();
    await opened(client);
    // Another device of the same user logs out everywhere.
    const login = await api.request('POST', '/api/sessions', {
      username: u!.user.username,
      password: 'correct horse battery',
    });
    const elsewhere = new ParleyHttp({ baseUrls: () => [api2.url], token: () => login.body.token as string });
    await elsewhere.logoutEverywhere();
    await waitFor(() => client.state === 'logged-out', 'logged-out');
    expect(states.slice(-1)).toEqual(['logged-out']);
    expect(states).not.toContain('reconnecting');
  });

  it('4001 from DELETE /api/sessions/current of the same session', async () => {
    const api = new ApiClient(api2.url);
    const [u] = await users(api, 1);
    const { client, states } = sdk(u!, [api2.url]);
    client.connect();
    await opened(client);
    await new ParleyHttp({ baseUrls: () => [api2.url], token: () => u!.token }).logout();
    await waitFor(() => client.state === 'logged-out', 'logged-out');
    expect(states).not.toContain('reconnecting');
  });
});

describe('@parley/client heartbeat', () => {
  it('an api that stops answering (SIGSTOP: the TCP link stays up) is noticed by the ping and left for the other api', async () => {
    const frozen = await startApiProcess(env.env);
    extra.push(frozen);
    const api = new ApiClient(api2.url);
    const [sender, reader] = await users(api, 2);
    const chatId = await newChat(api, sender!, [reader!]);
    const { client, seen, states } = sdk(reader!, [frozen.url, api2.url], {
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 400,
    });
    client.watch(chatId);
    client.connect();
    await opened(client);
    frozen.proc.kill('SIGSTOP');
    try {
      const http = new ParleyHttp({ baseUrls: () => [api2.url], token: () => sender!.token });
      await http.sendMessage(chatId, { body: 'while frozen', clientMsgId: 'f1' });
      await waitFor(() => seen.length >= 1, 'the message through the other api');
      expect(states).toContain('reconnecting');
      expect(client.state).toBe('open');
      expect(seen.map((m) => m.body)).toEqual(['while frozen']);
    } finally {
      frozen.proc.kill('SIGCONT');
    }
  });
});
