/**
 * The upstream side of one request, as one object: it picks hosts, sends attempts, races a
 * hedge beside a slow one, retries what failed (by the taxonomy's rules, within the budget),
 * resumes a body that broke off from another host, and enforces the total timeout. The client
 * side holds this one handle while attempts come and go — `resume()` when the client drains,
 * `abort()` when it leaves — as undici's retry handler gives its caller one controller.
 *
 * Attempts report here and decide nothing; the response reaches the client from exactly one
 * of them at a time (`streaming`), and when none can answer the exchange ends in a local reply.
 */
import { GatewayAbort, describeError } from '../faults/classify.js';
import { serializeProxyStatus } from '../faults/proxy-status.js';
import { isIdempotent, type FailureKindName } from '../faults/taxonomy.js';
import { chooseErrorForm } from '../explain/negotiate.js';
import { isGrpcContentType, isGrpcUnavailable, parseGrpcTimeout } from '../http/grpc.js';
import { parseRetryAfter } from '../http/retry-after.js';
import { isIdempotentGrpcCall, type RetryPolicy, type RoutePolicy } from '../route/policy.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { Attempt, type AttemptRole } from './attempt.js';
import type { RoutedContext } from './context.js';
import { buildInterimHeaders, buildUpstreamHeaders } from './headers.js';
import { revalidated, standInForError } from './cache-phase.js';
import { endGrpcCall, replyLocally } from './local-reply.js';
import { clientDrained, paceChunk, type PacedRelay } from './pacing.js';
import { bodyBytesRelayed } from './read-buffers.js';
import { MAX_RESUMES, planResume, resumeHead, resumeMismatch, type ParsedHeaders, type ResumePlan } from './resume.js';
import { sendResponseHead } from './response-head.js';
import { decideRetry, type RetryState } from './retry.js';

export class Exchange implements RetryState, PacedRelay {
  readonly pool: UpstreamPool;
  readonly policy: RetryPolicy;
  /** Hosts tried, in order (labels), for the access log. */
  readonly hostsTried: string[] = [];
  /** Why each further attempt was made, for the access log. */
  readonly retryReasons: Array<FailureKindName | 'hedge'> = [];
  readonly tried = new Set<UpstreamHost>();
  attempts = 0;
  resumes = 0;
  /** Body bytes delivered to the client. */
  bytesOut = 0;
  /** The host of the latest attempt: the one a failure reply names. */
  lastHost: UpstreamHost | undefined = undefined;
  expired = false;
  readonly idempotent: boolean;
  // The body relay's share of the event loop (./pacing.ts).
  turnBytes = 0;
  yielding = false;
  clientFull = false;
  private readonly route: RoutePolicy;
  /** The upstream request head, built once (per host when it names the host). */
  private head: string[] | undefined = undefined;
  /** Attempts waiting for response headers: two while a hedge races the first. */
  private readonly racing = new Set<Attempt>();
  /** The attempt whose body is reaching the client, once response headers went out. */
  private streaming: Attempt | undefined = undefined;
  private resumePlan: ResumePlan | undefined = undefined;
  private hedgeTimer: NodeJS.Timeout | undefined = undefined;
  private retryTimer: NodeJS.Timeout | undefined = undefined;
  private totalTimer: NodeJS.Timeout | undefined = undefined;
  private over = false;
  /** The gRPC call's own deadline (grpc-timeout, in ms) when it, not the route's total timeout, limits the exchange. */
  private callDeadlineMs: number | undefined = undefined;
  /** When that deadline passes (performance.now()). */
  private deadlineAt: number | undefined = undefined;

  constructor(readonly ctx: RoutedContext) {
    this.pool = ctx.route.upstream;
    this.route = ctx.route.policy;
    this.policy = this.route.retry;
    // Every gRPC call is a POST: only the route's list makes one safe to send twice.
    this.idempotent =
      isIdempotent(ctx.req.method!, ctx.req.headers['idempotency-key'] !== undefined) ||
      (ctx.grpc && isIdempotentGrpcCall(this.route, ctx.req.url!));
  }

