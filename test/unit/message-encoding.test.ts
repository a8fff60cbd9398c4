import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { freshMessage } from '../../src/domain/types.js';
import type { Message } from '../../src/domain/types.js';
import {
  changedPrefix,
  createdAtMsOf,
  decodeMessage,
  encodeMessage,
  fillTemplate,
  messageTemplate,
  revOf,
  seqOf,
  wireJson,
} from '../../src/message-log/encoding.js';

const message = (over: Partial<Message> = {}): Message => ({
  id: '0b6f1a52-8f0e-4a57-9a4c-2d1c8e1f7a10',
  chatId: '9f1d2c3b-0000-4000-8000-000000000000',
  seq: 42,
  senderId: '1a2b3c4d-0000-4000-8000-000000000001',
  body: 'hello',
  clientMsgId: 'c-1',
  createdAt: '2030-05-06T07:08:09.010Z',
  ...freshMessage(),
  rev: 7,
  ...over,
});

/** Text that looks like the fields the decoders look for. */
const tricky = fc.oneof(
  fc.string(),
  fc.constantFrom(
    '"seq":7',
    '\\"seq\\":8',
    '"createdAt":"1999-01-01T00:00:00.000Z"}',
    '","seq":9,"x":"',
    '\\',
    '"',
    '\u2028',
  ),
);

describe('message encoding', () => {
  it('is JSON of the message, with the same fields in one order, whichever way it is built', () => {
    fc.assert(
      fc.property(
        tricky,
        fc.option(tricky.filter((s) => s.length > 0)),
        fc.nat(),
        fc.nat(),
        (body, clientMsgId, seq, rev) => {
          const m = message({ body, clientMsgId, seq, rev });
          const json = encodeMessage(m);
          expect(decodeMessage(json)).toEqual(m);
          // The append template joined with the seq and rev is byte for byte the same encoding,
          // and so is a change's prefix ended with its rev.
          const { id, chatId, senderId, createdAt, replyTo, editedAt, deletedAt, reactions } = m;
          const rest = { id, chatId, senderId, body: m.body, clientMsgId: m.clientMsgId, createdAt };
          const template = messageTemplate({ ...rest, replyTo, editedAt, deletedAt, reactions });
          expect(fillTemplate(template, seq, rev)).toBe(json);
          expect(`${changedPrefix(m)}${rev}}`).toBe(json);
          expect(revOf(json)).toBe(rev);
          expect(Object.keys(JSON.parse(json))).toEqual([
            'id',
            'chatId',
            'seq',
            'senderId',
            'body',
            'clientMsgId',
            'createdAt',
            'replyTo',
            'editedAt',
            'deletedAt',
            'reactions',
            'rev',
          ]);
        },
      ),
    );
  });

  it('reads a message stored before messages had a lifecycle, with its defaults', () => {
    const old =
      '{"id":"i","chatId":"c","seq":4,"senderId":"s","body":"b","clientMsgId":null,"createdAt":"2030-01-01T00:00:00.000Z"}';
    expect(decodeMessage(old)).toMatchObject({
      seq: 4,
      replyTo: null,
      editedAt: null,
      deletedAt: null,
      reactions: [],
      rev: 0,
    });
  });

  it('shows at most 20 reactors of an emoji on the wire, and keeps the same bytes when it can', () => {
    const few = encodeMessage(message({ reactions: [{ emoji: '👍', count: 2, userIds: ['a', 'b'] }] }));
    expect(wireJson(few)).toBe(few);
    const ids = Array.from({ length: 25 }, (_, i) => `u${i}`);
    const many = encodeMessage(message({ reactions: [{ emoji: '🎉', count: 25, userIds: ids }] }));
    const wire = decodeMessage(wireJson(many));
    expect(wire.reactions).toEqual([{ emoji: '🎉', count: 25, userIds: ids.slice(0, 20) }]);
  });

  it('reads the seq and createdAt of the message, never a look-alike inside the body', () => {
    fc.assert(
      fc.property(tricky, fc.nat(), (body, seq) => {
        const json = encodeMessage(message({ body, seq }));
        expect(seqOf(json)).toBe(seq);
        expect(createdAtMsOf(json)).toBe(Date.parse('2030-05-06T07:08:09.010Z'));
      }),
    );
    expect(createdAtMsOf('{"seq":1}')).toBeNaN();
    // A body ending like a rev field does not end the object.
    expect(revOf(encodeMessage(message({ body: '"rev":99}', rev: 3 })))).toBe(3);
    expect(() => seqOf('{"id":"x"}')).toThrow();
  });
});
