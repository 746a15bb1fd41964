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
  return pino({ level: config.level, base: undefined }, pino.destination({ dest: 1, sync: false }));
}
