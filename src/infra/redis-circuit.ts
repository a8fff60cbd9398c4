import { errorText } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/client.js';

export interface RedisCircuitOptions {
  redis: RedisClient;
  logger: Logger;
  /** Interval of PING probes while the circuit is open, in ms. */
  probeMs: number;
  /** Consecutive command failures that open the circuit (a closed connection opens it at once). */
  failureThreshold: number;
  /** PostgreSQL-only mode: open for good and never probing, since there is no Redis to come back. */
  withoutRedis?: boolean;
}

/** A step run when Redis answers again, before normal mode resumes (re-seeding, cache drops). */
export type RecoveryStep = () => Promise<void>;

/**
 * The api's view of Redis: closed (normal mode) or open (degraded: PostgreSQL alone). It opens
 * at once when the command connection drops, or after a few failed commands; while open it
 * probes with PING, and closes only after every recovery step succeeded, so that normal mode
 * never resumes on counters that could reuse a seq.
 */
export class RedisCircuit {
  private open = false;
  /** When the circuit last opened (ms since the epoch). */
  private openedAt = 0;
  private failures = 0;
  private probing: NodeJS.Timeout | undefined;
  private recovering = false;
  private readonly steps: RecoveryStep[] = [];
  private readonly listeners: ((mode: 'normal' | 'degraded') => void)[] = [];
  private stopped = false;

  constructor(private readonly opts: RedisCircuitOptions) {
    if (opts.withoutRedis) {
      this.open = true;
      this.stopped = true;
      opts.logger.info('PostgreSQL-only mode: serving degraded, without Redis');
      return;
    }
    opts.redis.on('close', () => this.trip('connection closed'));
    opts.redis.on('end', () => this.trip('connection ended'));
    if (opts.redis.status !== 'ready' && opts.redis.status !== 'connecting' && opts.redis.status !== 'connect') {
      this.trip('not connected');
    }
  }

  /** True while Redis is considered unreachable (degraded mode). */
  get isOpen(): boolean {
    return this.open;
  }

  /** How long the circuit has been open, in ms (0 while closed). */
  get openForMs(): number {
    return this.open ? Date.now() - this.openedAt : 0;
  }

  get mode(): 'normal' | 'degraded' {
    return this.open ? 'degraded' : 'normal';
  }

  onRecovery(step: RecoveryStep): void {
    this.steps.push(step);
  }

  onModeChange(listener: (mode: 'normal' | 'degraded') => void): void {
    this.listeners.push(listener);
  }

  recordSuccess(): void {
    this.failures = 0;
  }

  /** A command failed because Redis could not be reached. */
  recordFailure(): void {
    if (++this.failures >= this.opts.failureThreshold) this.trip('commands failing');
  }

  /** Opens the circuit now (idempotent) and starts probing. */
  trip(reason: string): void {
    if (this.stopped) return;
    this.failures = 0;
    if (!this.open) {
      this.open = true;
      this.openedAt = Date.now();
      this.opts.logger.warn({ reason }, 'redis unreachable: degraded mode');
      this.listeners.forEach((l) => l('degraded'));
    }
    this.probing ??= setInterval(() => void this.probe(), this.opts.probeMs);
    this.probing.unref();
  }

  /**
   * While open: if the connection is back, recovers now (waiting for a probe already under way)
   * and resolves true once normal mode resumed. A send calls this first, so that an api never
   * keeps allocating seqs in PostgreSQL long after another api went back to Redis.
   */
  async recoverIfConnected(): Promise<boolean> {
    if (!this.open) return true;
    if (this.opts.redis.status !== 'ready') return false;
    await (this.inFlight ?? this.probe());
    return !this.open;
  }

  private inFlight: Promise<void> | undefined;

  private probe(): Promise<void> {
    if (this.recovering || this.stopped) return this.inFlight ?? Promise.resolve();
    this.inFlight = this.runProbe().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async runProbe(): Promise<void> {
    this.recovering = true;
    try {
      await this.opts.redis.ping();
      for (const step of this.steps) await step();
      clearInterval(this.probing);
      this.probing = undefined;
      this.open = false;
      this.opts.logger.info('redis reachable again: normal mode');
      this.listeners.forEach((l) => l('normal'));
    } catch (err) {
      this.opts.logger.debug({ err: errorText(err) }, 'redis probe failed');
    } finally {
      this.recovering = false;
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.probing);
  }
}
