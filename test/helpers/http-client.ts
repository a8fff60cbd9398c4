import { randomBytes } from 'node:crypto';

/**
 * A JSON answer as a test reads it: whatever shape the server sent, which the test's own
 * expectations assert (a wrong guess fails them). The tests' one \`any\`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above: asserted by expect()
export type JsonBody = any;

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export interface TestUser {
  user: { id: string; username: string; displayName: string; createdAt: string };
  token: string;
}

/** A thin HTTP client for the contract's routes (real fetch against a real server). */
export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async request<T = JsonBody>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON (metrics, Bull Board): keep the text
    }
    return { status: res.status, body: parsed as T };
  }

  /** Registers a fresh user and logs in. */
  async newUser(name = 'u'): Promise<TestUser> {
    const username = `${name}_${randomBytes(4).toString('hex')}`;
    const password = 'correct horse battery';
    const reg = await this.request('POST', '/api/users', { username, password });
    if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
    const login = await this.request('POST', '/api/sessions', { username, password });
    if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
    return login.body as TestUser;
  }

  async newChat(owner: TestUser, members: TestUser[], title = 'chat'): Promise<{ id: string; lastSeq: number }> {
    const r = await this.request(
      'POST',
      '/api/chats',
      { title, memberIds: members.map((m) => m.user.id) },
      owner.token,
    );
    if (r.status !== 201) throw new Error(`create chat failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.chat;
  }

  send(token: string, chatId: string, body: string, clientMsgId?: string) {
    return this.request(
      'POST',
      `/api/chats/${chatId}/messages`,
      { body, ...(clientMsgId ? { clientMsgId } : {}) },
      token,
    );
  }

  history(token: string, chatId: string, query = '') {
    return this.request<{ messages: { seq: number; id: string; body: string }[]; hasMore: boolean }>(
      'GET',
      `/api/chats/${chatId}/messages${query ? `?${query}` : ''}`,
      undefined,
      token,
    );
  }
}
