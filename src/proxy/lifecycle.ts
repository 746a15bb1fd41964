/**
 * The life of a proxied request, top to bottom. Each phase may end the request with a local
 * reply (a failure kind of the taxonomy); otherwise it hands the request on:
 *
 *   1. identify    request id, client address, the authority it named; the context is created
 *   2. preflight   request filter, route, maintenance, rate limit, body size, admission
 *                  (./preflight.ts; the same for requests, upgrades and HTTP/2 streams)
 *   3. upstream    the Exchange owns the upstream side from here: it picks hosts, forwards,
 *                  hedges, retries, resumes broken bodies and ends in the upstream's answer or
 *                  a local reply (./exchange.ts); an upgrade opens a tunnel instead (./tunnel.ts)
 *   4. logging     when the response is over: the finished record goes to the observers
 *                  (metrics, status timeline, access log)
 *
 * Nothing below this file calls back into it: the client side reports drains and the close
 * through the response's events, and the exchange writes to the response itself.
 */
import { GatewayAbort } from '../faults/classify.js';
import type { ClientRequest, ClientResponse, ResponseEvents, TunnelResponse } from '../listen/client.js';
import { outcomeOf } from '../observe/outcome.js';
import { requestIdFrom } from '../observe/request-id.js';
import type { Runtime } from '../runtime.js';
import { clientAddressOf, RequestContext, type RoutedContext } from './context.js';
import { leaveCache } from './cache-phase.js';
import { Exchange } from './exchange.js';
import { preflight } from './preflight.js';
import { openTunnel } from './tunnel.js';

/** How a client reached the gateway, as its listener saw it. */
export interface Arrival {
  remoteAddress: string | undefined;
  /** Host, or HTTP/2's :authority. */
  authority: string | undefined;
  /** The client sent `Expect: 100-continue`. */
  expectsContinue: boolean;
  /** Whether it came over TLS: X-Forwarded-Proto, Forwarded and the gateway's own links say so. */
  scheme: 'http' | 'https';
}

export function handleRequest(runtime: Runtime, req: ClientRequest, res: ClientResponse, arrival: Arrival): void {
  // 1. identify
  const ctx = identify(runtime, req, res, arrival, undefined);
  ctx.expectsContinue = arrival.expectsContinue;
  // 2. preflight, then 3.
  preflight(ctx, forward);
}

/** A protocol upgrade (WebSocket): the same phases, ending in a tunnel between the two sockets. */
export function handleUpgrade(
  runtime: Runtime,
  req: ClientRequest,
  res: TunnelResponse,
  head: Buffer,
  arrival: Arrival,
): void {
  const ctx = identify(runtime, req, res, arrival, String(req.headers.upgrade ?? '').toLowerCase());
  // A route that does not allow the protocol answers the request as a plain one.
  preflight(ctx, (routed) => (routed.upgrade !== undefined ? openTunnel(routed, res, head) : forward(routed)));
}

function identify(
  runtime: Runtime,
  req: ClientRequest,
  res: ClientResponse,
  arrival: Arrival,
  upgrade: string | undefined,
): RequestContext {
  const ctx = new RequestContext(
    runtime,
    req,
    res,
    requestIdFrom(req.headers['x-request-id']),
    clientAddressOf(arrival.remoteAddress),
    arrival.authority,
    upgrade,
  );
  ctx.scheme = arrival.scheme;
  runtime.metrics.inFlight++;
  runtime.requestStarted();
  res.watch(ctx, RESPONSE_EVENTS);
  if (runtime.draining) res.closeAfter();
  return ctx;
}

/** 3. upstream: the exchange takes the request from here. */
function forward(ctx: RoutedContext): void {
  if (ctx.res.destroyed) return;
  const exchange = new Exchange(ctx);
  ctx.exchange = exchange;
  exchange.start();
}

const RESPONSE_EVENTS: ResponseEvents<RequestContext> = {
  drained(ctx) {
    ctx.exchange?.resume();
  },
  closed(ctx) {
    finish(ctx);
  },
};

const CLIENT_GONE = new GatewayAbort('client_closed', 'client closed the connection');

/** 4. logging: the response is over (complete, cut, or the client left). */
function finish(ctx: RequestContext): void {
  ctx.releaseSlot();
  if (ctx.cache !== undefined) leaveCache(ctx as RoutedContext);
  if (ctx.waiter !== undefined) ctx.route!.upstream.gate!.cancel(ctx.waiter);
  const { res, runtime } = ctx;
  let status = res.statusCode;
  if (!res.writableFinished) {
    // The client left, or the stream was cut: the upstream exchange stops either way.
    ctx.failure ??= 'client_closed';
    if (!res.headersSent) status = 499;
  }
  const exchange = ctx.exchange;
  exchange?.abort(CLIENT_GONE);
  if (ctx.bufferedBytes > 0) runtime.bodies.give(ctx.bufferedBytes);
  runtime.metrics.inFlight--;
  const route = ctx.route;
  runtime.requestFinished({
    id: ctx.id,
    client: ctx.clientAddress,
    method: ctx.req.method ?? '',
    httpVersion: ctx.req.httpVersion,
    scheme: ctx.scheme,
    path: ctx.req.url ?? '',
    upgrade: ctx.upgrade,
    route: route?.name,
    upstream: route?.upstream.name,
    host: exchange?.lastHost?.label,
    hostsTried: exchange?.hostsTried ?? NONE,
    attempts: exchange?.attempts ?? 0,
    retries: exchange?.retryReasons ?? NONE,
    resumes: exchange?.resumes ?? 0,
    status,
    failure: ctx.failure,
    outcome: outcomeOf(status, ctx.failure, res.headersSent),
    cause: ctx.cause,
    bytesIn: ctx.bytesIn,
    bytesOut: (exchange?.bytesOut ?? 0) + ctx.bytesServed,
    cache: ctx.cacheResult,
    stoodInFor: ctx.stoodInFor,
    ttfbMs: ctx.headAt === undefined ? undefined : ctx.headAt - ctx.start,
    ms: performance.now() - ctx.start,
  });
}

const NONE: readonly string[] = [];
