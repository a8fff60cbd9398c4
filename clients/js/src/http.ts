import type { Chat, ChatListItem, ChatWithMembers, ErrorBody, Message, Presence, User } from './types.js';

/** The part of `fetch`'s answer the SDK reads (the global fetch of browsers and Node 20 fits). */
export interface FetchResponseLike {
  status: number;
  ok: boolean;
  text(): Promise<string>;
}
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<FetchResponseLike>;

/** An HTTP answer other than 2xx, with the contract's `{error: {code, message}}`. */
export class ParleyHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: ErrorBody | null,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'ParleyHttpError';
  }
}

export interface HttpOptions {
  /** Base URLs of api processes (http(s)://host:port); a failed request moves on to the next one. */
  baseUrls: () => readonly string[];
  token: () => string | null;
  fetch?: FetchLike;
}

const enc = encodeURIComponent;

/** Typed methods for every HTTP route of the contract. */
export class ParleyHttp {
  private preferred = 0;
  constructor(private readonly options: HttpOptions) {}

  /** Index of the base URL that answered last; the connection prefers the same. */
  get preferredIndex(): number {
    return this.preferred;
  }

  async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const doFetch = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!doFetch) throw new Error('no fetch: pass one in the options');
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const token = this.options.token();
    if (auth && token) headers.authorization = `Bearer ${token}`;
    const urls = this.options.baseUrls();
    let lastError: unknown;
    for (let i = 0; i < urls.length; i++) {
      const index = (this.preferred + i) % urls.length;
      let res: FetchResponseLike;
      try {
        res = await doFetch(`${(urls[index] ?? '').replace(/\/$/, '')}${path}`, {
          method,
          headers,
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        lastError = err; // unreachable: try the next process
        continue;
      }
      this.preferred = index;
      const text = await res.text();
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      if (!res.ok) {
        const error = (parsed as { error?: ErrorBody } | undefined)?.error ?? null;
        throw new ParleyHttpError(res.status, error?.code ?? 'http_error', error?.message ?? text, error);
      }
      return parsed as T;
    }
    throw lastError instanceof Error ? lastError : new Error('no api reachable');
  }

  register(body: { username: string; password: string; displayName?: string }): Promise<{ user: User }> {
    return this.request('POST', '/api/users', body, false);
  }
  login(body: { username: string; password: string }): Promise<{ token: string; user: User }> {
    return this.request('POST', '/api/sessions', body, false);
  }
  /** Ends this session (its sockets close with 4001). */
  async logout(): Promise<void> {
    await this.request('DELETE', '/api/sessions/current');
  }
  /** Ends every session of the user. */
  async logoutEverywhere(): Promise<void> {
    await this.request('DELETE', '/api/sessions');
  }
  me(): Promise<{ user: User }> {
    return this.request('GET', '/api/me');
  }
  /** The user of a username (matched case-insensitively); a 404 `not_found` when there is none. */
  findUser(username: string): Promise<{ user: User }> {
    return this.request('GET', `/api/users?username=${enc(username)}`);
  }
  listChats(
    query: { limit?: number; cursor?: string } = {},
  ): Promise<{ chats: ChatListItem[]; nextCursor: string | null }> {
    const q = new URLSearchParams();
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    if (query.cursor) q.set('cursor', query.cursor);
    const s = q.toString();
    return this.request('GET', `/api/chats${s ? `?${s}` : ''}`);
  }
  createChat(body: { title?: string; memberIds: string[] }): Promise<{ chat: Chat }> {
    return this.request('POST', '/api/chats', body);
  }
  getChat(chatId: string): Promise<{ chat: ChatWithMembers }> {
    return this.request('GET', `/api/chats/${enc(chatId)}`);
  }
  async addMember(chatId: string, userId: string): Promise<void> {
    await this.request('POST', `/api/chats/${enc(chatId)}/members`, { userId });
  }
  async removeMember(chatId: string, userId: string): Promise<void> {
    await this.request('DELETE', `/api/chats/${enc(chatId)}/members/${enc(userId)}`);
  }
  sendMessage(
    chatId: string,
    body: { body: string; clientMsgId?: string; replyTo?: number },
  ): Promise<{ message: Message }> {
    return this.request('POST', `/api/chats/${enc(chatId)}/messages`, body);
  }
  history(
    chatId: string,
    query: { before?: number; after?: number; limit?: number } = {},
  ): Promise<{ messages: Message[]; hasMore: boolean }> {
    const q = new URLSearchParams();
    if (query.before !== undefined) q.set('before', String(query.before));
    if (query.after !== undefined) q.set('after', String(query.after));
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    const s = q.toString();
    return this.request('GET', `/api/chats/${enc(chatId)}/messages${s ? `?${s}` : ''}`);
  }
  editMessage(chatId: string, seq: number, body: string): Promise<{ message: Message }> {
    return this.request('PATCH', `/api/chats/${enc(chatId)}/messages/${seq}`, { body });
  }
  async deleteMessage(chatId: string, seq: number): Promise<void> {
    await this.request('DELETE', `/api/chats/${enc(chatId)}/messages/${seq}`);
  }
  async react(chatId: string, seq: number, emoji: string, on = true): Promise<void> {
    await this.request(on ? 'PUT' : 'DELETE', `/api/chats/${enc(chatId)}/messages/${seq}/reactions/${enc(emoji)}`);
  }
  async markRead(chatId: string, seq: number): Promise<void> {
    await this.request('POST', `/api/chats/${enc(chatId)}/read`, { seq });
  }
  presence(userId: string): Promise<Presence> {
    return this.request('GET', `/api/users/${enc(userId)}/presence`);
  }
}
