/**
 * One try of a request against one upstream host: the undici dispatch handler that
 * carries the response back to the client as it arrives. Data flows with backpressure:
 * when the client cannot keep up, the upstream socket is paused until the client drains.
 * An attempt also reports what it learned about its host: latency, success, failure.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyFailure, GatewayAbort } from '../faults/classify.js';
import { serializeProxyStatus } from '../faults/proxy-status.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import { awaitConnection, type ConnectionAware } from '../upstream/connection-reuse.js';
import type { UpstreamHost } from '../upstream/host.js';
import { parseRetryAfter } from '../upstream/outlier.js';
import { endBody, writeBodyChunk } from './body-stream.js';
import type { RequestContext } from './context.js';
import { buildDownstreamHeaders } from './headers.js';
import { planResume } from './resume.js';

export interface AttemptOutcome {
  /** The attempt failed before any response header reached the client; the owner answers or retries. */
  failedBeforeResponse(ctx: RequestContext, kind: FailureKindName, err: unknown): void;
  /** The upstream answered 502/503/504: true when the owner retries instead of passing it on. */
  retryInsteadOf(ctx: RequestContext, status: number): boolean;
  /** The response broke after its headers went out: true when the owner resumes it elsewhere. */
  resumeAfterBreak(ctx: RequestContext, reason: string): boolean;
}

const RETRIED = new GatewayAbort('upstream_error_status', 'answer replaced by a retry on another host');
const LOST = new GatewayAbort('client_closed', 'another attempt answered first');

export class Attempt implements Dispatcher.DispatchHandler, ConnectionAware {
  reusedConnection = false;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private pendingAbort: Error | undefined;
  private resumeUpstream: (() => void) | undefined;
  private readonly sentAt = performance.now();
  private settled = false;
  /** This attempt's answer was dropped for a retry; whatever it reports from now on is ignored. */
  private superseded = false;

  constructor(
    readonly ctx: RequestContext,
    readonly host: UpstreamHost,
    private readonly outcome: AttemptOutcome,
    /** Started by the hedging timer rather than as the first try or a retry. */
    readonly hedge = false,
  ) {}

  send(headers: string[], body: Readable | Buffer | null): void {
    const { ctx, host } = this;
    ctx.attempts++;
    ctx.hostsTried.push(host.label);
    ctx.triedHosts.add(host);
    ctx.host = host;
    ctx.attempt = this;
    ctx.active.add(this);
    host.outstanding++;
    host.dispatcher.dispatch({
      path: ctx.req.url!,
      method: ctx.req.method as Dispatcher.HttpMethod,
      headers,
      body,
    }, this);
  }

  /** Still exchanging with the upstream. */
  get active(): boolean {
    return !this.settled;
  }

  /** Ends the exchange with the upstream, e.g. because the client went away. */
  abort(err: Error): void {
    if (!this.settled) this.stopUpstream(err);
  }

  /** Aborts the undici request now, or as soon as it connects. */
  private stopUpstream(err: Error): void {
    if (this.abortUpstream) this.abortUpstream(err);
    else this.pendingAbort = err;
  }

  /**
   * Another attempt of the same request answered first. What this host showed (no answer
   * after so long) still counts: the time waited is a lower bound of its latency, and not
   * answering at all is a strike against it, so a frozen host soon stops drawing traffic.
   */
  lose(): void {
    if (this.settled) return;
    this.superseded = true;
    const pool = this.ctx.route!.upstream;
    this.host.observeLatency(performance.now() - this.sentAt);
    pool.outliers.failure(this.host);
    this.settle();
    this.stopUpstream(LOST);
  }