  /** The body can be sent again in full: there is none, or it was read whole before the first attempt. */
  get replayable(): boolean {
    const body = this.ctx.body;
    return body === null || Buffer.isBuffer(body);
  }

  /** Picks the first host and sends the first attempt. */
  start(): void {
    const { ctx, pool } = this;
    const limit = this.timeLimit();
    if (limit < 0) {
      // The call's deadline passed while it waited at the gateway (a queue, a slow body).
      this.expired = true;
      return replyLocally(ctx, 'http_response_timeout', new GatewayAbort('http_response_timeout', this.expiry()));
    }
    const host = pool.pick();
    if (host === undefined)
      return replyLocally(ctx, 'destination_unavailable', undefined, pool.hosts.length === 0 ? pool.empty : undefined);
    pool.budget.recordRequest();
    if (limit > 0) this.totalTimer = setTimeout(expire, limit, this);
    this.send(host, 'first');
  }

  /**
   * How long the exchange may take from now, in ms (0: no limit; below 0: already over): the
   * route's total timeout, or a gRPC call's own deadline (`grpc-timeout`, counted from its
   * arrival) when that is sooner — past it the client has given up, and an answer would be wasted.
   */
  private timeLimit(): number {
    const total = this.route.totalTimeoutMs;
    const { ctx } = this;
    const timeout = ctx.grpc ? parseGrpcTimeout(ctx.req.headers['grpc-timeout']) : undefined;
    if (timeout === undefined) return total;
    const left = Math.ceil(timeout - (performance.now() - ctx.start));
    if (total > 0 && total <= left) return total;
    this.callDeadlineMs = timeout;
    this.deadlineAt = performance.now() + left;
    return left > 0 ? left : -1;
  }

  /** Why the exchange ran out of time, for the access log and a trusted client. */
  private expiry(): string {
    return this.callDeadlineMs !== undefined
      ? `the call's deadline (grpc-timeout, ${this.callDeadlineMs} ms) passed`
      : `no complete response within the ${this.route.totalTimeoutMs} ms total timeout`;
  }

  /** The client drained its buffer: the streaming attempt may go on (once its turn comes round). */
  resume(): void {
    clientDrained(this);
  }

  /** The pacer lets the body flow again. */
  flow(): void {
    this.streaming?.resume();
  }

  /** Ends every exchange with the upstream (the client left, or the response is complete) and clears the timers. */
  abort(err: Error): void {
    this.over = true;
    clearTimeout(this.hedgeTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.totalTimer);
    if (this.racing.size > 0) for (const a of this.racing) a.abort(err);
    this.streaming?.abort(err);
  }

  // What attempts report.

