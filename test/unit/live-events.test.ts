import { describe, expect, it } from 'vitest';
import { chatEventPayload, parseChatEvent } from '../../src/domain/events.js';
import { systemFrame, typingFrame } from '../../src/domain/frames.js';
import { freshMessage } from '../../src/domain/types.js';
import type { Message } from '../../src/domain/types.js';
import { ownReadPositions } from '../../workers/persist-worker.js';

const msg = (chatId: string, senderId: string, seq: number): Message => ({
  id: `${chatId}-${seq}`,
  chatId,
  seq,
  senderId,
  body: 'x',
  clientMsgId: null,
  createdAt: '2030-01-01T00:00:00.000Z',
  ...freshMessage(),
  rev: seq,
});

describe('ownReadPositions', () => {
  it('keeps each sender’s newest message per chat, whatever the batch order', () => {
    const batch = [msg('c1', 'a', 3), msg('c1', 'b', 4), msg('c1', 'a', 7), msg('c2', 'a', 1), msg('c1', 'a', 5)];
    expect(
      ownReadPositions(batch).sort((x, y) => `${x.chatId}${x.userId}`.localeCompare(`${y.chatId}${y.userId}`)),
    ).toEqual([
      { chatId: 'c1', userId: 'a', seq: 7 },
      { chatId: 'c1', userId: 'b', seq: 4 },
      { chatId: 'c2', userId: 'a', seq: 1 },
    ]);
    expect(ownReadPositions([])).toEqual([]);
  });
});

describe('chat events on pub/sub', () => {
  it('round-trip chat, author and frame (the frame may hold spaces)', () => {
    const frame = '{"type":"x","text":"a b  c"}';
    expect(parseChatEvent(chatEventPayload('chat-1', 'user-1', frame))).toEqual({
      chatId: 'chat-1',
      userId: 'user-1',
      frame,
    });
  });

  it('refuse what is not a chat event', () => {
    for (const bad of ['', 'nospace', 'one space', ' lead x y', 'a  b']) expect(parseChatEvent(bad)).toBeNull();
  });

  it('build frames whose first key is the type (the backpressure check relies on it)', () => {
    expect(typingFrame('c', 'u')).toMatch(/^\{"type":"typing",/);
    expect(JSON.parse(typingFrame('c', 'u'))).toEqual({ type: 'typing', chatId: 'c', userId: 'u' });
    expect(JSON.parse(systemFrame({ event: 'e', data: undefined }))).toEqual({
      type: 'system',
      event: 'e',
      data: null,
    });
  });
});
