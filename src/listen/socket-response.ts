/**
 * A response written straight to a socket, for the HTTP/1.1 exchanges node:http does not
 * carry itself: upgrade requests (refused locally, answered by the upstream without switching,
 * or switched into a tunnel) and requests too malformed to parse. Every answer closes the
 * connection, so its body needs no framing beyond the close.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ResponseEvents, TunnelResponse } from './client.js';

/** How long a client may hold a connection open after its answer was sent. */
const CLOSE_GRACE_MS = 5000;

export class SocketResponse implements TunnelResponse {
  statusCode = 0;
  headersSent = false;
  writableFinished = false;
  private owner: unknown = undefined;
  private events: ResponseEvents<unknown> | undefined = undefined;
  private reported = false;

  constructor(private readonly socket: Duplex) {
    socket.on('error', () => socket.destroy());
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  watch<T>(item: T, events: ResponseEvents<T>): void {
    this.owner = item;
    this.events = events as ResponseEvents<unknown>;
    this.socket.once('close', () => this.closed());
    this.socket.once('finish', () => {
      // The answer is out. A client that keeps its half of the connection open gets a moment
      // to read it, then the socket goes: nothing tracks an upgrade socket's idle time.
      this.writableFinished = true;
      this.closed();
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    });
  }

  sendContinue(): void {
    // An upgrade carries no body to wait for.
  }

  sendInterim(): void {
    // Interim answers to an upgrade are left out: the final one decides whether to switch.
  }

  sendHead(status: number, reason: string | undefined, headers: readonly string[]): void {
    this.socket.write(`${headLine(status, reason, headers)}connection: close\r\n\r\n`);
    this.statusCode = status;
    this.headersSent = true;
  }

  sendBody(chunk: Buffer): boolean {
    if (this.socket.write(chunk)) return true;
    this.socket.once('drain', () => this.events?.drained(this.owner));
    return false;
  }

  finish(body?: string | Buffer): void {
    if (!this.socket.writable) {
      this.socket.destroy();
      return;
    }
    this.socket.end(body);
  }

  cut(): void {
    this.socket.destroy();
  }

  closeAfter(): void {
    // Every answer here closes the connection.
  }

  handOver(status: number, headers: readonly string[]): Duplex {
    this.socket.write(`${headLine(status, undefined, headers)}\r\n`);
    this.statusCode = status;
    this.headersSent = true;
    this.writableFinished = true;
    this.closed();
    return this.socket;
  }

  /** Tells the owner once: the response is over. */
  private closed(): void {
    if (this.reported) return;
    this.reported = true;
    this.events?.closed(this.owner);
  }
}

function headLine(status: number, reason: string | undefined, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return head;
}
