import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { WS_FRAMES_SCHEMA_FILE } from '../../scripts/ws-frame-schemas.js';
import * as answers from '../../src/domain/response-schemas.js';
import { serverFrame } from '../../src/domain/server-frames.js';
import type { Reply, TestUser } from '../helpers/http-client.js';
import { type InProcess, startInProcess } from '../helpers/in-process.js';
import { createTestEnv, type TestEnv } from '../helpers/test-env.js';
import { connectClient, type Frame, type TestSocket } from '../helpers/ws-client.js';

/**
 * What a real client receives in a representative session, held to the published contract: every
 * WebSocket frame against the server-frame schemas and docs/ws-frames.schema.json, every HTTP
 * answer against its zod schema and the schema /api/openapi.json gives for its route and status.
 * A parse must give back its input unchanged: a field the schemas do not name fails.
 */
const ADMIN_TOKEN = 'contract-admin-token-0123456789';
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const withUser = z.object({ user: answers.userSchema });
const withMessage = z.object({ message: answers.messageSchema });

let env: TestEnv;
let app: InProcess;
let ajv: Ajv2020;
let a: TestUser, b: TestUser;
let chatId: string;
const sockets: TestSocket[] = [];
/** Every HTTP answer of the session with the route and status it came from. */
const replies: { method: string; template: string; reply: Reply<unknown>; schema: z.ZodType | null }[] = [];

beforeAll(async () => {
  env = await createTestEnv({ ADMIN_TOKEN });
  app = await startInProcess(env, { workers: false });
  const doc = (await app.api.request('GET', '/api/openapi.json')).body as Record<string, unknown>;
  ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  ajv.addSchema(JSON.parse(await readFile(WS_FRAMES_SCHEMA_FILE, 'utf8')) as Record<string, unknown>, 'ws');
  ajv.addSchema(doc, 'openapi');
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await app?.stop();
  await env?.cleanup();
});

/** One HTTP call of the session, recorded for the checks. */
async function call<T = { user: { username: string } }>(
  method: string,
  template: string,
  params: Record<string, string>,
  body?: unknown,
  user?: TestUser,
  schema: z.ZodType | null = null,
) {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? '');
  const reply = await app.api.request<T>(method, path, body, user?.token);
  replies.push({ method, template, reply, schema });
  return reply;
}

