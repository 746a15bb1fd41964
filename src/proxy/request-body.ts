/**
 * The request body on its way upstream: streamed as it arrives (with the route's size limit
 * enforced on bodies of unknown length), or — when it is small and its length is declared —
 * read whole first, so that a retry can send it again.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { GatewayAbort } from '../faults/classify.js';
import type { ClientRequest } from '../listen/client.js';
import type { RequestContext } from './context.js';

/** The body's declared length: a number, or undefined when it is chunked (unknown) or absent. */
export function declaredLength(req: ClientRequest): number | undefined {
  const length = req.headers['content-length'];
  return length === undefined || req.headers['transfer-encoding'] !== undefined ? undefined : Number(length);
}

/** Whether the request carries a body at all. */
export function hasBody(req: ClientRequest): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

class BodyLimit extends Transform {
  constructor(
    private readonly ctx: RequestContext,
    private readonly limit: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.ctx.bytesIn += chunk.length;
    if (this.ctx.bytesIn > this.limit) {
      done(new GatewayAbort('request_body_too_large', `request body over the route's ${this.limit}-byte limit`));
      return;
    }
    done(null, chunk);
  }
}

/** The body to stream upstream: null when there is none, the request itself when its length is declared. */
export function streamedBody(ctx: RequestContext, limit: number): ClientRequest | Transform | null {
  const req = ctx.req;
  if (!hasBody(req)) return null;
  const declared = declaredLength(req);
  if (declared !== undefined) {
    ctx.bytesIn = declared;
    return req;
  }
  const limited = new BodyLimit(ctx, limit);
  req.on('error', (err) => limited.destroy(err));
  req.pipe(limited);
  return limited;
}

/** Reads the whole (small, declared) body, then calls `then` with it. */
export function readWholeBody<T>(req: ClientRequest, item: T, then: (item: T, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.once('end', () => then(item, Buffer.concat(chunks)));
}
