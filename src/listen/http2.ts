/**
 * HTTP/2 to clients, on a TLS listener (ALPN `h2`, with HTTP/1.1 beside it on the same port):
 * node:http2's compatibility response, speaking the proxy's client-side interface, so a stream
 * gets the retries, hedging, resume, explanations and access log of any request. What HTTP/2
 * forbids or does differently is handled here: no connection-specific fields in a head (RFC
 * 9113 §8.2.2), no reason phrase, a cut stream is reset (RST_STREAM) rather than closed short.
 * A stream the client stops taking (its flow-control window never reopens) is reset after the
 * send timeout, so it holds no upstream connection; an extended CONNECT (RFC 8441) ends in a
 * tunnel on the stream itself (`handOver`).
 */
import { constants, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { fieldsObject } from '../http/raw-headers.js';
import type { ResponseEvents, TunnelResponse } from './client.js';
import { flushLoneHead, onResponseClose, onResponseDrain } from './response-events.js';

/** Fields HTTP/2 does not carry (RFC 9113 §8.2.2); an HTTP/1.1 upstream may send them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Left out of the 200 that opens a WebSocket over HTTP/2: it has no key to accept (RFC 8441 §5). */
const TUNNEL_LEFT_OUT = new Set([...CONNECTION_SPECIFIC, 'sec-websocket-accept']);

export class Http2Response extends Http2ServerResponse implements TunnelResponse {
  owner: unknown = undefined;
  events: ResponseEvents<unknown> | undefined = undefined;
  /** Headers were given and no body byte has followed them yet. */
  headPending = false;
  /** Strict-Transport-Security for every answer, when the listener sends it. */
  hsts: string | undefined = undefined;
  /** How long a body write may wait for the client to take it before the stream is reset (0: forever). */
  sendTimeoutMs = 0;
  /** The stream became a tunnel: the response is complete, whatever flows on the stream after. */
  handedOver = false;
  private timing = false;

  watch<T>(item: T, events: ResponseEvents<T>): void {
    this.owner = item;
    this.events = events as ResponseEvents<unknown>;
    this.once('close', onResponseClose);
  }

  sendContinue(): void {
    this.writeContinue();
  }

  sendInterim(status: number, headers: readonly string[]): void {
    if (status !== 103 || this.headersSent) return;
    try {
      this.writeEarlyHints(fieldsObject(headers, CONNECTION_SPECIFIC));
    } catch {
      // Hints are an optimisation; a value Node will not send does not stop the answer.
    }
  }

  sendHead(status: number, _reason: string | undefined, headers: readonly string[], whole = false): void {
    const fields = fieldsObject(
      this.hsts === undefined ? headers : [...headers, 'strict-transport-security', this.hsts],
      CONNECTION_SPECIFIC,
    );
    if (whole) {
      // The rest follows in finish(): the head waits for it and leaves with end(), so an answer
      // without a body goes out as one HEADERS frame with END_STREAM (writeHead would send it
      // at once, open for trailers). A gRPC status must be sent so ("trailers-only"): gRPC
      // clients read one in a head only when the head ends the stream.
      this.statusCode = status;
      for (const name in fields) this.setHeader(name, fields[name]!);
      return;
    }
    this.writeHead(status, fields);
    // As over HTTP/1.1: a head whose body is slow to start leaves on its own, at once.
    this.headPending = true;
    // node:http2's typings leave flushHeaders out of the compatibility response; it has one.
    process.nextTick(flushLoneHead, this as unknown as Http2Response & { flushHeaders(): void });
  }

  sendBody(chunk: Buffer): boolean {
    this.headPending = false;
    if (this.write(chunk)) return true;
    this.once('drain', onBlockedDrain);
    if (this.sendTimeoutMs > 0) {
      // The stream's timer counts time with nothing sent; it is off while the answer flows.
      if (!this.timing) this.stream.on('timeout', onSendTimeout);
      this.timing = true;
      this.stream.setTimeout(this.sendTimeoutMs);
    }
    return false;
  }

  finish(body?: string | Buffer, trailers?: ReadonlyArray<[string, string]>): void {
    this.headPending = false;
    if (trailers !== undefined) this.addTrailers(Object.fromEntries(trailers));
    // An empty last piece is no piece: writing it would send a waiting head on its own, open.
    if (body === undefined || body.length === 0) this.end();
    else this.end(body);
  }

  cut(): void {
    this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  closeAfter(): void {
    // A stream ends on its own; the session is told to go away (GOAWAY) when the gateway drains.
  }

  /**
   * The upstream switched protocols: `:status 200` opens the tunnel (RFC 8441 §5), carrying the
   * upstream's choices (subprotocol, extensions) but no accept key, and the stream is the tunnel.
   */
  handOver(_status: number, headers: readonly string[]): Duplex {
    this.handedOver = true;
    this.removeListener('close', onResponseClose);
    this.writeHead(200, fieldsObject(headers, TUNNEL_LEFT_OUT));
    (this as unknown as { flushHeaders(): void }).flushHeaders();
    this.events?.closed(this.owner);
    return this.stream;
  }
}

function onBlockedDrain(this: Http2Response): void {
  this.stream.setTimeout(0);
  onResponseDrain.call(this);
}

/** The client took nothing for the send timeout: reset the stream, which ends the exchange upstream too. */
function onSendTimeout(this: ServerHttp2Stream): void {
  if (!this.destroyed && !this.closed) this.close(constants.NGHTTP2_CANCEL);
}

// node:http2's typings declare `destroyed`, but the compatibility response has none at run time
// (a property in the typings cannot be overridden by an accessor): the stream's is the one that tells.
Object.defineProperty(Http2Response.prototype, 'destroyed', {
  get(this: Http2Response): boolean {
    return this.stream.destroyed;
  },
});

// A response handed over to a tunnel counts as complete from then on, as an HTTP/1.1 101 does.
const nodeWritableFinished = Object.getOwnPropertyDescriptor(Http2ServerResponse.prototype, 'writableFinished')!.get!;
Object.defineProperty(Http2Response.prototype, 'writableFinished', {
  get(this: Http2Response): boolean {
    return this.handedOver || (nodeWritableFinished.call(this) as boolean);
  },
});
