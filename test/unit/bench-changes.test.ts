import { describe, expect, it } from 'vitest';
import { parseCli } from '../../bench/cli.js';
import { dispatch, type FrameSink, seqIn } from '../../bench/clients.js';

/** The bench's --changes option and the frames its clients tell apart for it. */
describe('bench --changes', () => {
  it('runs changes on Parley alone: the floor has no edit or react frames', () => {
    const opts = parseCli(['--scenario', 'small', '--changes', '0.1']);
    expect(opts).toMatchObject({ changes: 0.1, target: 'parley' });
    expect(parseCli(['--scenario', 'small'])).toMatchObject({ changes: 0, target: 'both' });
    expect(() => parseCli(['--changes', '0.1', '--target', 'both'])).toThrow(/without --changes/);
    expect(() => parseCli(['--changes', '0.1', '--target', 'floor'])).toThrow(/without --changes/);
    expect(() => parseCli(['--changes', '1.5'])).toThrow(/share from 0 to 1/);
    expect(() => parseCli(['--scenario', 'idle', '--changes', '0.1'])).toThrow(/idle/);
  });

  it("reads a send's seq from its ack and routes message.updated frames with the message's chat, seq and rev", () => {
    const ack = Buffer.from(
      '{"type":"ack","clientMsgId":"42","message":{"id":"m","chatId":"c","seq":1234,"senderId":"u","body":"x","clientMsgId":"42","replyTo":null,"rev":1300},"state":"accepted"}',
    );
    expect(seqIn(ack)).toBe(1234);
    const seen: unknown[] = [];
    const sink: FrameSink = {
      ack: (conn, g, _now, frame) => seen.push(['ack', conn, g, seqIn(frame)]),
      message: (conn, g) => seen.push(['message', conn, g]),
      updated: (conn, m) => seen.push(['updated', conn, m]),
      error: (conn, g, code) => seen.push(['error', conn, g, code]),
    };
    dispatch(ack, 3, sink, 0);
    dispatch(
      Buffer.from(
        '{"type":"message.updated","message":{"id":"m","chatId":"c","seq":7,"senderId":"u","body":"","clientMsgId":"9","rev":88,"deletedAt":null,"reactions":[]}}',
      ),
      4,
      sink,
      0,
    );
    dispatch(Buffer.from('{"type":"persisted","chatId":"c","seq":7}'), 4, sink, 0);
    dispatch(Buffer.from('{"type":"error","code":"conflict","message":"no","clientMsgId":"17"}'), 5, sink, 0);
    expect(seen).toEqual([
      ['ack', 3, 42, 1234],
      ['updated', 4, { chatId: 'c', seq: 7, rev: 88 }],
      ['error', 5, 17, 'conflict'],
    ]);
  });
});
