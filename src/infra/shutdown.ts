import type { Logger } from '../logger.js';

/** Stops on SIGTERM/SIGINT, forcing an exit if a clean stop takes longer than `graceMs`. */
export function onShutdownSignal(logger: Logger, stop: () => Promise<void>, graceMs = 9000): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('clean shutdown took too long, exiting');
      process.exit(1);
    }, graceMs).unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => handler('SIGTERM'));
  process.once('SIGINT', () => handler('SIGINT'));
}
