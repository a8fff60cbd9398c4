import { errorText } from '../domain/errors.js';
import type { Logger } from '../logger.js';

/**
 * Shutdown within docs/protocol.md's 10 s, whatever hangs: every step of a stop (close the sockets,
 * let the workers finish their batch, end the clients) waits at most its own cap and what is left
 * of one shared deadline, then the stop goes on without it. A process whose steps all settled
 * exits 0; one that had to leave a step behind says which and exits 1. Exiting by force remains,
 * for an event loop that no longer runs at all.
 */

/** The whole stop, from the signal to the last client ended. */
export const SHUTDOWN_BUDGET_MS = 9000;
/** The force exit, for when the budget could not be kept (a blocked event loop). */
const FORCE_EXIT_MS = 9500;
/** How long a stop waits for a startup under way (migrations, connections) before it gives up on it. */
const STARTUP_WAIT_MS = 3000;

/** The time one stop has left, and what it had to leave behind. */
export interface ShutdownBudget {
  /** Epoch ms by which every step must have settled. */
  readonly deadline: number;
  /** Steps that overran their cap or failed, in order (empty after a clean stop). */
  readonly problems: string[];
}

export function shutdownBudget(ms = SHUTDOWN_BUDGET_MS): ShutdownBudget {
  return { deadline: Date.now() + ms, problems: [] };
}

/**
 * Runs one step of a stop and waits for it at most `capMs`, or what is left of the budget when
 * that is less. A step that overruns is recorded, `onOverrun` releases what it can (a connection
 * disconnected instead of quit, say), and the stop goes on; the step's promise is left to settle
 * by itself. A step that fails is recorded the same way.
 */
export async function shutdownStep(
  budget: ShutdownBudget,
  logger: Logger,
  name: string,
  capMs: number,
  run: () => Promise<unknown>,
  onOverrun?: () => void,
): Promise<void> {
  const waitMs = Math.max(0, Math.min(capMs, budget.deadline - Date.now()));
  let timer: NodeJS.Timeout | undefined;
  const overran = new Promise<'overran'>((resolve) => (timer = setTimeout(() => resolve('overran'), waitMs)));
  const started = Date.now();
  try {
    const outcome = await Promise.race([run().then(() => 'done' as const), overran]);
    if (outcome === 'overran') {
      budget.problems.push(name);
      logger.warn({ step: name, waitedMs: Date.now() - started }, 'shutdown step overran; going on without it');
      onOverrun?.();
    }
  } catch (err) {
    budget.problems.push(name);
    logger.warn({ step: name, err: errorText(err) }, 'shutdown step failed');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stops on SIGTERM/SIGINT: `stop` runs its steps on one budget, then the process exits, 0 when
 * every step settled in time. A second signal while stopping changes nothing.
 */
export function onShutdownSignal(logger: Logger, stop: (budget: ShutdownBudget) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const budget = shutdownBudget();
    setTimeout(() => {
      logger.error({ problems: budget.problems }, 'shutdown did not finish in time, exiting');
      process.exit(1);
    }, FORCE_EXIT_MS).unref();
    stop(budget).then(
      () => {
        if (budget.problems.length > 0) logger.warn({ problems: budget.problems }, 'shut down, leaving steps behind');
        process.exit(budget.problems.length > 0 ? 1 : 0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a second signal must not fall back to the default action (an abrupt exit
  // in the middle of the clean one).
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}

/**
 * For a signal that arrives during startup: waits (within the budget) for what is still
 * starting, so that it can be stopped like the rest; undefined when it did not start in time
 * (or failed, which its starter reports).
 */
export async function whenStarted<T>(
  budget: ShutdownBudget,
  logger: Logger,
  name: string,
  starting: Promise<T>,
): Promise<T | undefined> {
  let value: T | undefined;
  await shutdownStep(budget, logger, `${name}: startup`, STARTUP_WAIT_MS, async () => {
    value = await starting;
  });
  return value;
}