  /**
   * Response headers arrived. Returns false when this answer is not taken (a 502/503/504
   * replaced by a retry, or one that lost its race); the attempt then stops.
   */
  answered(attempt: Attempt, status: number, raw: Buffer[], headers: ParsedHeaders, statusText: string): boolean {
    if (this.over) return false;
    if (attempt.role === 'resume') return this.spliceResume(attempt, status, headers);
    if (!this.racing.has(attempt)) return false;
    const { ctx, pool } = this;
    let proxyStatus: string | undefined;
    if (ctx.grpc && this.idempotent && isGrpcUnavailable(status, headers['grpc-status'])) {
      // A listed method's host said UNAVAILABLE before any message (trailers-only): gRPC's 503.
      // Another host may answer it; when none may, the host's own status is relayed as it is.
      this.racing.delete(attempt);
      if (this.racing.size > 0 || this.retry('upstream_error_status')) return false;
      this.racing.add(attempt);
    }
    if (status === 502 || status === 503 || status === 504) {
      // Another attempt (a hedge) still runs, or a retry takes over: drop this answer. It
      // leaves the race first, so a retry that fails at once ends the exchange itself.
      this.racing.delete(attempt);
      if (this.racing.size > 0 || this.retry('upstream_error_status')) return false;
      if (ctx.route.cache !== undefined && standInForError(ctx, 'upstream_error_status', status)) {
        this.settleWithoutBody(attempt);
        return false;
      }
      if (
        (ctx.grpc && !isGrpcContentType(headers['content-type'])) ||
        (this.route.explainUpstreamErrors && wantsExplanation(ctx.req.headers.accept, headers['content-type']))
      ) {
        // A gRPC client cannot read an HTTP error (the upstream's, or a proxy's before it): it gets a status.
        this.explainUpstreamError(attempt, status, headers);
        return false;
      }
      this.racing.add(attempt);
      ctx.failure = 'upstream_error_status';
      proxyStatus = serializeProxyStatus({
        proxy: ctx.runtime.replies.proxyName,
        receivedStatus: status,
        nextHop: ctx.revealDetails ? attempt.host.label : undefined,
        details: `upstream ${pool.name}`,
      });
    }
    this.racing.delete(attempt);
    if (this.racing.size > 0) {
      for (const other of this.racing) other.lose();
      this.racing.clear();
      if (attempt.role === 'hedge') ctx.runtime.metrics.hedgesWon.with(pool.name).inc();
    }
    clearTimeout(this.hedgeTimer);
    this.streaming = attempt;
    this.lastHost = attempt.host;
    ctx.releaseSlot();
    if (status === 304 && ctx.cache?.validators !== undefined && revalidated(ctx, headers)) {
      // The cache's stale copy is current again and was sent; the 304 itself has no body to relay.
      this.streaming = undefined;
      return false;
    }
    if (pool.hosts.length > 1) this.resumePlan = planResume(ctx.req.method!, status, headers);
    // A gRPC answer with its status in the head (trailers-only) must reach the client as one: the
    // head then leaves with the end of the stream (over HTTP/2, one HEADERS frame with END_STREAM),
    // or a gRPC client finds no status where it looks for one.
    const trailersOnly = ctx.grpc && headers['grpc-status'] !== undefined;
    sendResponseHead(ctx, status, statusText, raw, proxyStatus, trailersOnly);
    return true;
  }

  /**
   * Every attempt ended in the upstream's own 502/503/504, in a form the person asking cannot
   * use (a bare "overloaded" in a browser): answer with the gateway's explanation instead, with
   * the upstream's status and Retry-After kept and its answer named in Proxy-Status.
   */
  private explainUpstreamError(attempt: Attempt, status: number, headers: ParsedHeaders): void {
    const { ctx } = this;
    this.settleWithoutBody(attempt);
    const value = headers['retry-after'];
    const retryAfter = parseRetryAfter(typeof value === 'string' ? value : undefined);
    replyLocally(ctx, 'upstream_error_status', undefined, {
      receivedStatus: status,
      retryAfter,
      headers: corsFieldsOf(headers),
    });
  }

  /** The exchange ends on this attempt's answer without relaying it (the gateway answers instead). */
  private settleWithoutBody(attempt: Attempt): void {
    clearTimeout(this.hedgeTimer);
    this.lastHost = attempt.host;
    this.ctx.releaseSlot();
  }

  /** An interim answer: Early Hints reach the client while the final answer is awaited. */
  interim(attempt: Attempt, status: number, raw: Buffer[]): void {
    const { ctx } = this;
    if (this.over || attempt.role === 'resume' || !this.racing.has(attempt) || ctx.res.headersSent) return;
    ctx.res.sendInterim(status, buildInterimHeaders(raw));
  }

  /** A body chunk; false asks the attempt to pause until the client drains and the relay's turn comes round. */
  deliver(attempt: Attempt, chunk: Buffer): boolean {
    if (attempt !== this.streaming) return true;
    this.bytesOut += chunk.length;
    bodyBytesRelayed(chunk.length);
    return paceChunk(this, chunk.length, this.ctx.res.sendBody(chunk));
  }

