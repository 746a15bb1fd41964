/**
 * The life of a proxied request, top to bottom. Each phase may end the request with a
 * local reply (a failure kind of the taxonomy); otherwise it hands the context on:
 *
 *   1. identify        request id, client address; the context is created
 *   2. request_filter  process overload (503, shed at once), target form and length (414),
 *                      loop detection (502), body size (413)
 *   3. route           first matching route, else 404 destination_not_found; a route in
 *                      maintenance answers 503 with Retry-After (staff pass); a client over
 *                      the route's rate limit gets 429 with Retry-After and RateLimit fields
 *   4. admission       the upstream's adaptive concurrency limit: the request goes on, waits
 *                      briefly in its priority's queue, or is shed at once with 503
 *                      connection_limit_reached and Retry-After
 *   5. upstream_peer   the balancer picks a host, else 503 destination_unavailable
 *   6. forward         headers rewritten (once), small bodies buffered for replay, an Attempt
 *                      streams the exchange
 *   7. fail / retry    an attempt that failed before any response byte (or got a 502/503/504)
 *                      is retried on another host when the taxonomy, the budget and the
 *                      attempt limit allow; otherwise it becomes a local reply
 *   8. logging         when the client's response closes: metrics and the access log
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GateEvents, ShedReason } from '../admission/concurrency-gate.js';
import { GatewayAbort } from '../faults/classify.js';
import { buildReply, sendReply, type ReplyFacts } from '../faults/reply.js';
import { isIdempotent, type FailureKindName } from '../faults/taxonomy.js';
import { logAccess } from '../observe/access-log.js';
import { requestIdFrom } from '../observe/request-id.js';
import type { Route } from '../route/router.js';
import type { UpstreamHost } from '../upstream/host.js';
import { hedgeDelay } from '../upstream/pool.js';
import { Attempt, describeError, type AttemptOutcome } from './attempt.js';
import { upstreamBody } from './body-limit.js';
import { clientAddressOf, RequestContext, type ContextualResponse } from './context.js';
import { buildUpstreamHeaders, viaContains } from './headers.js';
import { MAX_RESUMES, ResumeAttempt } from './resume.js';
import { decideRetry } from './retry.js';
import type { Runtime } from './runtime.js';

export function handleRequest(runtime: Runtime, req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
  // 1. identify
  const ctx = new RequestContext(runtime, req, res, requestIdFrom(req.headers['x-request-id']), clientAddressOf(req));
  (res as ContextualResponse).gangway = ctx;
  runtime.metrics.inFlight++;
  res.once('close', onResponseClose);
  if (runtime.draining) res.shouldKeepAlive = false;

  // 2. request_filter
  const config = runtime.config;
  if (runtime.loopGuard.overloaded) return shed(ctx, 'event_loop');
  let url = req.url!;
  if (url.length > config.server.maxUriLength) return localReply(ctx, 'uri_too_long');
  if (url.charCodeAt(0) !== 0x2f /* / */) {
    const path = originFormOf(url);
    if (path === undefined) return localReply(ctx, 'bad_request');
    req.url = url = path;
  }
  if (viaContains(req.headers.via, config.name)) return localReply(ctx, 'proxy_loop_detected');

  // 3. route
  const route = runtime.router.match(req.headers.host, url, req.method!);
  if (route === undefined) return localReply(ctx, 'destination_not_found');
  ctx.route = route;
  const held = runtime.maintenance.holds(config, route, req, ctx.clientAddress);
  if (held !== undefined) return localReply(ctx, 'maintenance', undefined, held);
  if (route.rateLimiter !== undefined) {
    const d = route.rateLimiter.check(req, ctx.clientAddress);
    if (!d.allowed) {
      runtime.metrics.rateLimited.with(route.name).inc();
      return localReply(ctx, 'rate_limited', undefined, route.rateLimiter.refusal(d));
    }
    ctx.extraResponseHeaders = ['ratelimit-policy', route.rateLimiter.policy, 'ratelimit', `"gangway";r=${d.remaining};t=${d.reset}`];
  }
  const declaredLength = req.headers['content-length'];
  if (declaredLength !== undefined && Number(declaredLength) > route.bodyLimit) return localReply(ctx, 'request_body_too_large');
  ctx.expectsContinue = expectsContinue;

  // 4. admission
  const gate = route.upstream.gate;
  if (gate !== undefined) {
    const entered = gate.enter(ctx, route.priority, GATE_EVENTS, performance.now());
    if (entered !== true) {
      if (typeof entered === 'string') return shed(ctx, entered);
      ctx.waiter = entered;
      return;
    }
    ctx.gate = gate;
  }
  forward(ctx);
}