  /** The client drained its buffer: let upstream data flow again. */
  resume(): void {
    const r = this.resumeUpstream;
    if (r) r();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.pendingAbort) { abort(this.pendingAbort); return; }
    awaitConnection(this);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.superseded) return false;
    const { ctx, host } = this;
    const runtime = ctx.runtime;
    const pool = ctx.route!.upstream;
    const ms = performance.now() - this.sentAt;
    if (statusCode >= 500) host.observeFailure(); else host.observeLatency(ms);
    pool.latency.record(ms);
    pool.gate?.sample(ms, this.sentAt + ms);
    runtime.metrics.attemptDone(pool.name, host.label, statusCode >= 500 ? `status_${statusCode}` : 'ok', ms / 1000);
    let proxyStatus: string | undefined;
    if (statusCode === 502 || statusCode === 503 || statusCode === 504) {
      pool.outliers.failure(host);
      if (statusCode === 503) {
        const retryAfter = parseRetryAfter(headerValue(rawHeaders, 'retry-after'));
        if (retryAfter !== undefined) pool.outliers.retryAfter(host, retryAfter);
      }
      if (ctx.active.size > 1 || this.outcome.retryInsteadOf(ctx, statusCode)) {
        // Another attempt (a hedge) is still running, or a retry takes over: drop this answer.
        this.superseded = true;
        this.settle();
        this.abortUpstream?.(RETRIED);
        return false;
      }
      ctx.failure = 'upstream_error_status';
      proxyStatus = serializeProxyStatus({
        proxy: runtime.config.name,
        receivedStatus: statusCode,
        nextHop: ctx.revealDetails ? host.label : undefined,
        details: `upstream ${pool.name}`,
      });
    } else {
      pool.outliers.success(host);
    }
    this.resumeUpstream = resume;
    ctx.responseStarted = true;
    ctx.attempt = this;
    ctx.releaseSlot();
    if (ctx.active.size > 1) {
      for (const other of ctx.active) if (other !== this) other.lose();
      if (this.hedge) runtime.metrics.hedgesWon.with(pool.name).inc();
    }
    const headers = buildDownstreamHeaders(rawHeaders, {
      proxyName: runtime.config.name,
      requestId: ctx.id,
      httpVersion: ctx.req.httpVersion,
      proxyStatus,
    });
    if (ctx.extraResponseHeaders !== undefined) headers.push(...ctx.extraResponseHeaders);
    if (runtime.draining) ctx.res.shouldKeepAlive = false;
    if (pool.hosts.length > 1) ctx.resumePlan = planResume(ctx.req.method!, statusCode, rawHeaders);
    ctx.res.writeHead(statusCode, statusText || undefined, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.superseded || writeBodyChunk(this.ctx, chunk);
  }

  onComplete(rawTrailers: string[] | Buffer[] | null): void {
    if (this.superseded) return;
    this.settle();
    endBody(this.ctx, rawTrailers);
  }

  onError(err: Error): void {
    if (this.superseded || this.settled) return;
    this.settle();
    const { ctx, host } = this;
    const pool = ctx.route!.upstream;
    const kind = classifyFailure(err, { responseStarted: ctx.responseStarted, reusedConnection: this.reusedConnection });
    if (kind !== 'client_closed') {
      ctx.runtime.metrics.attemptDone(pool.name, host.label, kind, undefined);
      // A host too slow to answer at all is the strongest latency signal there is.
      if (kind === 'http_response_timeout') pool.gate?.sample(performance.now() - this.sentAt, performance.now());
      if (kind !== 'request_body_too_large') { pool.outliers.failure(host); host.observeFailure(); }
    }
    ctx.cause = describeError(err);
    if (ctx.responseStarted && ctx.attempt === this) {
      if (this.outcome.resumeAfterBreak(ctx, ctx.cause)) return;
      if (ctx.failure === undefined || ctx.failure === 'upstream_error_status') ctx.failure = kind;
      // Headers are out: the only honest signal left is to cut the stream, so the client
      // sees an incomplete body (short Content-Length, or no final chunk) rather than a
      // clean end that would pass a truncated file off as whole.
      ctx.res.destroy();
      return;
    }
    this.outcome.failedBeforeResponse(ctx, kind, err);
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.outstanding--;
    this.ctx.active.delete(this);
  }
}

function headerValue(raw: Buffer[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === lowerName.length && raw[i]!.toString('latin1').toLowerCase() === lowerName) return raw[i + 1]!.toString('latin1');
  }
  return undefined;
}

export function describeError(err: unknown): string {
  if (err instanceof GatewayAbort) return err.message;
  const e = err as { code?: string; message?: string } | null;
  const msg = e?.message ?? String(err);
  return e?.code && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}
