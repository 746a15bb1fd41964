/**
 * The access log: one JSON line per request, with what an operator needs to explain it
 * afterwards: the route, every host tried, the failure kind and its low-level cause (the
 * details clients do not see), bytes each way and time taken.
 *
 * The line is built by hand when it goes to a JSON destination: a fixed shape serialised
 * directly costs a fraction of a generic object serialiser, and this runs for every request.
 * The fields and format are exactly pino's (level 30, time, msg), so both paths read alike.
 */
import { FAILURES } from '../faults/taxonomy.js';
import type { RequestContext } from '../proxy/context.js';

const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

function str(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

export function logAccess(ctx: RequestContext, status: number, ms: number): void {
  const runtime = ctx.runtime;
  if (!runtime.config.log.access || !runtime.logger.isLevelEnabled('info')) return;
  const failure = ctx.failure;
  const error = failure ? FAILURES[failure].error : '';
  const roundedMs = Math.round(ms * 10) / 10;
  const lines = runtime.lines;
  if (lines === undefined) {
    runtime.logger.info({
      req_id: ctx.id, client: ctx.clientAddress, method: ctx.req.method, path: ctx.req.url,
      route: ctx.route?.name, upstream: ctx.route?.upstream.name, host: ctx.host?.label,
      hosts_tried: ctx.hostsTried.length > 1 ? ctx.hostsTried : undefined, attempts: ctx.attempts,
      retries: ctx.retryReasons.length > 0 ? ctx.retryReasons : undefined, resumed: ctx.resumes || undefined, status,
      failure, proxy_status_error: error || undefined, cause: ctx.cause,
      bytes_in: ctx.bytesIn, bytes_out: ctx.bytesOut, ms: roundedMs,
    }, 'request');
    return;
  }
  let line = `{"level":30,"time":${Date.now()},"req_id":${str(ctx.id)},"client":${str(ctx.clientAddress)},"method":${str(ctx.req.method ?? '')},"path":${str(ctx.req.url ?? '')}`;
  const route = ctx.route;
  if (route !== undefined) line += `,"route":${str(route.name)},"upstream":${str(route.upstream.name)}`;
  if (ctx.host !== undefined) line += `,"host":${str(ctx.host.label)}`;
  if (ctx.hostsTried.length > 1) line += `,"hosts_tried":${JSON.stringify(ctx.hostsTried)}`;
  line += `,"attempts":${ctx.attempts}`;
  if (ctx.retryReasons.length > 0) line += `,"retries":${JSON.stringify(ctx.retryReasons)}`;
  if (ctx.resumes > 0) line += `,"resumed":${ctx.resumes}`;
  line += `,"status":${status}`;
  if (failure !== undefined) line += `,"failure":"${failure}"`;
  if (error) line += `,"proxy_status_error":"${error}"`;
  if (ctx.cause !== undefined) line += `,"cause":${str(ctx.cause)}`;
  line += `,"bytes_in":${ctx.bytesIn},"bytes_out":${ctx.bytesOut},"ms":${roundedMs},"msg":"request"}\n`;
  lines.write(line);
}