/** What the concurrency gate does with a request that waited in its queue. */
const GATE_EVENTS: GateEvents<RequestContext> = {
  admit(ctx, waitedMs) {
    ctx.waiter = undefined;
    ctx.gate = ctx.route!.upstream.gate;
    ctx.runtime.metrics.queueWait.with(ctx.route!.upstream.name).observe(waitedMs / 1000);
    forward(ctx);
  },
  shed(ctx, reason) {
    ctx.waiter = undefined;
    shed(ctx, reason);
  },
};

function shed(ctx: RequestContext, reason: ShedReason | 'event_loop'): void {
  localReply(ctx, 'connection_limit_reached', undefined, shedFacts(ctx.runtime, ctx.route, reason));
}

/**
 * Counts a request shed with 503 connection_limit_reached (plain or upgrade) and says why:
 * the gateway itself is overloaded (no route yet), or the route's upstream is at its limit.
 */
export function shedFacts(runtime: Runtime, route: Route | undefined, reason: ShedReason | 'event_loop'): Pick<ReplyFacts, 'retryAfter' | 'details'> {
  runtime.metrics.shed.with(route?.name ?? '', reason).inc();
  return { retryAfter: 1, details: route === undefined ? 'gateway overloaded' : `upstream ${route.upstream.name} at its concurrency limit` };
}

/** Phases 5 and 6: pick a host and send the request. */
function forward(ctx: RequestContext): void {
  const { req, res } = ctx;
  const route = ctx.route!;
  if (res.destroyed) return;

  // 5. upstream_peer
  const host = route.upstream.pick();
  if (host === undefined) return localReply(ctx, 'destination_unavailable');
  route.upstream.budget.recordRequest();

  // 6. forward
  if (ctx.expectsContinue) res.writeContinue();
  if (route.upstream.config.timeouts.total > 0) ctx.totalTimer = setTimeout(onTotalTimeout, route.upstream.config.timeouts.total, ctx);
  const declaredLength = req.headers['content-length'];
  const declared = declaredLength === undefined ? undefined : Number(declaredLength);
  if (declared !== undefined && declared > 0 && declared <= route.upstream.config.retries.replayBody && req.headers['transfer-encoding'] === undefined) {
    // A small body is read whole before the first attempt, so that any retry can send it again.
    bufferBody(ctx, host);
    return;
  }
  ctx.body = upstreamBody(ctx, req, route.bodyLimit);
  startAttempt(ctx, host);
}

function startAttempt(ctx: RequestContext, host: UpstreamHost): void {
  if (ctx.res.destroyed || ctx.res.headersSent) return;
  new Attempt(ctx, host, lifecycleOutcome).send(upstreamHeadersFor(ctx, host), ctx.body);
  if (ctx.attempts === 1 && hedgeable(ctx)) {
    const delay = hedgeDelay(ctx.route!.upstream);
    if (delay !== undefined) ctx.hedgeTimer = setTimeout(onHedge, delay, ctx);
  }
}

