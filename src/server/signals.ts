/**
 * Process signals for a running gateway: SIGTERM and SIGINT drain and stop (a second one
 * exits at once); SIGHUP reloads the configuration file, refusing an invalid one.
 */
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Gateway } from '../gateway.js';

/** Serves until SIGTERM/SIGINT (graceful drain; a second signal exits at once); SIGHUP reloads the file. */
export function runUntilSignalled(gateway: Gateway, file: string | undefined): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) { gateway.logger.warn({ signal }, 'second signal: exiting now'); gateway.flushLog(); process.exit(1); }
      stopping = true;
      gateway.logger.info({ signal }, 'draining');
      void gateway.close().then(() => resolve(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => { if (file !== undefined) reloadFromFile(gateway, file); });
  });
}

/** Reloads the configuration file; an invalid one is refused with its problems logged, and the running configuration stays. */
export function reloadFromFile(gateway: Gateway, file: string): void {
  try {
    void gateway.reload(loadConfigFile(file));
  } catch (err) {
    gateway.logger.error({ file, problems: err instanceof ConfigError ? err.problems : String(err) }, 'configuration refused; the running configuration stays');
  }
}

