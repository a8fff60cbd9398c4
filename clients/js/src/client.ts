import { type BackoffOptions, backoffDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { type FetchLike, ParleyHttp, ParleyHttpError } from './http.js';
import { Outbox, type OutboxItem, type OutboxStorage } from './outbox.js';
import { ChatTimeline } from './timeline.js';
import type {
  ChatListItem,
  ChatMember,
  ClientFrame,
  ConnectionState,
  ErrorBody,
  Message,
  Presence,
  ServerFrame,
  SyncPoint,
  User,
} from './types.js';
import { CloseCodes } from './types.js';

/** The part of a WebSocket the SDK uses: the browsers' and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A message as the app shows it. */
export type MessageState = 'sending' | 'accepted' | 'persisted';
export type LocalMessage = Message & { state: Exclude<MessageState, 'sending'> };
/** A send not acked yet, shown with state `sending`. */
export interface PendingMessage {
  clientMsgId: string;
  chatId: string;
  body: string;
  replyTo: number | null;
  state: 'sending';
}

export interface ParleyClientOptions {
  /**
   * The api processes' base URLs (`http(s)://host:port`): each (re)connect tries the next one,
   * or a function that names the one to try (called before every attempt).
   */
  urls: readonly string[] | (() => string | Promise<string>);
  token?: string | null;
  /** Where there is no global WebSocket (Node 20): e.g. `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  /** Keeps unsent changes across reloads (e.g. `webStorageOutbox(localStorage)`). */
  storage?: OutboxStorage;
  backoff?: BackoffOptions;
  /** A `ping` after this long without any frame from the server (default 15 000 ms). */
  heartbeatIntervalMs?: number;
  /** The link counts as dead when nothing arrives this long after a ping (default 10 000 ms). */
  heartbeatTimeoutMs?: number;
  /** A connection that has not said `ready` after this long is given up (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** An unacked change is sent again after this long on the same connection (default 10 000 ms). */
  resendAfterMs?: number;
  /** How long a `typing` frame keeps its user typing (default 6 000 ms). */
  typingTtlMs?: number;
  /** [0, 1): the jitter's source (tests). */
  random?: () => number;
}

/** Per-chat state the UI renders. */
export interface ChatState {
  chatId: string;
  timeline: ChatTimeline;
  persistedSeq: number;
  unreadCount: number;
  /** userId -> the highest seq they read (from `read` frames; yours from markRead). */
  reads: Map<string, number>;
  /** userId -> when their typing runs out (ms since epoch). */
  typing: Map<string, number>;
  info: ChatListItem | null;
  /** From `loadMembers` (GET /api/chats/:chatId); empty until then. */
  members: ChatMember[];
}

export type ParleyEvents = {
  state: (state: ConnectionState) => void;
  ready: (user: User) => void;
  /** A new message, once, in seq order per chat. */
  message: (message: LocalMessage) => void;
  /** A known message changed (edit, delete, reaction) or its state moved on (persisted). */
  updated: (message: LocalMessage) => void;
  ack: (ack: { item: OutboxItem; message: Message }) => void;
  /** A change the server refused for good (validation, forbidden, conflict...). */
  failed: (failure: { item: OutboxItem; error: ErrorBody }) => void;
  persisted: (p: { chatId: string; seq: number }) => void;
  typing: (t: { chatId: string; userId: string }) => void;
  read: (r: { chatId: string; userId: string; seq: number }) => void;
  presence: (p: Presence) => void;
  system: (s: { event: string; data?: unknown }) => void;
  /** A sync answered (`synced`) for these chats. */
  synced: (s: { chatIds: string[] }) => void;
  /** A seq gap in live traffic: a sync of the chat was asked for. */
  gap: (g: { chatId: string; expected: number; got: number }) => void;
  error: (e: ErrorBody) => void;
  /** Every frame as received (after the test seam). */
  frame: (frame: ServerFrame) => void;
};

const OPEN = 1;
/** Client-side close codes (4000-4999 private use). */
const DEAD_LINK = 4000;
/** Sync rounds for one gap before the missing seqs count as skipped. */
const GAP_SYNC_ROUNDS = 3;

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

function wsUrl(base: string): string {
  const url = new URL('/ws', base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

function frameText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data as ArrayBuffer);
  if (Array.isArray(data)) return data.map(frameText).join('');
  return String(data);
}

/**
 * Parley's client: the HTTP routes (`http`), one WebSocket that reconnects, syncs and repairs
 * gaps by itself, an outbox for changes, and the local state of every chat it knows.
 */
export class ParleyClient extends Emitter<ParleyEvents> {
  readonly http: ParleyHttp;
  readonly outbox: Outbox;
  /** Test seam: incoming frames for which a predicate here answers true are dropped, once each. */
  readonly testSeam = {
    drops: [] as ((frame: ServerFrame) => boolean)[],
    /** Drops the next incoming frame that matches (to force a seq gap). */
    dropNext: (match: (frame: ServerFrame) => boolean) => {
      this.testSeam.drops.push(match);
    },
  };

  private readonly options: ParleyClientOptions;
  private tokenValue: string | null;
  private userValue: User | null = null;
  private stateValue: ConnectionState = 'closed';
  private socket: WebSocketLike | null = null;
  private attempt = 0;
  private urlIndex = 0;
  private lastUrl: string | null = null;
  private wanted = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setTimeout> | null = null;
  private deadTimer: ReturnType<typeof setTimeout> | null = null;
  private resendTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly chatsById = new Map<string, ChatState>();
  private readonly presenceByUser = new Map<string, Presence>();
  /** Syncs sent on this connection and not answered yet, oldest first. */
  private syncsInFlight: string[][] = [];
  private readonly newlyWatched = new Set<string>();
  /** chatId -> sync rounds spent on its current gap. */
  private readonly gapRounds = new Map<string, number>();
  private readonly waiters = new Map<string, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private restored: Promise<void>;

  constructor(options: ParleyClientOptions) {
    super();
    this.options = options;
    this.tokenValue = options.token ?? null;
    this.http = new ParleyHttp({
      baseUrls: () => this.baseUrls(),
      token: () => this.tokenValue,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.outbox = new Outbox(options.storage);
    this.restored = this.outbox.restore().catch(() => undefined);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }
  get user(): User | null {
    return this.userValue;
  }
  get token(): string | null {
    return this.tokenValue;
  }

  // ---- sessions -------------------------------------------------------------------------

  register(username: string, password: string, displayName?: string): Promise<{ user: User }> {
    return this.http.register({ username, password, ...(displayName !== undefined ? { displayName } : {}) });
  }

  /** Logs in and keeps the token for the HTTP calls and the connection. */
  async login(username: string, password: string): Promise<User> {
    const { token, user } = await this.http.login({ username, password });
    this.tokenValue = token;
    this.userValue = user;
    return user;
  }

  setToken(token: string | null): void {
    this.tokenValue = token;
  }

  /** Ends this session on the server and closes the connection. */
  async logout(): Promise<void> {
    try {
      await this.http.logout();
    } finally {
      this.tokenValue = null;
      this.close();
      this.setState('logged-out');
    }
  }

  // ---- connection -----------------------------------------------------------------------

  /** Opens the connection (and keeps it open until `close`). */
  connect(): void {
    if (this.wanted && this.stateValue !== 'logged-out') return;
    if (!this.webSocketConstructor())
      throw new Error('no WebSocket: pass one in the options (e.g. from the ws package)');
    this.wanted = true;
    this.attempt = 0;
    this.setState('connecting');
    void this.open();
  }

  /** Closes for good (no reconnect); the outbox keeps its items. */
  close(): void {
    this.wanted = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) this.detach(socket, 1000);
    this.outbox.resetInFlight();
    this.syncsInFlight = [];
    if (this.stateValue !== 'logged-out') this.setState('closed');
  }

  private baseUrls(): readonly string[] {
    const urls = this.options.urls;
    if (typeof urls === 'function') return this.lastUrl ? [this.lastUrl] : [];
    return urls;
  }

  private async nextUrl(): Promise<string> {
    const urls = this.options.urls;
    if (typeof urls === 'function') return (this.lastUrl = await urls());
    const url = urls[this.urlIndex % urls.length];
    if (url === undefined) throw new Error('no urls to connect to');
    this.urlIndex = (this.urlIndex + 1) % urls.length;
    return (this.lastUrl = url);
  }

  private async open(): Promise<void> {
    await this.restored;
    if (!this.wanted) return;
    const token = this.tokenValue;
    if (!token) {
      this.setState('logged-out');
      this.wanted = false;
      return;
    }
    let socket: WebSocketLike;
    try {
      const Ctor = this.webSocketConstructor();
      if (!Ctor) throw new Error('no WebSocket');
      socket = new Ctor(wsUrl(await this.nextUrl()), [`bearer.${token}`]);
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    if (!this.wanted) {
      socket.close(1000);
      return;
    }
    this.socket = socket;
    // Until `ready`, and then after each ping, silence this long means a dead link.
    this.armDeadTimer(this.options.connectTimeoutMs ?? 10_000);
    let ready = false;
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      this.alive();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(frameText(ev.data)) as ServerFrame;
      } catch {
        return;
      }
      if (frame.type === 'ready') ready = true;
      this.receive(frame);
    };
    socket.onerror = () => undefined; // onclose follows
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onClosed(ev.code, ready);
    };
  }

  private onClosed(code: number, wasReady: boolean): void {
    this.clearTimers();
    this.outbox.resetInFlight();
    this.syncsInFlight = [];
    if (!this.wanted) return;
    if (code === CloseCodes.sessionEnded) {
      this.loggedOut();
      return;
    }
    if (!wasReady) {
      // Refused before the upgrade: a browser cannot see a 401, so ask the api whether the token still holds.
      void this.http.me().then(
        () => undefined,
        (err: unknown) => {
          if (err instanceof ParleyHttpError && err.status === 401) this.loggedOut();
        },
      );
    }
    this.scheduleReconnect(code === CloseCodes.resync);
  }

  private loggedOut(): void {
    this.wanted = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) this.detach(socket, 1000);
    this.setState('logged-out');
  }

  private scheduleReconnect(soon: boolean): void {
    if (!this.wanted) return;
    this.setState('reconnecting');
    if (soon) this.attempt = 0;
    const delay = backoffDelay(this.attempt++, this.options.backoff, this.options.random);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  private detach(socket: WebSocketLike, code: number): void {
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = () => undefined;
    try {
      // A dead link would hold a closing handshake open for long: `ws` can drop it at once.
      const terminate = (socket as { terminate?: () => void }).terminate;
      if (code === DEAD_LINK && terminate) terminate.call(socket);
      else socket.close(code);
    } catch {
      // already closed
    }
  }

  /** Any frame proves the link alive: the heartbeat restarts. */
  private alive(): void {
    if (this.deadTimer) clearTimeout(this.deadTimer);
    this.deadTimer = null;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => this.ping(), this.options.heartbeatIntervalMs ?? 15_000);
  }

  private webSocketConstructor(): WebSocketConstructor | undefined {
    return this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  }

  private ping(): void {
    this.heartbeatTimer = null;
    if (!this.socket) return;
    this.sendFrame({ type: 'ping', ref: randomId() });
    this.armDeadTimer(this.options.heartbeatTimeoutMs ?? 10_000);
  }

  private armDeadTimer(ms: number): void {
    if (this.deadTimer) clearTimeout(this.deadTimer);
    this.deadTimer = setTimeout(() => {
      // Nothing came back: the link is dead even if the socket has not noticed.
      const socket = this.socket;
      if (!socket) return;
      this.socket = null;
      this.detach(socket, DEAD_LINK);
      this.onClosed(DEAD_LINK, true);
    }, ms);
  }

  private clearTimers(): void {
    for (const t of [this.reconnectTimer, this.heartbeatTimer, this.deadTimer, this.resendTimer]) {
      if (t) clearTimeout(t);
    }
    this.reconnectTimer = this.heartbeatTimer = this.deadTimer = this.resendTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private sendFrame(frame: ClientFrame): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  // ---- chats and local state ------------------------------------------------------------

  /**
   * Follows a chat from a point (default: from its first message): it is synced on every connect.
   * Chats the client first hears of live are followed from their first message seen.
   */
  watch(chatId: string, from: { seq?: number; rev?: number } = {}): ChatState {
    let chat = this.chatsById.get(chatId);
    if (!chat) {
      chat = {
        chatId,
        timeline: new ChatTimeline(chatId, from),
        persistedSeq: 0,
        unreadCount: 0,
        reads: new Map(),
        typing: new Map(),
        info: null,
        members: [],
      };
      this.chatsById.set(chatId, chat);
      if (this.stateValue === 'open') this.syncSoon(chatId);
    }
    return chat;
  }

  /** Stops following a chat (e.g. after leaving it). */
  unwatch(chatId: string): void {
    this.chatsById.delete(chatId);
  }

  chat(chatId: string): ChatState | undefined {
    return this.chatsById.get(chatId);
  }
  chats(): ChatState[] {
    return [...this.chatsById.values()];
  }

  /** The chat's messages in seq order, with their state. */
  messages(chatId: string): LocalMessage[] {
    const chat = this.chatsById.get(chatId);
    return chat ? chat.timeline.messages().map((m) => this.local(chat, m)) : [];
  }

  /** The chat's sends not acked yet, in order. */
  pending(chatId: string): PendingMessage[] {
    return this.outbox
      .all()
      .filter((i): i is Extract<OutboxItem, { kind: 'send' }> => i.kind === 'send' && i.chatId === chatId)
      .map((i) => ({ clientMsgId: i.clientMsgId, chatId, body: i.body, replyTo: i.replyTo ?? null, state: 'sending' }));
  }

  typingUsers(chatId: string, now = Date.now()): string[] {
    const chat = this.chatsById.get(chatId);
    return chat ? [...chat.typing].filter(([, until]) => until > now).map(([userId]) => userId) : [];
  }

  presence(userId: string): Presence | undefined {
    return this.presenceByUser.get(userId);
  }

  /**
   * Loads the chat list (every page) and follows each chat: from its newest message when it is
   * new to the client (older ones through `loadOlder`), with its unread count.
   */
  async loadChats(): Promise<ChatListItem[]> {
    const all: ChatListItem[] = [];
    let cursor: string | null = null;
    do {
      const page: { chats: ChatListItem[]; nextCursor: string | null } = await this.http.listChats({
        limit: 200,
        ...(cursor ? { cursor } : {}),
      });
      all.push(...page.chats);
      cursor = page.nextCursor;
    } while (cursor);
    for (const item of all) {
      const known = this.chatsById.has(item.id);
      const chat = this.watch(item.id, { seq: item.lastSeq });
      chat.info = item;
      chat.persistedSeq = Math.max(chat.persistedSeq, item.persistedSeq);
      if (!known) chat.unreadCount = item.unreadCount;
      if (item.lastMessage) chat.timeline.addHistory([item.lastMessage]);
    }
    return all;
  }

  /**
   * The chat's members (GET /api/chats/:chatId), kept in its state; their stored read positions
   * seed `reads` (a `read` frame moves one on later), and the presence of those not known yet is
   * fetched.
   */
  async loadMembers(chatId: string): Promise<ChatMember[]> {
    const { chat: info } = await this.http.getChat(chatId);
    const chat = this.watch(chatId, { seq: info.lastSeq });
    chat.members = info.members;
    chat.persistedSeq = Math.max(chat.persistedSeq, info.persistedSeq);
    for (const m of info.members) chat.reads.set(m.userId, Math.max(chat.reads.get(m.userId) ?? 0, m.lastReadSeq));
    // `presence` frames come once per connection for the users shared a chat with then: a member
    // of a chat made since is asked about over HTTP (a frame, newer, wins).
    const unknown = info.members.filter((m) => m.userId !== this.userValue?.id && !this.presenceByUser.has(m.userId));
    await Promise.all(
      unknown.map(async (m) => {
        const p = await this.http.presence(m.userId).catch(() => null);
        if (!p || this.presenceByUser.has(p.userId)) return;
        this.presenceByUser.set(p.userId, p);
        this.emit('presence', p);
      }),
    );
    return info.members;
  }

  /** Finds a user by username and adds them to the chat; answers the user. */
  async addMemberByUsername(chatId: string, username: string): Promise<User> {
    const { user } = await this.http.findUser(username);
    await this.http.addMember(chatId, user.id);
    return user;
  }

  /** Older messages of a chat from the history route (before the oldest the client has). */
  async loadOlder(chatId: string, limit = 50): Promise<{ messages: LocalMessage[]; hasMore: boolean }> {
    const chat = this.watch(chatId);
    // Below the run of seqs held without a hole up to the newest: a sync may have brought older
    // messages that changed (as updates) above seqs never loaded.
    const held = chat.timeline.messages();
    let oldest = chat.timeline.lastSeq + 1;
    for (let i = held.length - 1; i >= 0 && held[i]?.seq === oldest - 1; i--) oldest--;
    const { messages, hasMore } = await this.http.history(chatId, { before: oldest, limit });
    chat.timeline.addHistory(messages);
    return { messages: messages.map((m) => this.local(chat, m)), hasMore };
  }

  private local(chat: ChatState, m: Message): LocalMessage {
    return { ...m, state: m.seq <= chat.persistedSeq ? 'persisted' : 'accepted' };
  }

  // ---- changes (through the outbox) -----------------------------------------------------

  /** Sends a message: queued, retried until acked, once; resolves with the stored message. */
  send(chatId: string, body: string, options: { replyTo?: number; clientMsgId?: string } = {}): Change {
    return this.enqueue({
      kind: 'send',
      clientMsgId: options.clientMsgId ?? randomId(),
      chatId,
      body,
      ...(options.replyTo !== undefined ? { replyTo: options.replyTo } : {}),
      createdAt: new Date().toISOString(),
    });
  }
  edit(chatId: string, seq: number, body: string): Change {
    return this.enqueue({
      kind: 'edit',
      clientMsgId: randomId(),
      chatId,
      seq,
      body,
      createdAt: new Date().toISOString(),
    });
  }
  delete(chatId: string, seq: number): Change {
    return this.enqueue({ kind: 'delete', clientMsgId: randomId(), chatId, seq, createdAt: new Date().toISOString() });
  }
  react(chatId: string, seq: number, emoji: string, on = true): Change {
    return this.enqueue({
      kind: 'react',
      clientMsgId: randomId(),
      chatId,
      seq,
      emoji,
      on,
      createdAt: new Date().toISOString(),
    });
  }

  /** Tells the chat's other members you are typing (only while connected; never queued). */
  typing(chatId: string): boolean {
    return this.sendFrame({ type: 'typing', chatId });
  }

  /** Marks the chat read up to `seq` (over the socket when open, else HTTP). */
  async markRead(chatId: string, seq: number): Promise<void> {
    const chat = this.watch(chatId);
    const me = this.userValue?.id;
    if (me) chat.reads.set(me, Math.max(chat.reads.get(me) ?? 0, seq));
    chat.unreadCount = chat.timeline.messages().filter((m) => m.seq > seq && m.senderId !== me).length;
    if (!this.sendFrame({ type: 'read', chatId, seq })) await this.http.markRead(chatId, seq);
  }

  /** Waits until the outbox is empty (every change acked or refused). */
  async flushed(): Promise<void> {
    if (this.outbox.size === 0) return;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (this.outbox.size > 0) return;
        offAck();
        offFailed();
        resolve();
      };
      const offAck = this.on('ack', check);
      const offFailed = this.on('failed', check);
    });
  }

  private enqueue(item: OutboxItem): Change {
    this.watch(item.chatId);
    const accepted = new Promise<Message>((resolve, reject) => this.waiters.set(item.clientMsgId, { resolve, reject }));
    accepted.catch(() => undefined); // the app may ignore it; `failed` reports it too
    this.outbox.add(item);
    this.pump();
    return { clientMsgId: item.clientMsgId, accepted };
  }

  /** Sends each chat's next due change. */
  private pump(): void {
    if (this.stateValue !== 'open') return;
    const resendAfter = this.options.resendAfterMs ?? 10_000;
    for (const item of this.outbox.due(Date.now(), resendAfter)) this.sendFrame(this.itemFrame(item));
    if (this.resendTimer) clearTimeout(this.resendTimer);
    this.resendTimer = this.outbox.size ? setTimeout(() => this.pump(), resendAfter) : null;
  }

  private itemFrame(item: OutboxItem): ClientFrame {
    switch (item.kind) {
      case 'send':
        return {
          type: 'send',
          chatId: item.chatId,
          body: item.body,
          clientMsgId: item.clientMsgId,
          ...(item.replyTo !== undefined ? { replyTo: item.replyTo } : {}),
        };
      case 'edit':
        return { type: 'edit', chatId: item.chatId, seq: item.seq, body: item.body, clientMsgId: item.clientMsgId };
      case 'delete':
        return { type: 'delete', chatId: item.chatId, seq: item.seq, clientMsgId: item.clientMsgId };
      case 'react':
        return {
          type: 'react',
          chatId: item.chatId,
          seq: item.seq,
          emoji: item.emoji,
          on: item.on,
          clientMsgId: item.clientMsgId,
        };
    }
  }

  private settle(clientMsgId: string, message: Message): void {
    const item = this.outbox.remove(clientMsgId);
    if (!item) return;
    this.waiters.get(clientMsgId)?.resolve(message);
    this.waiters.delete(clientMsgId);
    this.emit('ack', { item, message });
    this.pump();
  }

  // ---- sync -----------------------------------------------------------------------------

  private sync(chatIds: string[]): void {
    const points: [string, SyncPoint][] = [];
    for (const id of chatIds) {
      const chat = this.chatsById.get(id);
      if (chat) points.push([id, { seq: chat.timeline.lastSeq, rev: chat.timeline.rev }]);
    }
    // The server's SYNC_MAX_CHATS defaults to 500: bigger sets go in several frames.
    for (let i = 0; i < points.length; i += 200) {
      const part = points.slice(i, i + 200);
      if (this.sendFrame({ type: 'sync', chats: Object.fromEntries(part) }))
        this.syncsInFlight.push(part.map(([id]) => id));
    }
  }

  /** Chats followed since the last sync frame: one frame for all of them (a sync costs frame budget). */
  private syncSoon(chatId: string): void {
    const first = this.newlyWatched.size === 0;
    this.newlyWatched.add(chatId);
    if (!first) return;
    queueMicrotask(() => {
      const ids = [...this.newlyWatched];
      this.newlyWatched.clear();
      if (this.stateValue === 'open') this.sync(ids);
    });
  }

  private syncing(chatId: string): boolean {
    return this.syncsInFlight.some((ids) => ids.includes(chatId));
  }

  // ---- incoming frames ------------------------------------------------------------------

  private receive(frame: ServerFrame): void {
    const drop = this.testSeam.drops.findIndex((match) => match(frame));
    if (drop >= 0) {
      this.testSeam.drops.splice(drop, 1);
      return;
    }
    this.emit('frame', frame);
    switch (frame.type) {
      case 'ready':
        this.userValue = frame.user;
        this.attempt = 0;
        this.gapRounds.clear();
        this.setState('open');
        this.emit('ready', frame.user);
        this.sync([...this.chatsById.keys()]);
        this.pump();
        return;
      case 'message':
        this.onMessage(frame.message, true);
        return;
      case 'message.updated':
        this.onMessage(frame.message, false);
        return;
      case 'ack': {
        const id = frame.clientMsgId;
        const item = id ? this.outbox.find(id) : undefined;
        if (item) this.onMessage(frame.message, false, true);
        if (id) this.settle(id, frame.message);
        return;
      }
      case 'synced':
        this.onSynced(frame.revs ?? {});
        return;
      case 'persisted': {
        const chat = this.chatsById.get(frame.chatId);
        if (chat && frame.seq > chat.persistedSeq) {
          const before = chat.persistedSeq;
          chat.persistedSeq = frame.seq;
          for (const m of chat.timeline.messages()) {
            if (m.seq > before && m.seq <= frame.seq) this.emit('updated', this.local(chat, m));
          }
        }
        this.emit('persisted', { chatId: frame.chatId, seq: frame.seq });
        return;
      }
      case 'typing': {
        const chat = this.chatsById.get(frame.chatId);
        chat?.typing.set(frame.userId, Date.now() + (this.options.typingTtlMs ?? 6_000));
        this.emit('typing', { chatId: frame.chatId, userId: frame.userId });
        return;
      }
      case 'read': {
        const chat = this.chatsById.get(frame.chatId);
        if (chat) chat.reads.set(frame.userId, Math.max(chat.reads.get(frame.userId) ?? 0, frame.seq));
        this.emit('read', { chatId: frame.chatId, userId: frame.userId, seq: frame.seq });
        return;
      }
      case 'presence': {
        const p: Presence = { userId: frame.userId, status: frame.status, lastSeenAt: frame.lastSeenAt };
        this.presenceByUser.set(p.userId, p);
        this.emit('presence', p);
        return;
      }
      case 'system':
        this.emit('system', { event: frame.event, data: frame.data });
        return;
      case 'error':
        this.onError(frame);
        return;
      case 'pong':
        return;
    }
  }

  /** `live`: a `message` frame of the live stream, whose gap means a lost frame. */
  private onMessage(message: Message, live: boolean, fromAck = false): void {
    let chat = this.chatsById.get(message.chatId);
    if (!chat) {
      // A chat first heard of now (just added to it): followed from this message.
      chat = this.watch(message.chatId, { seq: message.seq - 1 });
    }
    const me = this.userValue?.id;
    // A message of ours that arrives before its ack proves it accepted as well.
    if (
      live &&
      message.senderId === me &&
      message.clientMsgId &&
      this.outbox.find(message.clientMsgId)?.kind === 'send'
    )
      this.settle(message.clientMsgId, message);
    const result = chat.timeline.apply(message);
    for (const m of result.delivered) {
      if (m.senderId !== me && m.seq > (me ? (chat.reads.get(me) ?? 0) : 0)) chat.unreadCount++;
      chat.typing.delete(m.senderId);
      this.emit('message', this.local(chat, m));
    }
    for (const m of result.updated) this.emit('updated', this.local(chat, m));
    if (result.gap && live && !fromAck && !this.syncing(chat.chatId)) {
      this.emit('gap', { chatId: chat.chatId, expected: chat.timeline.lastSeq + 1, got: message.seq });
      this.sync([chat.chatId]);
    }
  }

  private onSynced(revs: Record<string, number>): void {
    // The sync this answers: the oldest in flight that names every chat of `revs` (a chat the
    // server refused is left out of them, with an error frame of its own).
    const named = Object.keys(revs);
    const index = this.syncsInFlight.findIndex((ids) => named.every((id) => ids.includes(id)));
    const ids = index >= 0 ? (this.syncsInFlight.splice(index, 1)[0] ?? named) : named;
    for (const [id, rev] of Object.entries(revs)) this.chatsById.get(id)?.timeline.synced(rev);
    const again: string[] = [];
    for (const id of ids) {
      const chat = this.chatsById.get(id);
      if (!chat?.timeline.hasGap || this.syncing(id)) {
        this.gapRounds.delete(id);
        continue;
      }
      const rounds = (this.gapRounds.get(id) ?? 0) + 1;
      if (rounds < GAP_SYNC_ROUNDS) {
        this.gapRounds.set(id, rounds);
        again.push(id);
        continue;
      }
      // The sync answered and the seqs are still missing: they were never issued (a Redis outage).
      this.gapRounds.delete(id);
      for (const m of chat.timeline.skipHoles()) this.emit('message', this.local(chat, m));
    }
    this.emit('synced', { chatIds: ids });
    if (again.length) this.sync(again);
  }

  private onError(frame: Extract<ServerFrame, { type: 'error' }>): void {
    const { clientMsgId } = frame;
    const error: ErrorBody = {
      code: frame.code,
      message: frame.message,
      ...(frame.retryAfterMs !== undefined ? { retryAfterMs: frame.retryAfterMs } : {}),
      ...(frame.chatId !== undefined ? { chatId: frame.chatId } : {}),
    };
    const item = clientMsgId ? this.outbox.find(clientMsgId) : undefined;
    if (item) {
      if (error.code === 'rate_limited' || error.code === 'unavailable') {
        const retry = error.retryAfterMs ?? 1000;
        const resendAfter = this.options.resendAfterMs ?? 10_000;
        this.outbox.deferUntil(item.clientMsgId, Date.now() + retry, resendAfter);
        if (this.resendTimer) clearTimeout(this.resendTimer);
        this.resendTimer = setTimeout(() => this.pump(), retry);
      } else {
        this.outbox.remove(item.clientMsgId);
        const waiter = this.waiters.get(item.clientMsgId);
        this.waiters.delete(item.clientMsgId);
        waiter?.reject(Object.assign(new Error(`${error.code}: ${error.message}`), { code: error.code }));
        this.emit('failed', { item, error });
        this.pump();
      }
    } else if (error.chatId && (error.code === 'forbidden' || error.code === 'not_found')) {
      this.unwatch(error.chatId); // no longer a member
    } else if (error.code === 'rate_limited' && !error.chatId && this.syncsInFlight.length) {
      // A sync refused for its cost: asked again later.
      const ids = this.syncsInFlight.shift() ?? [];
      setTimeout(() => this.sync(ids), error.retryAfterMs ?? 1000);
    }
    this.emit('error', error);
  }
}

/** A queued change: its clientMsgId, and the server's answer once acked. */
export interface Change {
  clientMsgId: string;
  accepted: Promise<Message>;
}
