/**
 * HTTP/1.1's client side: node:http's own response object, speaking the proxy's client-side
 * interface (Http1Response), given to the listeners as their response class so no object is
 * added per request.
 */
import { ServerResponse } from 'node:http';
import type { ClientResponse, ResponseEvents } from './client.js';
import { flushLoneHead, onResponseClose, onResponseDrain } from './response-events.js';

/** node:http's response, speaking the proxy's client-side interface; no object is added per request. */
export class Http1Response extends ServerResponse implements ClientResponse {
  owner: unknown = undefined;
  events: ResponseEvents<unknown> | undefined = undefined;
  /** Headers were given and no body byte has followed them yet. */
  headPending = false;
  /** Strict-Transport-Security for every answer, when the listener sends it. */
  hsts: string | undefined = undefined;

  watch<T>(item: T, events: ResponseEvents<T>): void {
    this.owner = item;
    this.events = events as ResponseEvents<unknown>;
    this.once('close', onResponseClose);
  }

  sendContinue(): void {
    this.writeContinue();
  }

  sendInterim(status: number, headers: readonly string[]): void {
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client. 102 Processing is obsolete (RFC 4918).
    if (status !== 103 || this.req.httpVersionMinor === 0 || this.headersSent) return;
    const hints: Record<string, string | string[]> = {};
    const links: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      // Node takes Link values one by one: "<a>; rel=preload, <b>; …" becomes two.
      if (name === 'link') links.push(...headers[i + 1]!.split(LINK_SEPARATOR));
      else hints[name] = headers[i + 1]!;
    }
    hints.link = links;
    try {
      this.writeEarlyHints(hints);
    } catch {
      // Node refuses a Link value it cannot vouch for: the hints are an optimisation, the answer follows.
    }
  }

  sendHead(status: number, reason: string | undefined, headers: readonly string[], whole = false): void {
    this.writeHead(
      status,
      reason,
      (this.hsts === undefined ? headers : [...headers, 'strict-transport-security', this.hsts]) as string[],
    );
    if (whole) return;
    // node:http holds a head back until the first body write. Most answers bring their first
    // bytes in the same read as their headers, and then both leave in one write; an answer
    // whose body is slow to start (an event stream, a long poll) has its head sent alone.
    this.headPending = true;
    process.nextTick(flushLoneHead, this);
  }

  sendBody(chunk: Buffer): boolean {
    this.headPending = false;
    if (this.write(chunk)) return true;
    this.once('drain', onResponseDrain);
    return false;
  }

  finish(body?: string | Buffer, trailers?: ReadonlyArray<[string, string]>): void {
    this.headPending = false;
    if (trailers !== undefined) this.addTrailers(trailers as Array<[string, string]>);
    this.end(body);
  }

  cut(): void {
    this.destroy();
  }

  closeAfter(): void {
    this.shouldKeepAlive = false;
  }
}

/** The commas between Link values (a comma inside a value's <URI> or quoted parameter is rare enough to forgo). */
const LINK_SEPARATOR = /\s*,\s*(?=<)/;
