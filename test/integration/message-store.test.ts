import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshMessage } from '../../src/domain/types.js';
import type { Message } from '../../src/domain/types.js';
import { createMessageStore } from '../../src/stores/message-store.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

/** A chat with one member, straight in PostgreSQL. */
async function chat(): Promise<{ chatId: string; userId: string }> {
  const userId = randomUUID();
  const chatId = randomUUID();
  await env.pool.query(`INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, $2, $2, 'x')`, [
    userId,
    `u${userId.slice(0, 8)}`,
  ]);
  await env.pool.query(`INSERT INTO chats (id, created_by) VALUES ($1, $2)`, [chatId, userId]);
  return { chatId, userId };
}

const message = (chatId: string, senderId: string, seq: number, clientMsgId: string | null): Message => ({
  id: randomUUID(),
  chatId,
  senderId,
  seq,
  body: `body of ${clientMsgId ?? seq}`,
  clientMsgId,
  createdAt: new Date().toISOString(),
  ...freshMessage(),
  rev: seq,
});

const rows = async (chatId: string) =>
  (await env.pool.query('SELECT seq, client_msg_id FROM messages WHERE chat_id = $1 ORDER BY seq', [chatId])).rows;

describe('insertBatch', () => {
  it('skips rows it already holds, so a retried batch writes nothing twice', async () => {
    const { chatId, userId } = await chat();
    const batch = [message(chatId, userId, 1, 'a'), message(chatId, userId, 2, null)];
    expect(await createMessageStore(env.pool).insertBatch(batch)).toEqual({ inserted: 2, superseded: [] });
    expect(await createMessageStore(env.pool).insertBatch(batch)).toEqual({ inserted: 0, superseded: [] });
    expect(await rows(chatId)).toEqual([
      { seq: 1, client_msg_id: 'a' },
      { seq: 2, client_msg_id: null },
    ]);
  });

  it('keeps a later retry of a forgotten clientMsgId (acked with its new seq), without the id', async () => {
    const { chatId, userId } = await chat();
    const store = createMessageStore(env.pool);
    await store.insertBatch([message(chatId, userId, 3, 'x')]);
    const retry = message(chatId, userId, 9, 'x');
    expect(await store.insertBatch([retry])).toEqual({ inserted: 1, superseded: [] });
    expect(await rows(chatId)).toEqual([
      { seq: 3, client_msg_id: 'x' },
      { seq: 9, client_msg_id: null },
    ]);
  });

  it('leaves out an unacked first attempt whose retry was stored, at a higher seq, while Redis was down', async () => {
    const { chatId, userId } = await chat();
    const store = createMessageStore(env.pool);
    // The retry, written straight to PostgreSQL in degraded mode, a gap above Redis's seqs.
    await store.insertBatch([message(chatId, userId, 100_075, 'y')]);
    const first = message(chatId, userId, 75, 'y');
    const other = message(chatId, userId, 76, 'z');
    expect(await store.insertBatch([first, other])).toEqual({ inserted: 1, superseded: [first] });
    expect(await rows(chatId)).toEqual([
      { seq: 76, client_msg_id: 'z' },
      { seq: 100_075, client_msg_id: 'y' },
    ]);
  });
});
