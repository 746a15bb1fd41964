/**
 * Process signals for a running gateway: SIGTERM and SIGINT drain and stop (a second one
 * exits at once); SIGHUP reloads the configuration file (the gateway logs and refuses an
 * invalid one, keeping the configuration it runs) — or, for a program run from a terminal
 * like the demo, means what it means to any such program: the terminal closed, stop.
 */
import type { Gateway } from '../gateway.js';

export interface SignalOptions {
  /** What SIGHUP does: reload the configuration file (a daemon's custom, the default) or stop. */
  hangUp?: 'reload' | 'stop';
}

/** Serves until SIGTERM/SIGINT (graceful drain; a second signal exits at once). */
export function runUntilSignalled(gateway: Gateway, options: SignalOptions = {}): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        gateway.logger.warn({ signal }, 'second signal: exiting now');
        gateway.flushLog();
        process.exit(1);
      }
      stopping = true;
      gateway.logger.info({ signal }, 'draining');
      void gateway.close().then(() => {
        process.off('SIGHUP', onHup);
        resolve(0);
      });
    };
    const onHup =
      options.hangUp === 'stop'
        ? (): void => stop('SIGHUP')
        : (): void => {
            gateway.reload().catch(refused);
          };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', onHup);
  });
}

/** A refused reload was logged by the gateway with its problems; nothing more to do here. */
export function refused(): void {}
