/**
 * Where log lines go: an in-memory batch written to a file descriptor in one asynchronous
 * write once 64 KiB have gathered, or FLUSH_MS after the first line of a quiet spell. A
 * busy gateway makes one write system call per few hundred requests, and never waits on
 * its log. If the descriptor cannot keep up (a stuck pipe), lines beyond MAX_BUFFERED are
 * dropped and counted rather than growing memory without bound.
 */
import { write, writeSync } from 'node:fs';

const BATCH_BYTES = 64 * 1024;
const MAX_BUFFERED = 16 * 1024 * 1024;
const FLUSH_MS = 100;

export interface LineDestination {
  write(line: string): unknown;
}

export class LogSink implements LineDestination {
  private parts: string[] = [];
  private size = 0;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  /** Lines dropped because the descriptor could not keep up. */
  dropped = 0;

  constructor(private readonly fd = 1) {}

  write(line: string): boolean {
    if (this.size > MAX_BUFFERED) {
      this.dropped++;
      return false;
    }
    this.parts.push(line);
    this.size += line.length;
    if (this.size >= BATCH_BYTES) this.flush();
    else
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, FLUSH_MS).unref();
    return true;
  }

  /** Starts writing what has gathered (unless a write is already under way; it will follow). */
  flush(): void {
    if (this.writing || this.size === 0) return;
    const data = this.parts.join('');
    this.parts = [];
    this.size = 0;
    this.writing = true;
    this.writeOut(data);
  }

  /** Writes everything still buffered, synchronously: for exit. */
  flushSync(): void {
    const data = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (data) {
      try {
        writeSync(this.fd, data);
      } catch {
        /* the descriptor is gone; nothing else to do at exit */
      }
    }
  }

  private writeOut(data: string): void {
    write(this.fd, data, null, 'utf8', (err, written) => {
      if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') {
        setTimeout(() => this.writeOut(data), 10).unref();
        return;
      }
      this.writing = false;
      if (!err && written < Buffer.byteLength(data)) {
        // A partial write: put the rest back at the front.
        const rest = Buffer.from(data).subarray(written).toString();
        this.parts.unshift(rest);
        this.size += rest.length;
      }
      if (this.size >= BATCH_BYTES) this.flush();
      else if (this.size > 0)
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, FLUSH_MS).unref();
    });
  }
}