  /** The response body ended cleanly, with the upstream's trailers when it sent any. */
  ended(attempt: Attempt, trailers: Array<[string, string]> | undefined): void {
    if (attempt !== this.streaming) return;
    clearTimeout(this.totalTimer);
    this.ctx.res.finish(undefined, trailers);
  }

  /** The attempt failed: before any response (retry or reply), or part way through the body (resume or cut). */
  failed(attempt: Attempt, kind: FailureKindName, err: unknown): void {
    const { ctx } = this;
    if (kind === 'client_closed' && this.over) return;
    // The total timeout stopped a streaming body: expire() has cut the client's stream already.
    if (this.expired && attempt === this.streaming) return;
    ctx.cause = describeError(err);
    if (attempt === this.streaming) {
      if (attempt.role === 'resume')
        return this.resumeFailed(attempt, `${attempt.started ? 'broke again' : 'failed'}: ${(err as Error).message}`);
      return this.broke(kind);
    }
    this.racing.delete(attempt);
    if (kind === 'client_closed' || ctx.res.destroyed) {
      ctx.failure ??= 'client_closed';
      return;
    }
    if (this.racing.size > 0) return; // a hedge of this request is still running; its answer will do
    if (this.retry(kind)) return;
    replyLocally(ctx, kind, err);
  }

  // The driver.

  private send(host: UpstreamHost, role: AttemptRole): void {
    const { ctx } = this;
    if (this.over || ctx.res.destroyed || ctx.res.headersSent) return;
    const attempt = new Attempt(this, host, role);
    this.note(host);
    this.racing.add(attempt);
    attempt.send(ctx.req.url!, ctx.req.method!, this.headFor(host), ctx.body);
    if (
      role === 'first' &&
      this.route.hedge !== undefined &&
      this.replayable &&
      this.idempotent &&
      this.racing.size > 0
    ) {
      this.hedgeTimer = setTimeout(hedge, this.hedgeDelay(), this);
    }
  }

  private note(host: UpstreamHost): void {
    this.attempts++;
    this.hostsTried.push(host.label);
    this.tried.add(host);
    this.lastHost = host;
  }

  /** The request head for the upstream, built once per request (per host when it names the host). */
  private headFor(host: UpstreamHost): string[] {
    const perHost = this.route.hostHeader === 'upstream';
    if (this.head !== undefined && !perHost) return this.head;
    const { req, runtime } = this.ctx;
    this.head = buildUpstreamHeaders(req.rawHeaders, req.headers.connection, {
      proxyName: runtime.replies.proxyName,
      requestId: this.ctx.id,
      clientAddress: this.ctx.clientAddress,
      proto: this.ctx.scheme,
      httpVersion: req.httpVersion,
      authority: this.ctx.authority,
      hostOverride: perHost ? host.label : undefined,
      // gRPC servers require `TE: trailers` (the one TE value HTTP/2 allows): the status is in them.
      askTrailers: this.ctx.grpc,
    });
    // The cache revalidates its stale copy: a 304 lets it serve the copy instead of a new body.
    const validators = this.ctx.cache?.validators;
    if (validators !== undefined) this.head.push(...validators);
    if (this.deadlineAt !== undefined) shortenGrpcTimeout(this.head, this.deadlineAt - performance.now());
    return this.head;
  }

  /** Sends the request again elsewhere when the taxonomy, the budget and the attempt limit allow. */
  private retry(kind: FailureKindName): boolean {
    const verdict = decideRetry(this, kind);
    const metrics = this.ctx.runtime.metrics;
    if (!verdict.retry) {
      if (verdict.why !== 'unsafe') metrics.retriesDenied.with(this.pool.name, verdict.why).inc();
      return false;
    }
    metrics.retries.with(this.pool.name, kind).inc();
    this.retryReasons.push(kind);
    if (verdict.delayMs < 1) this.send(verdict.host, 'retry');
    else this.retryTimer = setTimeout(retryOn, verdict.delayMs, this, verdict.host);
    return true;
  }

