/**
 * The response_filter phase: the head of an upstream's answer as the client receives it —
 * hop-by-hop fields out, Via and the request id in, this gateway's Proxy-Status member on an
 * upstream 502/503/504, the route's own fields (RateLimit), the connection closed while the
 * gateway drains — and the moment it leaves, the request's time to first byte. Every path
 * that relays an upstream's answer goes through here: the exchange and a tunnel the upstream
 * refused (answers from the cache are written by ./cache-phase.ts, from the stored fields).
 */
import type { RequestContext } from './context.js';
import { buildDownstreamHeaders } from './headers.js';

export function sendResponseHead(
  ctx: RequestContext,
  status: number,
  statusText: string | undefined,
  raw: readonly Buffer[],
  proxyStatus: string | undefined,
  /** Nothing but the end follows (a trailers-only gRPC answer): the head may leave with it. */
  whole = false,
): void {
  const headers = buildDownstreamHeaders(raw, {
    proxyName: ctx.runtime.replies.proxyName,
    requestId: ctx.id,
    httpVersion: ctx.req.httpVersion,
    proxyStatus,
  });
  if (ctx.extraResponseHeaders !== undefined) headers.push(...ctx.extraResponseHeaders);
  if (ctx.runtime.draining) ctx.res.closeAfter();
  ctx.headAt = performance.now();
  ctx.res.sendHead(status, statusText || undefined, headers, whole);
}
