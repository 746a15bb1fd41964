/**
 * Everything a request passes before it may go upstream, the same for plain requests,
 * upgrades and HTTP/2 streams. Each step either lets the request on or ends it with a local
 * reply of the taxonomy:
 *
 *   request_filter  process overload (503, shed at once), target form and length (414),
 *                   loop detection (502)
 *   route           first matching route, else 404 destination_not_found
 *   maintenance     a route in maintenance answers 503 with Retry-After (staff pass)
 *   rate limit      a client over the route's limit gets 429 with Retry-After and RateLimit fields
 *   body size       a declared body over the route's limit gets 413
 *   admission       the upstream's adaptive concurrency limit: the request goes on, waits
 *                   briefly in its priority's queue, or is shed at once with 503
 *                   connection_limit_reached and Retry-After. A tunnel skips it: its life is
 *                   not an answer time.
 */
import type { GateEvents, ShedReason } from '../admission/concurrency-gate.js';
import type { Route } from '../route/router.js';
import type { RequestContext, RoutedContext } from './context.js';
import { viaContains } from './headers.js';
import { replyLocally, type ReplyExtras } from './local-reply.js';
import { declaredLength } from './request-body.js';

/**
 * Runs the checks; once the request is admitted — at once, or when a queued request gets its
 * slot — calls `proceed` with it.
 */
export function preflight(ctx: RequestContext, proceed: (ctx: RoutedContext) => void): void {
  const { runtime, req } = ctx;
  // request_filter
  if (runtime.loopGuard.overloaded) return shed(ctx, 'event_loop');
  let url = req.url!;
  if (url.length > runtime.limits.maxUriLength) return replyLocally(ctx, 'uri_too_long');
  if (url.charCodeAt(0) !== 0x2f /* / */) {
    const path = originFormOf(url);
    if (path === undefined) return replyLocally(ctx, 'bad_request');
    req.url = url = path;
  }
  if (viaContains(req.headers.via, runtime.replies.proxyName)) return replyLocally(ctx, 'proxy_loop_detected');

  // route
  const route = runtime.router.match(ctx.authority, url, req.method!);
  if (route === undefined) return replyLocally(ctx, 'destination_not_found');
  ctx.route = route;
  const routed = ctx as RoutedContext;

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

  // body size
  const declared = declaredLength(req);
  if (declared !== undefined && declared > route.policy.bodyLimit) return replyLocally(ctx, 'request_body_too_large');

  // admission
  const gate = route.upstream.gate;
  if (gate === undefined || ctx.upgrade) return proceed(routed);
  const entered = gate.enter(routed, route.priority, GATE_EVENTS, performance.now());
  if (entered === true) {
    ctx.gate = gate;
    return proceed(routed);
  }
  if (typeof entered === 'string') return shed(ctx, entered);
  ctx.waiter = entered;
  ctx.proceed = proceed;
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
  replyLocally(ctx, 'connection_limit_reached', undefined, shedFacts(ctx, ctx.route, reason));
}

function shedFacts(ctx: RequestContext, route: Route | undefined, reason: ShedReason | 'event_loop'): ReplyExtras {
  ctx.runtime.metrics.shed.with(route?.name ?? '', reason).inc();
  return {
    retryAfter: 1,
    details: route === undefined ? 'gateway overloaded' : `upstream ${route.upstream.name} at its concurrency limit`,
  };
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
