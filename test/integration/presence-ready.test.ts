import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/http-client.js';
import { type SeamedApi, startSeamedApi } from '../helpers/seamed-api.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient } from '../helpers/ws-client.js';

/**
 * A client that has `ready` is online for everyone who may see it, at once: its connection is
 * recorded before the upgrade, not after `ready` is sent. Asked the moment `ready` arrives, by
 * the user and by a user sharing a chat: for many users at once, and with the user's presence
 * updates kept busy by the offline of their previous socket (its chat lookup held on the pool seam).
 */
const USERS = 40;

let env: TestEnv;
let app: SeamedApi;
let observer: TestUser;
let users: TestUser[];

beforeAll(async () => {
  env = await createTestEnv();
  app = await startSeamedApi(env);
  observer = await app.api.newUser('observer');
  users = await Promise.all(Array.from({ length: USERS }, (_, i) => app.api.newUser(`p${i}`)));
  for (const u of users) await app.api.newChat(observer, [u]);
});
afterAll(async () => {
  await app?.stop();
  await env?.cleanup();
});

const statusOf = async (asker: TestUser, userId: string) => {
  const r = await app.api.request('GET', `/api/users/${userId}/presence`, undefined, asker.token);
  expect(r.status).toBe(200);
  return r.body.status as string;
};

describe('presence right after ready', () => {
  it('is online for the user and for whoever shares a chat, the moment ready arrives', async () => {
    const seen = await Promise.all(
      users.map(async (u) => {
        const socket = await connectClient(app.url, u.token);
        const statuses = await Promise.all([statusOf(u, u.user.id), statusOf(observer, u.user.id)]);
        return { socket, statuses };
      }),
    );
    expect(seen.map((s) => s.statuses)).toEqual(users.map(() => ['online', 'online']));
    await Promise.all(seen.map((s) => s.socket.close()));
  });

  it('is online even while the offline of the previous socket is still being announced', async () => {
    for (const u of users.slice(0, 5)) {
      const first = await connectClient(app.url, u.token);
      // The offline announcement looks up the user's chats: hold that lookup back.
      let reached!: () => void;
      let release!: () => void;
      const held = new Promise<void>((r) => (reached = r));
      const released = new Promise<void>((r) => (release = r));
      app.hook(async (text, params) => {
        if (!text.includes('FROM chat_members WHERE user_id = $1') || params[0] !== u.user.id) return;
        app.hook(null);
        reached();
        await released;
      });
      await first.close();
      await held;

      try {
        const second = await connectClient(app.url, u.token);
        expect([await statusOf(u, u.user.id), await statusOf(observer, u.user.id)]).toEqual(['online', 'online']);
        await second.close();
      } finally {
        release();
      }
    }
  });
});
