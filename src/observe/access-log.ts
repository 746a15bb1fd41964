/**
 * The access log: one JSON line per request, with what an operator needs to explain it
 * afterwards: the route, every host tried, the failure kind and its low-level cause (the
 * details clients do not see), bytes each way and time taken.
 */
import { FAILURES } from '../faults/taxonomy.js';
import type { RequestContext } from '../proxy/context.js';

export function logAccess(ctx: RequestContext, status: number, ms: number): void {
  const runtime = ctx.runtime;
  if (!runtime.config.log.access || !runtime.logger.isLevelEnabled('info')) return;
  const failure = ctx.failure;
  runtime.logger.info({
    req_id: ctx.id,
    client: ctx.clientAddress,
    method: ctx.req.method,
    path: ctx.req.url,
    route: ctx.route?.name,
    upstream: ctx.route?.upstream.name,
    host: ctx.host?.label,
    hosts_tried: ctx.hostsTried.length > 1 ? ctx.hostsTried : undefined,
    attempts: ctx.attempts,
    status,
    failure,
    proxy_status_error: failure ? FAILURES[failure].error || undefined : undefined,
    cause: ctx.cause,
    bytes_in: ctx.bytesIn,
    bytes_out: ctx.bytesOut,
    ms: Math.round(ms * 10) / 10,
  }, 'request');
}
