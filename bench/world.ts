import { createChats, registerUsers } from './accounts.js';
import { LoadClients } from './clients.js';
import type { LoadWorld } from './load.js';
import { placeClients } from './placement.js';

export interface WorldOptions {
  clients: number;
  chatSize: number;
  /** Every member of chat c on api c % apis, instead of client i on api i % apis (placement.ts). */
  chatAffinity?: boolean;
}

/**
 * Registers one user per client, puts them into chats of `chatSize` consecutive users, and opens
 * one WebSocket per user: client i on api i % apis, so a chat's members are spread over every
 * api, or with `chatAffinity` every member of chat c on api c % apis, so each api holds the
 * members of its own chats only.
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
  const apiOf = placeClients(chatOf, apiUrls.length, opts.chatAffinity ?? false);
  const clients = await LoadClients.open(
    apiUrls,
    users.map((u) => u.token),
    apiOf,
  );
  log(
    `${users.length} users in ${chats.length} chats connected to ${apiUrls.length} api(s)${opts.chatAffinity ? ' (each chat on one api)' : ''} in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  return {
    clients,
    chats,
    chatOf,
    apiOf,
    apis: apiUrls.length,
    nextIndex: 0,
    recent: users.map(() => []),
    reacted: users.map(() => new Set<number>()),
  };
}
