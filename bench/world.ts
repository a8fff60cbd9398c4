import { createChats, registerUsers } from './accounts.js';
import { LoadClients } from './clients.js';
import type { LoadWorld } from './load.js';

export interface WorldOptions {
  clients: number;
  chatSize: number;
}

/**
 * Registers one user per client, puts them into chats of `chatSize`, and opens one WebSocket per
 * user (client i on api i % apis, so a chat's members are spread over every api).
 */
export async function openWorld(
  apiUrls: readonly string[],
  opts: WorldOptions,
  log: (line: string) => void,
): Promise<LoadWorld> {
  const t = performance.now();
  const users = await registerUsers(apiUrls, opts.clients);
  const chats = await createChats(apiUrls, users, opts.chatSize);
  const chatOf = new Int32Array(users.length);
  chats.forEach((chat, c) => chat.members.forEach((m) => (chatOf[m] = c)));
  const clients = await LoadClients.open(
    apiUrls,
    users.map((u) => u.token),
  );
  log(
    `${users.length} users in ${chats.length} chats connected to ${apiUrls.length} api(s) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  return {
    clients,
    chats,
    chatOf,
    nextIndex: 0,
    recent: users.map(() => []),
    reacted: users.map(() => new Set<number>()),
  };
}
