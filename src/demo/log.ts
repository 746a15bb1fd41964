/**
 * Where the demo's log goes: every line, as JSON, to a file (its path printed with the URLs),
 * so the terminal keeps the URLs in view instead of scrolling a dozen lines per request away;
 * warnings and errors — a refused reload, a host ejected — also reach the terminal, one short
 * line each.
 */
import { closeSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogSink, type LineDestination } from '../observe/log-sink.js';

export const DEMO_LOG = join(tmpdir(), 'gangway-demo.log');

const LEVELS: Record<number, string> = { 40: 'warning', 50: 'error', 60: 'fatal' };

export class DemoLog implements LineDestination {
  private readonly fd: number;
  private readonly file: LogSink;

  constructor(
    readonly path = DEMO_LOG,
    private readonly terminal: NodeJS.WritableStream = process.stderr,
  ) {
    this.fd = openSync(path, 'w');
    this.file = new LogSink(this.fd);
  }

  write(line: string): boolean {
    this.file.write(line);
    const level = Number(/^\{"level":(\d+)/.exec(line)?.[1] ?? 0);
    if (level >= 40) this.terminal.write(terminalLine(LEVELS[level] ?? 'warning', line));
    return true;
  }

  /** Writes what is buffered and closes the file. */
  close(): void {
    this.file.flushSync();
    closeSync(this.fd);
  }
}

/** "12:04:05 warning: host ejected (upstream music, host 127.0.0.1:7002)" from a JSON line. */
function terminalLine(level: string, line: string): string {
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${level}: ${line}`;
  }
  const { msg, level: _l, time, ...rest } = fields;
  const details = Object.entries(rest)
    .filter(([, v]) => v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
  const at = new Date(typeof time === 'number' ? time : Date.now()).toLocaleTimeString('en-GB');
  return `${at} ${level}: ${String(msg)}${details ? ` (${details})` : ''}\n`;
}
