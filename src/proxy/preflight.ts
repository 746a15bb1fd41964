/**
 * Everything a request passes before it may go upstream, the same for plain requests,
 * upgrades and HTTP/2 streams. Each step either lets the request on or ends it with a local
 * reply of the taxonomy:
 *
 *   request_filter  process overload (503, shed at once), target length (414), the authority
 *                   (one valid Host; an absolute-form target's authority replaces it), the
 *                   path policy (normalised before routing, or 400: ../http/path.ts), loops (502)
 *   route           first matching route, else 404 destination_not_found; an upgrade the route
 *                   does not allow goes on as a plain request (over HTTP/2: 400, see below)
 *   maintenance     a route in maintenance answers 503 with Retry-After (staff pass)
 *   rate limit      a client over the route's limit gets 429 with Retry-After and RateLimit fields
 *   body            a declared body over the route's limit gets 413; a body that fits the
 *                   request buffer is read whole now (408 when it stalls), so a slow sender
 *                   never holds a concurrency slot
 *   cache           on a route with a cache: a fresh stored answer is sent here, and a request
 *                   for a URL already being fetched waits for that fetch (./cache-phase.ts)
 *   admission       the upstream's adaptive concurrency limit: the request goes on, waits
 *                   briefly in its priority's queue, or is shed at once with 503
 *                   connection_limit_reached and Retry-After. A tunnel skips it: its life is
 *                   not an answer time.
 */
import type { GateEvents, ShedReason } from '../admission/concurrency-gate.js';
import { hostFieldCount, parseAuthority } from '../http/host.js';
import { normalizePath } from '../http/path.js';
import { isIdempotentGrpcCall } from '../route/policy.js';
import type { Route } from '../route/router.js';
import type { RequestContext, RoutedContext } from './context.js';
import { viaContains } from './headers.js';
import { consultCache, standInForError } from './cache-phase.js';
import { replyLocally, type ReplyExtras } from './local-reply.js';
import { declaredLength, hasBody, readBody } from './request-body.js';

/**
 * Runs the checks; once the request is admitted — at once, or when a queued request gets its
 * slot — calls `proceed` with it.
 */
export function preflight(ctx: RequestContext, proceed: (ctx: RoutedContext) => void): void {
  const { runtime, req } = ctx;
  ctx.proceed = proceed;
  // request_filter
  if (runtime.loopGuard.overloaded) return shed(ctx, 'event_loop');
  const target = req.url!;
  if (target.length > runtime.limits.maxUriLength) return replyLocally(ctx, 'uri_too_long');
  const refusal = checkTarget(ctx, target);
  if (refusal !== undefined) return refuse(ctx, refusal);
  if (viaContains(req.headers.via, runtime.replies.proxyName)) return replyLocally(ctx, 'proxy_loop_detected');

  // route
  const route = runtime.router.match(ctx.authority, req.url!, req.method!);
  if (route === undefined) return replyLocally(ctx, 'destination_not_found');
  ctx.route = route;
  if (ctx.upgrade !== undefined && !allowsUpgrade(route, ctx.upgrade)) {
    // An HTTP/2 extended CONNECT (RFC 8441) has no plain request to fall back to: the upstream
    // would answer a GET, and any 2xx would read to the client as the tunnel opening.
    if (req.stream !== undefined) return refuse(ctx, `${ctx.upgrade} is not served on this route`);
    // RFC 9110 §7.8: a server may ignore Upgrade. The request is answered as it stands.
    if (hasBody(req)) return refuse(ctx, `a body on a request asking to switch to ${ctx.upgrade}`);
    ctx.upgrade = undefined;
  }

  // maintenance
  const held = runtime.maintenance.holds(runtime.config, route, req, ctx.clientAddress);
  if (held !== undefined) return replyLocally(ctx, 'maintenance', undefined, held);

  // rate limit
  if (route.rateLimiter !== undefined) {
    const d = route.rateLimiter.check(req, ctx.clientAddress);
    if (!d.allowed) {
      runtime.metrics.rateLimited.with(route.name).inc();
      return replyLocally(ctx, 'rate_limited', undefined, route.rateLimiter.refusal(d));
    }
    ctx.extraResponseHeaders = [
      'ratelimit-policy',
      route.rateLimiter.policy,
      'ratelimit',
      `"gangway";r=${d.remaining};t=${d.reset}`,
    ];
  }

  // body
  const declared = declaredLength(req);
  if (declared !== undefined && declared > route.policy.bodyLimit) return replyLocally(ctx, 'request_body_too_large');
  if (ctx.upgrade === undefined && hasBody(req)) {
    if (ctx.expectsContinue) ctx.res.sendContinue();
    const policy = route.policy;
    readBody(
      ctx,
      {
        limit: policy.bodyLimit,
        // A gRPC call's body is a stream of messages that may never end before the answer does
        // (client and bidirectional streaming): waiting for all of it would hang the call. It
        // streams, unless the route lists the method as safe to send twice, which needs it kept.
        bufferUpTo: ctx.grpc && !isIdempotentGrpcCall(policy, req.url!) ? 0 : policy.retry.bufferBodyUpTo,
        idleMs: runtime.limits.bodyIdleMs,
        budget: runtime.bodies,
      },
      admit,
    );
    return;
  }
  admit(ctx);
}