  /**
   * How long an idempotent request may wait for headers before it is hedged: the pool's recent
   * percentile, within the policy's bounds; until the pool has learned one (a fresh start, a
   * reload), the longest delay — a host that accepts connections and never answers must not
   * cost the first requests a whole response timeout.
   */
  private hedgeDelay(): number {
    const h = this.route.hedge!;
    const p = this.pool.latency.value();
    return p === undefined ? h.maxDelayMs : Math.min(Math.max(p, h.minDelayMs), h.maxDelayMs);
  }

  /** The first attempt is still unanswered after the pool's usual latency: race a second one on another host. */
  hedgeNow(): void {
    this.hedgeTimer = undefined;
    if (this.over || this.streaming !== undefined || this.racing.size !== 1 || this.expired || this.ctx.res.destroyed)
      return;
    const { pool } = this;
    if (this.attempts >= this.policy.attempts) return;
    const host = pool.pick(this.tried);
    if (host === undefined) return;
    if (!pool.budget.tryAcquire()) {
      this.ctx.runtime.metrics.retriesDenied.with(pool.name, 'budget').inc();
      return;
    }
    this.ctx.runtime.metrics.hedges.with(pool.name).inc();
    this.retryReasons.push('hedge');
    this.send(host, 'hedge');
  }

  retryNow(host: UpstreamHost): void {
    this.retryTimer = undefined;
    this.send(host, 'retry');
  }

  /** The body broke after the headers went out: resume it elsewhere, or cut the client's stream. */
  private broke(kind: FailureKindName): void {
    const { ctx } = this;
    if (this.resumeElsewhere(ctx.cause ?? kind)) return;
    if (ctx.failure === undefined || ctx.failure === 'upstream_error_status') ctx.failure = kind;
    // A gRPC stream is never spliced from another host (its messages are not byte ranges): it
    // ends with a status in its trailers, which a gRPC client reads, where a cut would be a
    // bare "stream reset" to it.
    if (endsWithStatus(ctx)) return endGrpcCall(ctx, kind);
    // Headers are out: the only honest signal left is to cut the stream, so the client sees
    // an incomplete body (short Content-Length, no final chunk) rather than a clean end that
    // would pass a truncated file off as whole.
    ctx.res.cut();
  }

  /** Starts fetching the rest of the body from another host; false when it may not. */
  private resumeElsewhere(reason: string): boolean {
    const plan = this.resumePlan;
    const { ctx, pool } = this;
    if (plan === undefined || this.resumes >= MAX_RESUMES || ctx.res.destroyed || this.expired || this.over)
      return false;
    const broken = this.streaming!.host;
    const host = pool.pick(this.tried) ?? pool.pick(new Set([broken]));
    if (host === undefined) return false;
    this.resumes++;
    const from = plan.first + this.bytesOut;
    ctx.runtime.metrics.resumes.with(pool.name, 'started').inc();
    ctx.runtime.logger.info(
      { req_id: ctx.id, upstream: pool.name, from: broken.label, to: host.label, at: from, reason },
      'resuming a broken response',
    );
    const leg = new Attempt(this, host, 'resume');
    this.note(host);
    this.streaming = leg;
    leg.send(ctx.req.url!, 'GET', resumeHead(this.headFor(host), plan, from), null);
    return true;
  }

  /** The resume's answer: spliced in when it continues the body exactly, else this resume failed. */
  private spliceResume(leg: Attempt, status: number, headers: ParsedHeaders): boolean {
    if (leg !== this.streaming) return false;
    const mismatch = resumeMismatch(this.resumePlan!, this.resumePlan!.first + this.bytesOut, status, headers);
    if (mismatch === undefined) return true;
    this.resumeFailed(leg, mismatch);
    return false;
  }

