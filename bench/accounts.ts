import { randomBytes } from 'node:crypto';

/** A registered user the bench holds a session for. */
export interface BenchUser {
  id: string;
  token: string;
}

/** A chat of the load scenarios: its id and the indexes (into the users/clients) of its members. */
export interface BenchChat {
  id: string;
  members: number[];
}

const PASSWORD = 'bench-password-1';

async function post<T>(url: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** Runs `fn` over 0..n-1 with at most `limit` calls in flight; results in index order. */
export async function mapLimit<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
  return out;
}

/** Registers `n` users and logs each in (user i through api i % apis). */
export async function registerUsers(apiUrls: readonly string[], n: number): Promise<BenchUser[]> {
  const run = randomBytes(3).toString('hex');
  return mapLimit(n, 16, async (i) => {
    const api = apiUrls[i % apiUrls.length]!;
    const username = `b${run}_${i}`;
    await post(`${api}/api/users`, { username, password: PASSWORD });
    const session = await post<{ token: string; user: { id: string } }>(`${api}/api/sessions`, {
      username,
      password: PASSWORD,
    });
    return { id: session.user.id, token: session.token };
  });
}

/**
 * Puts the users into chats of `size` consecutive users (the last one may be smaller, but has at
 * least two members); each chat is created by its first member.
 */
export async function createChats(
  apiUrls: readonly string[],
  users: readonly BenchUser[],
  size: number,
): Promise<BenchChat[]> {
  const groups: number[][] = [];
  for (let i = 0; i < users.length; i += size)
    groups.push(Array.from({ length: Math.min(size, users.length - i) }, (_, k) => i + k));
  const last = groups.at(-1)!;
  if (groups.length > 1 && last.length < 2) groups[groups.length - 2]!.push(...groups.pop()!);
  return mapLimit(groups.length, 8, async (c) => {
    const members = groups[c]!;
    const owner = users[members[0]!]!;
    const { chat } = await post<{ chat: { id: string } }>(
      `${apiUrls[c % apiUrls.length]!}/api/chats`,
      { title: `bench ${c}`, memberIds: members.slice(1).map((m) => users[m]!.id) },
      owner.token,
    );
    return { id: chat.id, members };
  });
}
