import { describe, expect, it } from 'vitest';
import { type ClientFrame, ParleyClient, type WebSocketLike } from '../../clients/js/src/index.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A scripted socket for what real api processes cannot be made to do on cue (a 4008 close): the
 * test plays the server. Everything else runs against real processes (test/e2e/sdk-client.test.ts).
 */
class ScriptedSocket implements WebSocketLike {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  sent: ClientFrame[] = [];
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    ScriptedSocket.all.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(code = 1000): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  serve(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

const user = { id: 'me', username: 'me', displayName: 'me', createdAt: new Date(0).toISOString() };
const message = (seq: number, rev: number) => ({
  id: `m${seq}`,
  chatId: 'c1',
  seq,
  senderId: 'other',
  body: `b${seq}`,
  clientMsgId: null,
  createdAt: new Date(0).toISOString(),
  replyTo: null,
  editedAt: null,
  deletedAt: null,
  reactions: [],
  rev,
});

describe('ParleyClient connection (scripted server)', () => {
  it('4008: reconnects at once (the next url), and syncs each chat from its last {seq, rev}', async () => {
    ScriptedSocket.all = [];
    const client = new ParleyClient({
      urls: ['http://a.test', 'http://b.test'],
      token: 'tok',
      WebSocket: ScriptedSocket,
      backoff: { baseMs: 10_000, maxMs: 10_000 },
      random: () => 0, // attempt 0 after a 4008: no wait
    });
    client.watch('c1');
    client.connect();
    await waitFor(() => ScriptedSocket.all[0], 'a socket');
    const first = ScriptedSocket.all[0]!;
    expect(first.url).toBe('ws://a.test/ws');
    expect(first.protocols).toEqual(['bearer.tok']);
    first.serve({ type: 'ready', user, connectionId: 'x' });
    expect(client.state).toBe('open');
    expect(first.sent).toEqual([{ type: 'sync', chats: { c1: { seq: 0, rev: 0 } } }]);
    first.serve({ type: 'message', message: message(1, 1) });
    first.serve({ type: 'message', message: message(2, 2) });
    first.serve({ type: 'synced', revs: { c1: 2 } });

    first.close(4008);
    expect(client.state).toBe('reconnecting');
    await waitFor(() => ScriptedSocket.all[1], 'the second socket');
    const second = ScriptedSocket.all[1]!;
    expect(second.url).toBe('ws://b.test/ws');
    second.serve({ type: 'ready', user, connectionId: 'y' });
    expect(second.sent).toEqual([{ type: 'sync', chats: { c1: { seq: 2, rev: 2 } } }]);
    // The sync replays one already seen: it is not news again.
    second.serve({ type: 'message', message: message(2, 2) });
    second.serve({ type: 'message', message: message(3, 3) });
    expect(client.messages('c1').map((m) => m.seq)).toEqual([1, 2, 3]);
    client.close();
    expect(client.state).toBe('closed');
  });

  it('the outbox: one change in flight per chat, resent on the next connection, settled by its ack', async () => {
    ScriptedSocket.all = [];
    const client = new ParleyClient({
      urls: ['http://a.test'],
      token: 'tok',
      WebSocket: ScriptedSocket,
      random: () => 0,
    });
    const one = client.send('c1', 'one', { clientMsgId: 'k1' });
    client.send('c1', 'two', { clientMsgId: 'k2' });
    client.connect();
    await waitFor(() => ScriptedSocket.all[0], 'a socket');
    const first = ScriptedSocket.all[0]!;
    first.serve({ type: 'ready', user, connectionId: 'x' });
    expect(first.sent.filter((f) => f.type === 'send').map((f) => f.clientMsgId)).toEqual(['k1']);
    first.close(1006); // no ack: lost with the link
    await waitFor(() => ScriptedSocket.all[1], 'the second socket');
    const second = ScriptedSocket.all[1]!;
    second.serve({ type: 'ready', user, connectionId: 'y' });
    expect(second.sent.filter((f) => f.type === 'send').map((f) => f.clientMsgId)).toEqual(['k1']);
    second.serve({
      type: 'ack',
      clientMsgId: 'k1',
      state: 'accepted',
      message: { ...message(1, 1), senderId: 'me', clientMsgId: 'k1' },
    });
    expect((await one.accepted).seq).toBe(1);
    expect(second.sent.filter((f) => f.type === 'send').map((f) => f.clientMsgId)).toEqual(['k1', 'k2']);
    expect(client.pending('c1').map((p) => p.clientMsgId)).toEqual(['k2']);
    client.close();
  });
});
