/**
 * The gateway's logger: pino JSON lines into a batching LogSink, so a busy gateway never
 * waits on its log; human-readable (pino-pretty) when standard output is a terminal.
 */
import { pino, type Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { LogSink, type LineDestination } from './log-sink.js';

export type { Logger };

export interface GatewayLog {
  logger: Logger;
  /** Where JSON lines go; absent when lines are pretty-printed, which only pino may do. */
  lines: LineDestination | undefined;
  flush(): void;
}

export function createLog(config: GatewayConfig['log'], destination?: LineDestination): GatewayLog {
  const pretty =
    destination === undefined && (config.pretty === 'auto' ? process.stdout.isTTY === true : config.pretty);
  if (pretty) {
    const logger = pino({
      level: config.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } },
    });
    return { logger, lines: undefined, flush: () => logger.flush() };
  }
  const lines = destination ?? new LogSink(1);
  const logger = pino({ level: config.level, base: undefined }, lines as unknown as pino.DestinationStream);
  return {
    logger,
    lines,
    flush: () => {
      if (lines instanceof LogSink) lines.flushSync();
    },
  };
}

/** Wraps a logger supplied by an embedding program. */
export function externalLog(logger: Logger): GatewayLog {
  return { logger, lines: undefined, flush: () => logger.flush() };
}
