/**
 * The request body, before and on its way upstream. A body that fits the route's request
 * buffer (and the gateway-wide budget for buffered bodies) is read into memory before the
 * request may go upstream: a client that sends slowly then costs only its own connection — no
 * concurrency slot, no upstream connection, no time counted against a host — and a retry can
 * send the body again. A body that does not fit streams as it arrives. Either way, a body
 * whose bytes stop coming for the idle timeout ends in 408, and one over the route's limit
 * in 413: the client's faults, never a host's.
 */
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { GatewayAbort } from '../faults/classify.js';
import type { ClientRequest } from '../listen/client.js';
import type { RequestContext } from './context.js';
import { replyLocally } from './local-reply.js';
import { bodyBytesRelayed } from './read-buffers.js';

/** The body's declared length: a number, or undefined when it is chunked (unknown) or absent. */
export function declaredLength(req: ClientRequest): number | undefined {
  const length = req.headers['content-length'];
  return length === undefined || req.headers['transfer-encoding'] !== undefined ? undefined : Number(length);
}

/** Whether the request carries a body at all. */
export function hasBody(req: ClientRequest): boolean {
  // HTTP/2 frames a body without Content-Length: the stream says whether data follows the headers.
  if (req.stream !== undefined) return !req.stream.endAfterHeaders;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/** Bytes of request bodies held in memory across the gateway, against a ceiling. */
export class BodyBudget {
  used = 0;
  constructor(readonly total: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.total) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

export interface BodySettings {
  /** Largest body accepted (413 beyond it). */
  limit: number;
  /** Bodies up to this size are read whole before the request goes upstream. */
  bufferUpTo: number;
  /** Longest pause between two pieces of a body (408 beyond it). */
  idleMs: number;
  budget: BodyBudget;
}

/**
 * Reads the request's body — whole when it fits, else the start of it — and calls `then` with
 * the context, `ctx.body` set to a Buffer (whole) or a stream (the rest streams). When the
 * body is refused (too slow, too large) the client has its answer and `then` is not called.
 */
export function readBody(ctx: RequestContext, settings: BodySettings, then: (ctx: RequestContext) => void): void {
  new BodyReader(ctx, settings, then).start();
}

class BodyReader {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly ctx: RequestContext,
    private readonly settings: BodySettings,
    private readonly then: (ctx: RequestContext) => void,
  ) {}

  start(): void {
    const { req } = this.ctx;
    const declared = declaredLength(req);
    // Nothing to keep: streams at once, so a client that waits for an answer before it sends
    // (a gRPC call streaming both ways) is not held up for a first byte.
    if (this.settings.bufferUpTo === 0 || (declared !== undefined && declared > this.settings.bufferUpTo))
      return this.stream();
    this.timer = setTimeout(bodyIdle, this.settings.idleMs, this);
    req.on('data', this.onData);
    req.once('end', this.onEnd);
    req.once('close', this.onClose);
  }

  /** The client went away before its body was complete: nothing more to wait for. */
  private readonly onClose = (): void => {
    if (!this.done) this.finish();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    this.timer?.refresh();
    const { settings, ctx } = this;
    if (this.size + chunk.length > settings.limit) return this.refuse('request_body_too_large');
    if (this.size + chunk.length > settings.bufferUpTo || !settings.budget.take(chunk.length)) {
      // Larger than declared (chunked), or the gateway holds too much already: the rest streams.
      this.chunks.push(chunk);
      this.size += chunk.length;
      this.ctx.bufferedBytes = this.size - chunk.length;
      return this.stream();
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    ctx.bufferedBytes = this.size;
    ctx.bytesIn = this.size;
  };

  private readonly onEnd = (): void => {
    if (this.done) return;
    this.finish();
    this.ctx.bytesIn = this.size;
    this.ctx.body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.then(this.ctx);
  };

  /** Hands the body over as a stream: what was read so far first, then the rest as it comes. */
  private stream(): void {
    this.finish();
    const { ctx, settings } = this;
    const body = new BodyStream(ctx, settings, this.chunks);
    ctx.bytesIn = this.size;
    ctx.req.on('error', (err) => body.destroy(err));
    ctx.req.pipe(body);
    ctx.body = body;
    this.then(ctx);
  }

  /** The body stopped coming. */
  idle(): void {
    if (this.done) return;
    this.refuse('request_timeout');
  }

  private refuse(kind: 'request_timeout' | 'request_body_too_large'): void {
    this.finish();
    const { ctx } = this;
    const message =
      kind === 'request_timeout'
        ? `no request body byte for ${this.settings.idleMs} ms`
        : `request body over the route's ${this.settings.limit}-byte limit`;
    // The connection cannot carry another request: what is left of this body would be read as one.
    ctx.res.closeAfter();
    replyLocally(ctx, kind, new GatewayAbort(kind, message));
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.timer);
    const { req } = this.ctx;
    req.off('data', this.onData);
    req.off('end', this.onEnd);
    req.off('close', this.onClose);
  }
}

function bodyIdle(reader: BodyReader): void {
  reader.idle();
}

/**
 * The streamed part of a body: counts it against the route's limit and stops it with 408 when
 * it stalls, so a body that trickles upstream cannot hold a host's connection forever.
 */
class BodyStream extends Transform {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ctx: RequestContext,
    private readonly settings: BodySettings,
    already: Buffer[],
  ) {
    super();
    for (const c of already) this.push(c);
    this.timer = setTimeout(streamIdle, settings.idleMs, this);
    this.timer.unref();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.timer.refresh();
    this.ctx.bytesIn += chunk.length;
    bodyBytesRelayed(chunk.length);
    if (this.ctx.bytesIn > this.settings.limit) {
      done(
        new GatewayAbort('request_body_too_large', `request body over the route's ${this.settings.limit}-byte limit`),
      );
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    clearTimeout(this.timer);
    done();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    done(err);
  }

  stalled(): void {
    this.destroy(new GatewayAbort('request_timeout', `no request body byte for ${this.settings.idleMs} ms`));
  }
}

function streamIdle(stream: BodyStream): void {
  stream.stalled();
}

export type RequestBody = Readable | Buffer | null;
