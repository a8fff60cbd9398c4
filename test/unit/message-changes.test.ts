import { describe, expect, it } from 'vitest';
import { applyChange } from '../../src/domain/message-changes.js';
import { freshMessage, type Message } from '../../src/domain/types.js';

const NOW = '2030-01-02T03:04:05.000Z';
const msg = (over: Partial<Message> = {}): Message => ({
  id: 'm',
  chatId: 'c',
  seq: 3,
  senderId: 'alice',
  body: 'hello',
  clientMsgId: null,
  createdAt: '2030-01-01T00:00:00.000Z',
  ...freshMessage(),
  rev: 7,
  ...over,
});
const as = (actorId: string, chatCreatorId: string | null = 'carol') => ({ actorId, chatCreatorId, now: NOW });

describe('message changes', () => {
  it('lets only the sender edit, sets editedAt, and keeps the rev for the log to allocate', () => {
    expect(applyChange(msg(), { kind: 'edit', body: 'hi' }, as('alice'))).toEqual(msg({ body: 'hi', editedAt: NOW }));
    expect(() => applyChange(msg(), { kind: 'edit', body: 'hi' }, as('bob'))).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
    expect(() => applyChange(msg(), { kind: 'edit', body: 'hi' }, as('carol'))).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
    expect(applyChange(msg(), { kind: 'edit', body: 'hello' }, as('alice'))).toBeNull();
  });

  it("lets the sender or the chat's creator delete, into a tombstone that cannot be edited or reacted to", () => {
    const reacted = msg({ reactions: [{ emoji: '👍', count: 1, userIds: ['bob'] }] });
    const tomb = applyChange(reacted, { kind: 'delete' }, as('carol'));
    expect(tomb).toEqual(msg({ body: '', deletedAt: NOW, reactions: [] }));
    expect(applyChange(reacted, { kind: 'delete' }, as('alice'))).toMatchObject({ deletedAt: NOW });
    expect(() => applyChange(reacted, { kind: 'delete' }, as('bob'))).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
    expect(() => applyChange(reacted, { kind: 'delete' }, as('bob', null))).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
    expect(() => applyChange(tomb!, { kind: 'edit', body: 'x' }, as('alice'))).toThrow(
      expect.objectContaining({ code: 'conflict' }),
    );
    expect(() => applyChange(tomb!, { kind: 'react', emoji: '👍', on: true }, as('bob'))).toThrow(
      expect.objectContaining({ code: 'conflict' }),
    );
    // Deleting again changes nothing.
    expect(applyChange(tomb!, { kind: 'delete' }, as('alice'))).toBeNull();
  });

  it('keeps one reaction per user and emoji, in the order emojis were first used', () => {
    let m: Message = msg();
    const react = (who: string, emoji: string, on = true) => {
      const next = applyChange(m, { kind: 'react', emoji, on }, as(who));
      if (next) m = next;
      return next;
    };
    react('bob', '👍');
    react('carol', '🎉');
    react('alice', '👍');
    expect(react('bob', '👍')).toBeNull();
    expect(m.reactions).toEqual([
      { emoji: '👍', count: 2, userIds: ['bob', 'alice'] },
      { emoji: '🎉', count: 1, userIds: ['carol'] },
    ]);
    react('bob', '👍', false);
    expect(react('bob', '👍', false)).toBeNull();
    react('carol', '🎉', false);
    expect(m.reactions).toEqual([{ emoji: '👍', count: 1, userIds: ['alice'] }]);
  });
});
