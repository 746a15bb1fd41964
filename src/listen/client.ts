/**
 * The client side of one exchange as the proxy sees it, whatever the protocol: the request
 * a client made, and the response the proxy writes back. HTTP/1.1 implements both on
 * node:http's own objects (./http1.ts); a raw socket (an upgrade refused before any tunnel
 * exists) implements the response (./socket-response.ts). Nothing in proxy/ knows which
 * protocol it is writing to, so a new listener adds a protocol without touching retry,
 * hedging or resume.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';

/** What a client asked for. The request is also the readable stream of its body. */
export interface ClientRequest extends Readable {
  readonly method?: string | undefined;
  /** The request target, origin-form ("/path?query") once the preflight has checked it. */
  url?: string | undefined;
  /** Header fields by lower-case name. */
  readonly headers: IncomingHttpHeaders;
  /** Header fields as received: [name, value, name, value…]. */
  readonly rawHeaders: string[];
  readonly httpVersion: string;
  /** The whole body has been received. */
  readonly complete: boolean;
  /** HTTP/2 only: the stream, which knows whether a body follows the headers (no END_STREAM on them). */
  readonly stream?: { readonly endAfterHeaders: boolean };
}

/** What the response tells its owner; `item` is the owner's own object, so no closure is made per request. */
export interface ResponseEvents<T> {
  /** The client took what was buffered: body writes may go on. */
  drained(item: T): void;
  /** The response is over: written in full, cut, or the client went away. */
  closed(item: T): void;
}

/** Where the answer goes. */
export interface ClientResponse {
  /** The status sent (or about to be). */
  readonly statusCode: number;
  /** The status line and header fields have been handed over: only body, trailers or a cut may follow. */
  readonly headersSent: boolean;
  /** Every byte of the response was handed to the connection. */
  readonly writableFinished: boolean;
  /** The client went away, or the response was cut. */
  readonly destroyed: boolean;
  /** Registers the owner told about drains and the close (once per response). */
  watch<T>(item: T, events: ResponseEvents<T>): void;
  /** `100 Continue`: the client may send its body now. */
  sendContinue(): void;
  /**
   * An interim answer before the final one: `103 Early Hints` is relayed (browsers preload
   * from it); other 1xx, and every 1xx to an HTTP/1.0 client, are left out.
   */
  sendInterim(status: number, headers: readonly string[]): void;
  /**
   * The status and header fields ([name, value, …], hop-by-hop fields already removed). They
   * leave with the first body bytes when those follow in the same turn of the event loop, and
   * on their own otherwise — a client waiting for a slow first byte has the headers at once.
   * `whole`: the rest of the answer follows in this same call (a local reply), nothing to wait for.
   */
  sendHead(status: number, reason: string | undefined, headers: readonly string[], whole?: boolean): void;
  /** One body chunk; false when the client's buffer is full and the owner should wait for `drained`. */
  sendBody(chunk: Buffer): boolean;
  /** Ends the response: a last piece of body and the trailers, when there are any. */
  finish(body?: string | Buffer, trailers?: ReadonlyArray<[string, string]>): void;
  /**
   * Cuts the response so the client sees it incomplete (a short body, no final chunk, a
   * stream reset): the only honest signal left once the headers are out.
   */
  cut(): void;
  /** Closes the connection after this response (the gateway is draining, or a request body was left unread). */
  closeAfter(): void;
}

/** A response that can end in a tunnel: an HTTP/1.1 upgrade, or an HTTP/2 extended CONNECT (RFC 8441). */
export interface TunnelResponse extends ClientResponse {
  /**
   * Sends the answer that opens the tunnel (101 Switching Protocols; 200 on an HTTP/2 stream) and
   * hands the client's connection (or stream) over to it. The response counts as complete from here on.
   */
  handOver(status: number, headers: readonly string[]): Duplex;
}
