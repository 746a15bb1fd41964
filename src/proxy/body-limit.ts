/**
 * Enforces a route's request body limit on bodies of unknown length (chunked uploads);
 * a declared Content-Length is checked before anything is forwarded.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { GatewayAbort } from '../faults/classify.js';
import type { RequestContext } from './context.js';

class BodyLimit extends Transform {
  constructor(private readonly ctx: RequestContext, private readonly limit: number) {
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

/** The body to send upstream: null when there is none, the request itself when its length is declared. */
export function upstreamBody(ctx: RequestContext, req: IncomingMessage, limit: number): IncomingMessage | Transform | null {
  const headers = req.headers;
  if (headers['transfer-encoding'] === undefined) {
    const length = headers['content-length'];
    if (length === undefined || length === '0') return null;
    ctx.bytesIn = Number(length);
    return req;
  }
  const limited = new BodyLimit(ctx, limit);
  req.on('error', (err) => limited.destroy(err));
  req.pipe(limited);
  return limited;
}
