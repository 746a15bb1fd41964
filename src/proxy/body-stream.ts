/**
 * Writing an upstream response body to the client: each chunk as it arrives, pausing the
 * upstream (by returning false to undici) while the client's buffer is full, and resuming
 * whichever exchange is streaming (the attempt, or a resume after a break) when it drains.
 */
import type { ContextualResponse, RequestContext } from './context.js';
import { trailerPairs } from './headers.js';

/** Writes one chunk; false means "pause the upstream until the client drains". */
export function writeBodyChunk(ctx: RequestContext, chunk: Buffer): boolean {
  ctx.bytesOut += chunk.length;
  if (ctx.res.write(chunk)) return true;
  ctx.res.once('drain', onClientDrain);
  return false;
}

/** Ends the client's response, with the upstream's trailers when it sent any. */
export function endBody(ctx: RequestContext, rawTrailers: string[] | Buffer[] | null): void {
  if (rawTrailers && rawTrailers.length > 0) ctx.res.addTrailers(trailerPairs(rawTrailers as Buffer[]));
  ctx.res.end();
}

function onClientDrain(this: ContextualResponse): void {
  const ctx = this.gangway;
  (ctx?.resumer ?? ctx?.attempt)?.resume();
}
