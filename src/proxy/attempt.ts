/**
 * One try of a request against one upstream host: the undici dispatch handler that
 * carries the response back to the client as it arrives. Data flows with backpressure:
 * when the client cannot keep up, the upstream socket is paused until the client drains.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyFailure, GatewayAbort } from '../faults/classify.js';
import { serializeProxyStatus } from '../faults/proxy-status.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { ContextualResponse, RequestContext } from './context.js';
import { buildDownstreamHeaders, trailerPairs } from './headers.js';

export interface AttemptOutcome {
  /** Called once, when the attempt failed before any response header reached the client. */
  failedBeforeResponse(ctx: RequestContext, err: unknown): void;
}

export class Attempt implements Dispatcher.DispatchHandler {
  private abortUpstream: ((err?: Error) => void) | undefined;
  private pendingAbort: Error | undefined;
  private resumeUpstream: (() => void) | undefined;
  private readonly sentAt = performance.now();
  private settled = false;

  constructor(
    private readonly ctx: RequestContext,
    readonly host: UpstreamHost,
    private readonly outcome: AttemptOutcome,
  ) {}

  send(headers: string[], body: Readable | null): void {
    const { ctx, host } = this;
    ctx.attempts++;
    ctx.hostsTried.push(host.label);
    ctx.host = host;
    host.outstanding++;
    host.dispatcher.dispatch({
      path: ctx.req.url!,
      method: ctx.req.method as Dispatcher.HttpMethod,
      headers,
      body,
    }, this);
  }

  /** Ends the exchange with the upstream, e.g. because the client went away. */
  abort(err: Error): void {
    if (this.settled) return;
    if (this.abortUpstream) this.abortUpstream(err);
    else this.pendingAbort = err;
  }

  /** The client drained its buffer: let upstream data flow again. */
  resume(): void {
    const r = this.resumeUpstream;
    if (r) r();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.pendingAbort) abort(this.pendingAbort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    const { ctx } = this;
    const runtime = ctx.runtime;
    this.resumeUpstream = resume;
    ctx.responseStarted = true;
    const pool = ctx.route!.upstream;
    let proxyStatus: string | undefined;
    if (statusCode === 502 || statusCode === 503 || statusCode === 504) {
      ctx.failure = 'upstream_error_status';
      proxyStatus = serializeProxyStatus({
        proxy: runtime.config.name,
        receivedStatus: statusCode,
        nextHop: ctx.revealDetails ? this.host.label : undefined,
        details: `upstream ${pool.name}`,
      });
    }
    runtime.metrics.attemptDone(pool.name, this.host.label, 'ok', (performance.now() - this.sentAt) / 1000);
    const headers = buildDownstreamHeaders(rawHeaders, {
      proxyName: runtime.config.name,
      requestId: ctx.id,
      httpVersion: ctx.req.httpVersion,
      proxyStatus,
    });
    if (runtime.draining) ctx.res.shouldKeepAlive = false;
    ctx.res.writeHead(statusCode, statusText || undefined, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.ctx.bytesOut += chunk.length;
    if (this.ctx.res.write(chunk)) return true;
    // The client is slower than the upstream: undici pauses the upstream socket until the
    // client's buffer drains.
    this.ctx.res.once('drain', onClientDrain);
    return false;
  }

  onComplete(rawTrailers: string[] | Buffer[] | null): void {
    this.settle();
    const res = this.ctx.res;
    if (rawTrailers && rawTrailers.length > 0) res.addTrailers(trailerPairs(rawTrailers as Buffer[]));
    res.end();
  }

  onError(err: Error): void {
    if (this.settled) return;
    this.settle();
    const { ctx } = this;
    const kind = classifyFailure(err, { responseStarted: ctx.responseStarted, reusedConnection: false });
    if (kind !== 'client_closed') {
      ctx.runtime.metrics.attemptDone(ctx.route!.upstream.name, this.host.label, kind, undefined);
    }
    if (ctx.failure === undefined || ctx.failure === 'upstream_error_status') ctx.failure = kind;
    ctx.cause ??= describeError(err);
    if (ctx.responseStarted) {
      // Headers are out: the only honest signal left is to cut the stream, so the client
      // sees an incomplete body (short Content-Length, or no final chunk) rather than a
      // clean end that would pass a truncated file off as whole.
      ctx.res.destroy();
      return;
    }
    this.outcome.failedBeforeResponse(ctx, err);
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.outstanding--;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof GatewayAbort) return err.message;
  const e = err as { code?: string; message?: string } | null;
  const msg = e?.message ?? String(err);
  return e?.code && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}


function onClientDrain(this: ContextualResponse): void {
  this.gangway?.attempt?.resume();
}
