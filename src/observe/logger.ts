/**
 * The gateway's logger: pino JSON lines, written asynchronously so a busy gateway never
 * waits on its log; human-readable (pino-pretty) when standard output is a terminal.
 */
import { pino, type Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';

export type { Logger };

export function createLogger(config: GatewayConfig['log']): Logger {
  const pretty = config.pretty === 'auto' ? process.stdout.isTTY === true : config.pretty;
  if (pretty) {
    return pino({ level: config.level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Lines are gathered into writes of at least 4 KiB, so a busy gateway makes one write
  // system call per few dozen requests instead of one each; a timer flushes what a quiet
  // gateway has gathered, so no line waits longer than FLUSH_MS.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), FLUSH_MS).unref();
  return pino({ level: config.level, base: undefined }, destination);
}

const FLUSH_MS = 200;
