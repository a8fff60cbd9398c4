import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/domain/types.js';
import {
  createdAtMsOf,
  decodeMessage,
  encodeMessage,
  fillTemplate,
  messageTemplate,
  seqOf,
} from '../../src/message-log/encoding.js';

const message = (over: Partial<Message> = {}): Message => ({
  id: '0b6f1a52-8f0e-4a57-9a4c-2d1c8e1f7a10',
  chatId: '9f1d2c3b-0000-4000-8000-000000000000',
  seq: 42,
  senderId: '1a2b3c4d-0000-4000-8000-000000000001',
  body: 'hello',
  clientMsgId: 'c-1',
  createdAt: '2030-05-06T07:08:09.010Z',
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
      fc.property(tricky, fc.option(tricky.filter((s) => s.length > 0)), fc.nat(), (body, clientMsgId, seq) => {
        const m = message({ body, clientMsgId, seq });
        const json = encodeMessage(m);
        expect(decodeMessage(json)).toEqual(m);
        // The append template (every field but the seq) joined with the seq is byte for byte the same encoding.
        const { id, chatId, senderId, createdAt } = m;
        const template = messageTemplate({ id, chatId, senderId, body: m.body, clientMsgId: m.clientMsgId, createdAt });
        expect(fillTemplate(template, seq)).toBe(json);
        expect(Object.keys(JSON.parse(json))).toEqual([
          'id',
          'chatId',
          'seq',
          'senderId',
          'body',
          'clientMsgId',
          'createdAt',
        ]);
      }),
    );
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
    expect(() => seqOf('{"id":"x"}')).toThrow();
  });
});