/** The OpenAPI document's schema of this answer (a JSON pointer into the served document). */
function documentedSchema(method: string, template: string, status: number): ValidateFunction {
  const pointer = [
    'paths',
    template,
    method.toLowerCase(),
    'responses',
    String(status),
    'content',
    'application/json',
    'schema',
  ]
    .map((segment) => encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1')))
    .join('/');
  const validate = ajv.getSchema(`openapi#/${pointer}`);
  if (!validate) throw new Error(`not documented: ${method} ${template} ${status}`);
  return validate;
}

describe('a representative session', () => {
  it('sends only frames and answers the contract documents', async () => {
    const register = (name: string) =>
      call(
        'POST',
        '/api/users',
        {},
        { username: `${name}_${randomUUID().slice(0, 8)}`, password: 'correct horse battery' },
        undefined,
        withUser,
      );
    const login = async (username: string) =>
      (
        await call<TestUser>(
          'POST',
          '/api/sessions',
          {},
          { username, password: 'correct horse battery' },
          undefined,
          withUser.extend({ token: z.string() }),
        )
      ).body;
    a = await login((await register('a')).body.user.username);
    b = await login((await register('b')).body.user.username);
    await call('GET', '/api/me', {}, undefined, a, withUser);

    const created = await call<{ chat: { id: string } }>(
      'POST',
      '/api/chats',
      {},
      { title: 'contract', memberIds: [] },
      a,
      z.object({ chat: answers.chatSchema }),
    );
    chatId = created.body.chat.id;
    expect((await call('POST', '/api/chats/{chatId}/members', { chatId }, { userId: b.user.id }, a)).status).toBe(201);

    const sa = await connectClient(app.url, a.token);
    sockets.push(sa);
    const sb = await connectClient(app.url, b.token);
    sockets.push(sb);
    await sa.next((f) => f.type === 'presence' && f.userId === b.user.id && f.status === 'online', 'b online');

    sa.send({ type: 'send', chatId, body: 'hello', clientMsgId: 'c-1' });
    await sa.next((f) => f.type === 'ack', 'ack');
    await sb.next((f) => f.type === 'message', 'message');
    await call(
      'POST',
      '/api/chats/{chatId}/messages',
      { chatId },
      { body: 'over http', clientMsgId: 'h-1' },
      b,
      withMessage,
    );
    await call('POST', '/api/chats/{chatId}/messages', { chatId }, { body: 'no key' }, b, withMessage);
    await sa.until((fs) => fs.filter((f) => f.type === 'message').length >= 3, 'three messages');

    sa.send({ type: 'typing', chatId });
    await sb.next((f) => f.type === 'typing', 'typing');
    sa.send({ type: 'read', chatId, seq: 2 });
    await sb.next((f) => f.type === 'read', 'read');
    // b sent 2 and 3, so b's position is 3 already: a reads them.
    await call('POST', '/api/chats/{chatId}/read', { chatId }, { seq: 3 }, a);
    await sb.next((f) => f.type === 'read' && f.seq === 3, 'read over http');

    sa.send({ type: 'ping', ref: 'r-1' });
    sa.send({ type: 'ping' });
    await sa.until((fs) => fs.filter((f) => f.type === 'pong').length === 2, 'two pongs');
    sa.send({ type: 'sync', chats: { [chatId]: 1, [randomUUID()]: 0 } });
    await sa.next((f) => f.type === 'synced', 'synced');
    sa.send({ type: 'send', chatId, body: '', clientMsgId: 'c-2' });
    sa.send('not json');
    sa.send({ type: 'nonsense' });
    await sa.until((fs) => fs.filter((f) => f.type === 'error').length >= 4, 'four errors');

    const broadcast = await app.api.request(
      'POST',
      '/api/admin/broadcast',
      { event: 'maintenance', data: { minutes: 5 } },
      ADMIN_TOKEN,
    );
    replies.push({ method: 'POST', template: '/api/admin/broadcast', reply: broadcast, schema: null });
    await sb.next((f) => f.type === 'system', 'system');

    await call('GET', '/api/chats', {}, undefined, a, answers.chatPageSchema);
    await call(
      'GET',
      '/api/chats/{chatId}',
      { chatId },
      undefined,
      a,
      z.object({ chat: answers.chatWithMembersSchema }),
    );
    await call('GET', '/api/chats/{chatId}/messages', { chatId }, undefined, b, answers.historyPageSchema);
    await call('GET', '/api/chats/{chatId}/messages', { chatId: randomUUID() }, undefined, b);
    await call('GET', '/api/users/{userId}/presence', { userId: b.user.id }, undefined, a, answers.presenceSchema);
    await call('POST', '/api/chats/{chatId}/messages', { chatId }, 'not json', b);
    await call('GET', '/api/me', {}, undefined, undefined);

    await sb.close();
    await sa.next((f) => f.type === 'presence' && f.userId === b.user.id && f.status === 'offline', 'b offline');
  });

  it('every frame a client received matches the server-frame schema and the published JSON Schema', () => {
    const frames: Frame[] = sockets.flatMap((s) => s.frames);
    const types = new Set(frames.map((f) => f.type));
    for (const type of ['ready', 'message', 'ack', 'error', 'typing', 'read', 'presence', 'system', 'pong', 'synced']) {
      expect(types, `a ${type} frame`).toContain(type);
    }
    const published = ajv.getSchema('ws#/$defs/ServerFrame');
    if (!published) throw new Error('ServerFrame missing from docs/ws-frames.schema.json');
    for (const frame of frames) {
      const parsed = serverFrame.safeParse(frame);
      expect(parsed.error?.issues ?? [], JSON.stringify(frame)).toEqual([]);
      expect(parsed.data, 'a field the schema does not name').toEqual(frame);
      expect(published(frame) ? [] : published.errors, JSON.stringify(frame)).toEqual([]);
    }
  });

  it('every HTTP answer matches the schema its route documents', () => {
    const statuses = new Set(replies.map((r) => r.reply.status));
    for (const status of [200, 201, 202, 204, 400, 401, 404]) expect(statuses, `a ${status} answer`).toContain(status);
    for (const { method, template, reply, schema } of replies) {
      const what = `${method} ${template} ${reply.status}: ${JSON.stringify(reply.body)}`;
      if (reply.status === 204) {
        expect(reply.body, what).toBeNull();
        continue;
      }
      const validate = documentedSchema(method, template, reply.status);
      expect(validate(reply.body) ? [] : validate.errors, what).toEqual([]);
      const own = reply.status >= 400 ? answers.errorBodySchema : schema;
      if (own) expect(own.parse(reply.body), `${what}: a field the schema does not name`).toEqual(reply.body);
    }
  });
});