/** The request head for the upstream, built once per request (per host when it names the host). */
function upstreamHeadersFor(ctx: RequestContext, host: UpstreamHost): string[] {
  const perHost = ctx.route!.upstream.config.hostHeader === 'upstream';
  if (ctx.upstreamHeaders !== undefined && !perHost) return ctx.upstreamHeaders;
  const req = ctx.req;
  const headers = buildUpstreamHeaders(req.rawHeaders, req.headers.connection, {
    proxyName: ctx.runtime.config.name,
    requestId: ctx.id,
    clientAddress: ctx.clientAddress,
    proto: 'http',
    httpVersion: req.httpVersion,
    hostOverride: perHost ? host.label : undefined,
  });
  ctx.upstreamHeaders = headers;
  return headers;
}

/** Hedging sends the request twice at once: only for idempotent requests whose body can be sent again. */
function hedgeable(ctx: RequestContext): boolean {
  return (ctx.body === null || Buffer.isBuffer(ctx.body)) && isIdempotent(ctx.req.method!, ctx.req.headers['idempotency-key'] !== undefined);
}

function onHedge(ctx: RequestContext): void {
  ctx.hedgeTimer = undefined;
  if (ctx.responseStarted || ctx.res.destroyed || ctx.active.size !== 1 || ctx.expired) return;
  const pool = ctx.route!.upstream;
  if (ctx.attempts >= pool.config.retries.attempts) return;
  const host = pool.pick(ctx.triedHosts);
  if (host === undefined) return;
  if (!pool.budget.tryAcquire()) { ctx.runtime.metrics.retriesDenied.with(pool.name, 'budget').inc(); return; }
  ctx.runtime.metrics.hedges.with(pool.name).inc();
  ctx.retryReasons.push('hedge');
  new Attempt(ctx, host, lifecycleOutcome, true).send(upstreamHeadersFor(ctx, host), ctx.body);
}

function bufferBody(ctx: RequestContext, host: UpstreamHost): void {
  const chunks: Buffer[] = [];
  ctx.req.on('data', (c: Buffer) => chunks.push(c));
  ctx.req.once('end', () => {
    ctx.body = Buffer.concat(chunks);
    ctx.bytesIn = ctx.body.length;
    startAttempt(ctx, host);
  });
}

// 7. fail (or retry)
const lifecycleOutcome: AttemptOutcome = {
  failedBeforeResponse(ctx: RequestContext, kind: FailureKindName, err: unknown): void {
    if (kind === 'client_closed' || ctx.res.destroyed) { ctx.failure ??= 'client_closed'; return; }
    if (ctx.active.size > 0) return; // a hedge of this request is still running; its answer will do
    if (retried(ctx, kind)) return;
    localReply(ctx, kind, err);
  },
  retryInsteadOf(ctx: RequestContext): boolean {
    return retried(ctx, 'upstream_error_status');
  },
  resumeAfterBreak,
};

/** Starts fetching the rest of a broken response from another host; false when it may not. */
function resumeAfterBreak(ctx: RequestContext, reason: string): boolean {
  const plan = ctx.resumePlan;
  const pool = ctx.route!.upstream;
  if (plan === undefined || ctx.resumes >= MAX_RESUMES || ctx.res.destroyed || ctx.expired) return false;
  const broken = ctx.resumer?.host ?? ctx.host!;
  const host = pool.pick(ctx.triedHosts) ?? pool.pick(new Set([broken]));
  if (host === undefined) return false;
  ctx.resumes++;
  ctx.runtime.metrics.resumes.with(pool.name, 'started').inc();
  ctx.runtime.logger.info({ req_id: ctx.id, upstream: pool.name, from: broken.label, to: host.label, at: plan.first + ctx.bytesOut, reason }, 'resuming a broken response');
  new ResumeAttempt(ctx, host, plan, ctx.bytesOut, (attempt, why) => {
    ctx.runtime.metrics.resumes.with(pool.name, 'failed').inc();
    ctx.cause = `resume from ${attempt.host.label} ${why}`;
    if (!resumeAfterBreak(ctx, why)) {
      ctx.failure = 'http_response_incomplete';
      ctx.res.destroy();
    }
  }).send(upstreamHeadersFor(ctx, host));
  return true;
}

