/**
 * The access log: one JSON line per finished request, with what an operator needs to explain
 * it afterwards: the route, every host tried, the failure kind and its low-level cause (the
 * details clients do not see), bytes each way and time taken.
 *
 * The line is built by hand when it goes to a JSON destination: a fixed shape serialised
 * directly costs a fraction of a generic object serialiser, and this runs for every request.
 * The fields and format are exactly pino's (level 30, time, msg), so both paths read alike.
 */
import { FAILURES } from '../faults/taxonomy.js';
import type { LineDestination } from './log-sink.js';
import type { Logger } from './logger.js';
import type { RequestObserver, RequestRecord } from './record.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON must escape.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

function str(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

export class AccessLog implements RequestObserver {
  /** The logger's bindings (a worker's `"worker":N`) as JSON members, written into every fast line. */
  private readonly bound: string;

  constructor(
    private readonly enabled: boolean,
    private readonly logger: Logger,
    /** The JSON line destination for the fast path; absent when pino must format (pretty). */
    private readonly lines: LineDestination | undefined,
  ) {
    const bindings = JSON.stringify(logger.bindings());
    this.bound = bindings === '{}' ? '' : `,${bindings.slice(1, -1)}`;
  }

  requestFinished(r: RequestRecord): void {
    if (!this.enabled || !this.logger.isLevelEnabled('info')) return;
    const error = r.failure ? FAILURES[r.failure].error : '';
    const ms = Math.round(r.ms * 10) / 10;
    const ttfb = r.ttfbMs === undefined ? undefined : Math.round(r.ttfbMs * 10) / 10;
    if (this.lines === undefined) {
      this.logger.info(
        {
          req_id: r.id,
          client: r.client,
          method: r.method,
          protocol: `HTTP/${r.httpVersion}`,
          path: r.path,
          upgrade: r.upgrade,
          route: r.route,
          upstream: r.upstream,
          host: r.host,
          hosts_tried: r.hostsTried.length > 1 ? r.hostsTried : undefined,
          attempts: r.attempts,
          retries: r.retries.length > 0 ? r.retries : undefined,
          resumed: r.resumes || undefined,
          status: r.status,
          failure: r.failure,
          outcome: r.outcome,
          cache: r.cache,
          stood_in_for: r.stoodInFor,
          proxy_status_error: error || undefined,
          cause: r.cause,
          bytes_in: r.bytesIn,
          bytes_out: r.bytesOut,
          ttfb_ms: ttfb,
          ms,
        },
        'request',
      );
      return;
    }
    let line =
      `{"level":30,"time":${Date.now()}${this.bound},"req_id":${str(r.id)},"client":${str(r.client)},` +
      `"method":${str(r.method)},"protocol":"HTTP/${r.httpVersion}","path":${str(r.path)}`;
    if (r.upgrade !== undefined) line += `,"upgrade":${str(r.upgrade)}`;
    if (r.route !== undefined) line += `,"route":${str(r.route)},"upstream":${str(r.upstream ?? '')}`;
    if (r.host !== undefined) line += `,"host":${str(r.host)}`;
    if (r.hostsTried.length > 1) line += `,"hosts_tried":${JSON.stringify(r.hostsTried)}`;
    line += `,"attempts":${r.attempts}`;
    if (r.retries.length > 0) line += `,"retries":${JSON.stringify(r.retries)}`;
    if (r.resumes > 0) line += `,"resumed":${r.resumes}`;
    line += `,"status":${r.status}`;
    if (r.failure !== undefined) line += `,"failure":"${r.failure}"`;
    line += `,"outcome":"${r.outcome}"`;
    if (r.cache !== undefined) line += `,"cache":"${r.cache}"`;
    if (r.stoodInFor !== undefined) line += `,"stood_in_for":"${r.stoodInFor}"`;
    if (error) line += `,"proxy_status_error":"${error}"`;
    if (r.cause !== undefined) line += `,"cause":${str(r.cause)}`;
    line += `,"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut}`;
    if (ttfb !== undefined) line += `,"ttfb_ms":${ttfb}`;
    line += `,"ms":${ms},"msg":"request"}\n`;
    this.lines.write(line);
  }
}
