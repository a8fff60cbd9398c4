/**
 * Where the load clients connect, and what each api process should then receive from Redis.
 * Pure: the world (world.ts) places the clients, the measurement (scale.ts) checks the inbound
 * traffic against the chats each api holds.
 */

/**
 * The api (index into the api URLs) each client connects to. Spread (the default): client i on
 * api i % apis, so the consecutive members of a chat land on every api (a chat of 10 on 3 apis
 * has members on all three). With `affinity`: every member of chat c on api c % apis, so each
 * api holds the members of its own chats only.
 */
export function placeClients(chatOf: ArrayLike<number>, apis: number, affinity: boolean): Int32Array {
  if (!Number.isInteger(apis) || apis < 1)
    throw new Error(`placeClients: apis must be a whole number >= 1, not ${apis}`);
  const apiOf = new Int32Array(chatOf.length);
  for (let i = 0; i < chatOf.length; i++) apiOf[i] = (affinity ? chatOf[i]! : i) % apis;
  return apiOf;
}

/** Per api: the chats (indexes, ascending) with at least one member connected to it. */
export function chatsHeld(chatOf: ArrayLike<number>, apiOf: ArrayLike<number>, apis: number): number[][] {
  const held = Array.from({ length: apis }, () => new Set<number>());
  for (let i = 0; i < chatOf.length; i++) held[apiOf[i]!]!.add(chatOf[i]!);
  return held.map((s) => [...s].sort((a, b) => a - b));
}

/**
 * Per api: the chat messages it should receive from Redis when fan-out goes only where the
 * members are, the sum of `perChat` (messages per chat) over the chats it holds. With one
 * global channel every api would receive the sum over every chat instead.
 */
export function expectedPerApi(held: readonly (readonly number[])[], perChat: ArrayLike<number>): number[] {
  return held.map((chats) => chats.reduce((n, c) => n + (perChat[c] ?? 0), 0));
}