function retried(ctx: RequestContext, kind: FailureKindName): boolean {
  const pool = ctx.route!.upstream;
  const verdict = decideRetry(ctx, kind);
  const metrics = ctx.runtime.metrics;
  if (!verdict.retry) {
    if (verdict.why !== 'unsafe') metrics.retriesDenied.with(pool.name, verdict.why).inc();
    return false;
  }
  metrics.retries.with(pool.name, kind).inc();
  ctx.retryReasons.push(kind);
  if (verdict.delayMs < 1) startAttempt(ctx, verdict.host);
  else setTimeout(startAttempt, verdict.delayMs, ctx, verdict.host);
  return true;
}

function localReply(ctx: RequestContext, kind: FailureKindName, err?: unknown, extra?: Pick<ReplyFacts, 'retryAfter' | 'message' | 'details' | 'headers'>): void {
  ctx.failure = kind;
  if (err !== undefined) ctx.cause = describeError(err);
  const reply = buildReply({
    kind,
    proxyName: ctx.runtime.config.name,
    requestId: ctx.id,
    service: ctx.route?.upstream.name,
    path: ctx.req.url,
    accept: ctx.req.headers.accept,
    acceptLanguage: ctx.req.headers['accept-language'],
    method: ctx.req.method,
    page: ctx.runtime.config.errors.page,
    revealDetails: ctx.revealDetails,
    nextHop: ctx.host?.label,
    cause: ctx.cause,
    statusPage: ctx.runtime.config.errors.statusPage ?? ctx.runtime.config.status.path,
    ...extra,
  });
  // A request body we did not read would be taken for the next request on this connection.
  if (!ctx.req.complete) ctx.res.shouldKeepAlive = false;
  sendReply(ctx.res, reply, ctx.req.method!);
}

function onTotalTimeout(ctx: RequestContext): void {
  ctx.expired = true;
  const total = ctx.route!.upstream.config.timeouts.total;
  const kind = ctx.responseStarted ? 'http_response_incomplete' : 'http_response_timeout';
  const err = new GatewayAbort(kind, `no complete response within the ${total} ms total timeout`);
  if (ctx.resumer !== undefined) { ctx.resumer.abort(err); ctx.res.destroy(); }
  else if (ctx.active.size > 0) for (const a of [...ctx.active]) a.abort(err);
  else if (!ctx.res.headersSent) localReply(ctx, kind, err); // between attempts, waiting to retry
}

// 8. logging
function onResponseClose(this: ContextualResponse): void {
  const ctx = this.gangway!;
  ctx.releaseSlot();
  if (ctx.waiter !== undefined) ctx.route!.upstream.gate!.cancel(ctx.waiter);
  if (ctx.totalTimer) clearTimeout(ctx.totalTimer);
  if (ctx.hedgeTimer) clearTimeout(ctx.hedgeTimer);
  let status = this.statusCode;
  if (!this.writableFinished) {
    // The client left, or we cut the stream: stop the upstream exchange either way.
    if (ctx.failure === undefined) ctx.failure = 'client_closed';
    if (ctx.active.size > 0 || ctx.resumer !== undefined) {
      const gone = new GatewayAbort('client_closed', 'client closed the connection');
      for (const a of [...ctx.active]) a.abort(gone);
      ctx.resumer?.abort(gone);
    }
    if (!this.headersSent) status = 499;
  }
  const ms = performance.now() - ctx.start;
  const runtime = ctx.runtime;
  runtime.metrics.inFlight--;
  runtime.metrics.requestDone(ctx.route?.name ?? '', status, ctx.failure ?? '', ms / 1000);
  logAccess(ctx, status, ms);
}

/** The origin-form ("/path?query") of an absolute-form target; undefined for anything else. */
function originFormOf(target: string): string | undefined {
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const u = new URL(target);
    return u.pathname + u.search;
  } catch {
    return undefined;
  }
}

