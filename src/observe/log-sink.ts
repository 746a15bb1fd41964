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

  /**
   * `atomicBytes`: write at most this many bytes at once, cut at line ends. Worker processes
   * share one standard output; a pipe keeps a write of up to PIPE_BUF (4096 bytes on Linux)
   * whole, so lines from different workers never interleave mid-line.
   */
  constructor(
    private readonly fd = 1,
    private readonly atomicBytes = Number.POSITIVE_INFINITY,
  ) {}

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
    const data = this.take();
    this.writing = true;
    this.writeOut(data);
  }

  /** The lines to write next: all of them, or as many whole lines as fit in atomicBytes. */
  private take(): string {
    if (this.size <= this.atomicBytes) {
      const all = this.parts.join('');
      this.parts = [];
      this.size = 0;
      return all;
    }
    let n = 0;
    let bytes = 0;
    // A single line longer than the limit goes alone: better whole than cut.
    while (n < this.parts.length) {
      const line = Buffer.byteLength(this.parts[n]!);
      if (n > 0 && bytes + line > this.atomicBytes) break;
      bytes += line;
      n++;
    }
    const some = this.parts.splice(0, n).join('');
    this.size -= some.length;
    return some;
  }

  /** Writes everything still buffered, synchronously: for exit. */
  flushSync(): void {
    while (this.size > 0) {
      const data = this.take();
      try {
        writeSync(this.fd, data);
      } catch {
        /* the descriptor is gone; nothing else to do at exit */
        return;
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
      if (this.size >= BATCH_BYTES || this.size > this.atomicBytes) this.flush();
      else if (this.size > 0)
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, FLUSH_MS).unref();
    });
  }
}
