/**
 * The evidence in words: one line per attempt (status, time, what became of the body, each
 * hop's Proxy-Status, Retry-After, the request id), the resolvers' answers side by side, and
 * what the service's status page says, each state and reason said once.
 */
import type { Lookup } from './dns.js';
import { troubledServices, type HttpAttempt, type StatusPageSummary } from './http.js';

/** The operator's maintenance message, said once however many routes the window covers. */
export function operatorMessage(page: StatusPageSummary | undefined): string | undefined {
  const announced = page?.maintenance?.active?.find((m) => m.message)?.message;
  return announced ?? page?.services?.find((s) => s.state === 'maintenance' && s.reason)?.reason;
}

/** " The service's status page says: partial_outage (/api, /audio: down, …)." — each state and reason once. */
export function describeStatusPage(page: StatusPageSummary | undefined): string {
  if (page === undefined) return '';
  const troubled = troubledServices(page);
  const groups = troubled.map((t) => `${t.names.join(', ')}: ${t.state}${t.reason ? `, ${t.reason}` : ''}`);
  return ` The service's status page says: ${page.overall}${groups.length ? ` (${groups.join('; ')})` : ''}.`;
}

export function describeAttempt(a: HttpAttempt): string {
  if (!a.ok) return `no answer: ${a.error}`;
  const hops = a.hops
    .map(
      (h) =>
        `${h.proxy}${h.error ? ` error=${h.error}` : ''}${h.status ? ` received-status=${h.status}` : ''}${h.details ? ` "${h.details}"` : ''}`,
    )
    .join(' → ');
  return `${a.status} in ${a.ms.toFixed(0)} ms${a.location && a.status! >= 300 && a.status! < 400 ? ` to ${a.location}` : ''}${describeBody(a.body)}${hops ? `; Proxy-Status: ${hops}` : ''}${a.via ? `; Via: ${a.via}` : ''}${a.retryAfter !== undefined ? `; Retry-After: ${a.retryAfter} s` : ''}${a.requestId ? `; request id ${a.requestId}` : ''}`;
}

/** Content types that are streams by nature: they go on for as long as someone listens. */
const STREAMING = /^(text\/event-stream|audio\/|video\/|multipart\/x-mixed-replace|application\/(x-)?ndjson)/;

/** Said only of a body the doctor stopped reading: a stream, or a download too long to wait for. */
function describeBody(body: HttpAttempt['body']): string {
  if (body === undefined || body.ended) return '';
  const read = `doctor stopped after ${kib(body.read)}`;
  if (body.length !== undefined)
    return `; a ${kib(body.length)} body${body.contentType ? ` (${body.contentType})` : ''}, ${read}`;
  if (body.contentType && STREAMING.test(body.contentType))
    return `; the body is a stream (${body.contentType}): ${read}`;
  return `; the body goes on without a stated length${body.contentType ? ` (${body.contentType})` : ''}: ${read}`;
}

function kib(bytes: number): string {
  return bytes < 1024
    ? `${bytes} bytes`
    : bytes < 1024 * 1024
      ? `${Math.round(bytes / 1024)} KiB`
      : `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function describeLookups(system: Lookup, others: Lookup[]): string {
  const one = (l: Lookup): string =>
    `${l.resolver}: ${l.ok ? l.addresses.join(', ') : l.error} (${l.ms.toFixed(0)} ms)`;
  let detail = [system, ...others].map(one).join('; ');
  const agreeing = others.filter((o) => o.ok && system.ok);
  if (agreeing.some((o) => !o.addresses.some((a) => system.addresses.includes(a))))
    detail += '; the resolvers disagree';
  return detail;
}