/**
 * The target: one Host field, naming a valid authority, replaced by an absolute-form target's
 * own (RFC 9112 §3.2, §3.2.2); the path in its normal form. Rewrites `req.url` to the
 * origin-form that is routed and forwarded; returns why the request is refused, if it is.
 */
function checkTarget(ctx: RequestContext, target: string): string | undefined {
  const { req } = ctx;
  // RFC 9112 §3.2: 400 for more than one Host field or an invalid one, whatever the target's form.
  if (ctx.authority !== undefined) {
    if (hostFieldCount(req.rawHeaders) > 1) return 'more than one Host field';
    const authority = parseAuthority(ctx.authority);
    if (!authority.ok) return `the Host field: ${authority.reason}`;
  }
  let rest = target;
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute === null) return `a request target that is neither a path nor an http(s) URL`;
    const authority = parseAuthority(absolute[1]!);
    if (!authority.ok) return `the target's authority: ${authority.reason}`;
    ctx.authority = absolute[1]!;
    rest = absolute[2] || '/';
    if (rest.charCodeAt(0) === 0x3f /* ? */) rest = `/${rest}`;
  }
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const normal = normalizePath(path, ctx.runtime.limits.paths);
  if (!normal.ok) return `the path: ${normal.reason}`;
  const url = q < 0 ? normal.path : normal.path + rest.slice(q);
  if (url !== target) req.url = url;
  return undefined;
}

/** Whether the route allows every protocol the Upgrade field offers (the upstream may pick any of them). */
function allowsUpgrade(route: Route, offered: string): boolean {
  for (const p of offered.split(',')) if (!route.policy.upgrades.has(p.trim())) return false;
  return true;
}

/** "http://authority/path?query": the authority, then the rest (possibly empty). */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)$/i;

/** A malformed request: 400, saying what was wrong (the access log has it too). */
function refuse(ctx: RequestContext, why: string): void {
  ctx.cause = why;
  replyLocally(ctx, 'bad_request', undefined, { details: why });
}

/** cache, on a route with one: a stored answer needs no admission (./cache-phase.ts). Then admission. */
function admit(ctx: RequestContext): void {
  const routed = ctx as RoutedContext;
  const cache = routed.route.cache;
  if (cache !== undefined && ctx.upgrade === undefined && consultCache(routed, cache, enterGate)) return;
  enterGate(routed);
}

/** admission: the upstream's concurrency gate, then on to the exchange (or tunnel). */
function enterGate(ctx: RoutedContext): void {
  const gate = ctx.route.upstream.gate;
  if (gate === undefined || ctx.upgrade !== undefined) return ctx.proceed!(ctx);
  const entered = gate.enter(ctx, ctx.route.priority, GATE_EVENTS, performance.now());
  if (entered === true) {
    ctx.gate = gate;
    return ctx.proceed!(ctx);
  }
  if (typeof entered === 'string') return shed(ctx, entered);
  ctx.waiter = entered;
}

/** What the concurrency gate does with a request that waited in its queue. */
const GATE_EVENTS: GateEvents<RoutedContext> = {
  admit(ctx, waitedMs) {
    ctx.waiter = undefined;
    ctx.gate = ctx.route.upstream.gate;
    ctx.runtime.metrics.queueWait.with(ctx.route.upstream.name).observe(waitedMs / 1000);
    ctx.proceed!(ctx);
  },
  shed(ctx, reason) {
    ctx.waiter = undefined;
    shed(ctx, reason);
  },
};

/** Sheds a request with 503 connection_limit_reached, counted, saying whether the gateway or its upstream is full. */
function shed(ctx: RequestContext, reason: ShedReason | 'event_loop'): void {
  // A stored copy standing in is an answer, not a shed request: counted as neither.
  if (ctx.route?.cache !== undefined && standInForError(ctx as RoutedContext, 'connection_limit_reached')) return;
  replyLocally(ctx, 'connection_limit_reached', undefined, shedFacts(ctx, ctx.route, reason));
}

function shedFacts(ctx: RequestContext, route: Route | undefined, reason: ShedReason | 'event_loop'): ReplyExtras {
  ctx.runtime.metrics.shed.with(route?.name ?? '', reason).inc();
  return {
    retryAfter: 1,
    details: route === undefined ? 'gateway overloaded' : `upstream ${route.upstream.name} at its concurrency limit`,
  };
}
