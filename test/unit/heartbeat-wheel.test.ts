import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { HeartbeatWheel } from '../../src/ws/heartbeat-wheel.js';

/** The three things the wheel uses of a socket: pong events, ping() and terminate(). */
class FakeSocket extends EventEmitter {
  pings = 0;
  terminated = false;
  ping(): void {
    this.pings++;
  }
  terminate(): void {
    this.terminated = true;
  }
  pong(): void {
    this.emit('pong');
  }
}

afterEach(() => vi.useRealTimers());

describe('HeartbeatWheel', () => {
  it('pings every socket once per period, spread over the ticks, and ends the ones that stopped answering', () => {
    vi.useFakeTimers();
    const wheel = new HeartbeatWheel(1000, 100);
    const sockets = Array.from({ length: 25 }, () => new FakeSocket());
    const stops = sockets.map((s) => wheel.add(s as unknown as WebSocket));

    // One tick pings one slot of ten: not every socket at once.
    vi.advanceTimersByTime(100);
    expect(sockets.filter((s) => s.pings === 1).length).toBe(3);
    vi.advanceTimersByTime(900);
    expect(sockets.every((s) => s.pings === 1)).toBe(true);

    // All but one answer; a removed socket is never pinged again.
    sockets.slice(1).forEach((s) => s.pong());
    stops[2]!();
    vi.advanceTimersByTime(1000);
    expect(sockets[0]!.terminated).toBe(true);
    expect(sockets[0]!.pings).toBe(1);
    expect(sockets[2]!.pings).toBe(1);
    expect(sockets.filter((s, i) => i > 2 && s.pings === 2 && !s.terminated).length).toBe(22);
    wheel.stop();
  });
});