  private resumeFailed(leg: Attempt, why: string): void {
    const { ctx } = this;
    ctx.runtime.metrics.resumes.with(this.pool.name, 'failed').inc();
    ctx.cause = `resume from ${leg.host.label} ${why}`;
    if (!this.resumeElsewhere(why)) {
      ctx.failure = 'http_response_incomplete';
      ctx.res.cut();
    }
  }

  /**
   * The total timeout passed: stop whatever runs, and answer if nothing was sent yet — 504, or
   * 408 when the client had not even finished sending its request (its fault, not the host's).
   */
  expire(): void {
    this.totalTimer = undefined;
    this.expired = true;
    const { ctx } = this;
    const kind =
      this.streaming !== undefined
        ? 'http_response_incomplete'
        : ctx.req.complete
          ? 'http_response_timeout'
          : 'request_timeout';
    const err = new GatewayAbort(kind, this.expiry());
    if (this.streaming !== undefined) {
      ctx.failure = kind;
      ctx.cause = err.message;
      this.streaming.abort(err);
      // A gRPC stream out of time says so: DEADLINE_EXCEEDED, the timeout's status.
      if (endsWithStatus(ctx)) endGrpcCall(ctx, 'http_response_timeout', { details: err.message });
      else ctx.res.cut();
    } else if (this.racing.size > 0) {
      for (const a of [...this.racing]) a.abort(err);
    } else if (!ctx.res.headersSent) {
      // Between attempts (waiting to retry), or still reading a small body.
      clearTimeout(this.retryTimer);
      this.over = true;
      replyLocally(ctx, kind, err);
    }
  }
}

/**
 * Whether a call whose answer has started ends with a gRPC status in trailers rather than a cut:
 * a gRPC call over HTTP/2 (HTTP/1.1 has no trailers after a Content-Length body, and a gRPC
 * client never speaks it).
 */
function endsWithStatus(ctx: RoutedContext): boolean {
  return ctx.grpc && ctx.req.httpVersion === '2.0' && !ctx.res.destroyed;
}

/**
 * The call's `grpc-timeout` as what is left of it when it leaves for the host: the time it spent
 * at the gateway (a queue, its body) is gone, and the host should stop working on it when the
 * client stops waiting, not later. At most 8 digits: milliseconds, or seconds beyond them.
 */
function shortenGrpcTimeout(head: string[], leftMs: number): void {
  const ms = Math.max(1, Math.ceil(leftMs));
  const value = ms <= 99_999_999 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`;
  for (let i = 0; i < head.length; i += 2) if (head[i]!.toLowerCase() === 'grpc-timeout') head[i + 1] = value;
}

function expire(x: Exchange): void {
  x.expire();
}
function hedge(x: Exchange): void {
  x.hedgeNow();
}
function retryOn(x: Exchange, host: UpstreamHost): void {
  x.retryNow(host);
}

/**
 * Whether an upstream's error body would reach a person in a form they cannot use: a browser
 * asking for a page gets something other than HTML, or a program asking for JSON gets
 * something other than JSON. The upstream's own error page or JSON error is kept; a terminal
 * (curl) gets the upstream's words as they are.
 */
function wantsExplanation(accept: string | undefined, upstreamType: string | string[] | undefined): boolean {
  const type = typeof upstreamType === 'string' ? upstreamType.toLowerCase() : '';
  const form = chooseErrorForm(accept);
  if (form === 'html') return !type.startsWith('text/html');
  if (form === 'problem') return !type.includes('json');
  return false;
}

/**
 * The upstream's CORS fields, kept on the explanation that replaces its answer: without them a
 * page on another origin could not read the 503 and its Retry-After, only "failed to fetch".
 */
function corsFieldsOf(headers: ParsedHeaders): Array<[string, string]> | undefined {
  let out: Array<[string, string]> | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('access-control-') || value === undefined) continue;
    out ??= [];
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, v]);
  }
  const origin = headers['access-control-allow-origin'];
  if (out !== undefined && origin !== undefined && origin !== '*') out.push(['vary', 'Origin']);
  return out;
}
