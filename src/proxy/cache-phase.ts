/**
 * The cache phase, on a route with `cache`: between the preflight's checks and admission, so
 * an answer from the cache takes no concurrency slot and no upstream connection.
 *
 *   fresh           answered here (Cache-Status hit)
 *   stale, SWR      answered here, and revalidated in the background
 *   being fetched   waits for that one fetch (collapsing), then answered from the cache — or,
 *                   if it will not be stored or takes too long, goes upstream itself
 *   otherwise       goes upstream through a CacheFill, which stores the answer; a stale copy
 *                   is revalidated with its validators (a 304 refreshes and serves it) and is
 *                   kept at hand to stand in for an error (stale-if-error)
 *
 * Unsafe methods go upstream through a CacheFill that invalidates the URL when they succeed.
 */
import type CachePolicy from 'http-cache-semantics';
import type { FillWaiter, Lookup, RouteCache } from '../cache/route-cache.js';
import { CacheFill, type FillMode } from '../cache/fill.js';
import { serializeCacheStatus, type CacheStatusFacts, type ForwardReason } from '../cache/cache-status.js';
import { writeStored } from '../cache/serve.js';
import { afterNotModified } from '../cache/storable.js';
import type { StoredResponse } from '../cache/store.js';
import { serializeProxyStatus } from '../faults/proxy-status.js';
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';
import type { ClientResponse } from '../listen/client.js';
import { revalidateInBackground } from './cache-revalidate.js';
import type { RoutedContext } from './context.js';

/** What the cache did for a request: how it answered, or why it went upstream. */
export type CacheResult =
  | ForwardReason
  | 'hit'
  | 'collapsed'
  | 'stale-while-revalidate'
  | 'revalidated'
  | 'stale-if-error';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** What a request on a cached route carries from the cache phase on to the exchange. */
export interface CacheState {
  readonly cache: RouteCache;
  readonly key: string;
  readonly request: CachePolicy.Request;
  readonly fill: CacheFill | undefined;
  /** The stale copy that may stand in for an error, or be revalidated. */
  readonly stored: StoredResponse | undefined;
  /** Validators sent upstream to revalidate `stored` (the client sent none of its own). */
  readonly validators: string[] | undefined;
  /** A waiter's pending timer and registration. */
  waiting: { waiter: FillWaiter; timer: NodeJS.Timeout } | undefined;
}

/**
 * Runs the cache phase. Returns true when the request is answered (or waits for another's
 * fetch, and `proceed` will be called later if it must go upstream); false when it goes
 * upstream now.
 */
export function consultCache(ctx: RoutedContext, cache: RouteCache, proceed: (ctx: RoutedContext) => void): boolean {
  const { req } = ctx;
  const method = req.method!;
  const key = cache.keyOf(ctx.authority, req.url!);
  // The policy sees a HEAD as the GET whose stored answer it may use (RFC 9110 §9.3.2).
  const request: CachePolicy.Request = {
    url: req.url,
    method: method === 'HEAD' ? 'GET' : method,
    headers: req.headers,
  };
  if (!SAFE.has(method)) return pass(ctx, cache, key, request, 'invalidate', { fwd: 'method' });
  if (method !== 'GET' && method !== 'HEAD') return pass(ctx, cache, key, request, 'pass', { fwd: 'method' });
  // A stored answer is shared; one for a request with credentials is the origin's business.
  if (req.headers.authorization !== undefined) return pass(ctx, cache, key, request, 'pass', { fwd: 'bypass' });
  const found = cache.lookup(key, request);
  if (found.kind === 'fresh') {
    serve(ctx, cache, found.stored, { hit: true, ttl: found.ttl });
    return true;
  }
  if (found.kind === 'stale-while-revalidate') {
    serve(ctx, cache, found.stored, { hit: true, ttl: found.ttl, detail: 'stale-while-revalidate' });
    revalidateInBackground(ctx, cache, key, found.stored, found.revalidation);
    return true;
  }
  if (method === 'HEAD') return pass(ctx, cache, key, request, 'pass', { fwd: found.reason }, found);
  if (found.reason !== 'request' && waitForFetch(ctx, cache, key, request, proceed)) return true;
  return pass(ctx, cache, key, request, 'store', { fwd: found.reason }, found);
}

/** The request goes upstream through a CacheFill of the given mode. */
function pass(
  ctx: RoutedContext,
  cache: RouteCache,
  key: string,
  request: CachePolicy.Request,
  mode: FillMode,
  facts: CacheStatusFacts,
  found?: Lookup & { kind: 'forward' },
): false {
  cache.counters.misses++;
  ctx.cacheResult = facts.fwd;
  const fill = new CacheFill(ctx.res, cache, key, mode, request, facts);
  if (mode === 'store') cache.began(fill);
  ctx.res = fill;
  const stored = found?.stored;
  ctx.cache = {
    cache,
    key,
    request,
    fill,
    stored,
    validators: stored !== undefined && mode === 'store' ? validatorsFor(ctx, found!.conditional) : undefined,
    waiting: undefined,
  };
  return false;
}

/** The validators to revalidate a stale copy with, unless the client sent conditions of its own. */
function validatorsFor(ctx: RoutedContext, conditional: CachePolicy.Headers | undefined): string[] | undefined {
  const h = ctx.req.headers;
  if (conditional === undefined || h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined)
    return undefined;
  const out: string[] = [];
  const inm = conditional['if-none-match'];
  const ims = conditional['if-modified-since'];
  if (typeof inm === 'string') out.push('if-none-match', inm);
  if (typeof ims === 'string') out.push('if-modified-since', ims);
  return out.length > 0 ? out : undefined;
}

/** Another request is fetching this URL: wait for it, a bounded time. */
function waitForFetch(
  ctx: RoutedContext,
  cache: RouteCache,
  key: string,
  request: CachePolicy.Request,
  proceed: (ctx: RoutedContext) => void,
): boolean {
  const goUpstream = (): void => {
    if (ctx.cache?.waiting === undefined) return;
    clearTimeout(ctx.cache.waiting.timer);
    cache.stopWaiting(key, ctx.cache.waiting.waiter);
    ctx.cache = undefined;
    if (ctx.res.destroyed) return;
    pass(ctx, cache, key, request, 'store', { fwd: 'uri-miss', collapsed: true });
    proceed(ctx);
  };
  const waiter: FillWaiter = {
    stored() {
      if (ctx.cache?.waiting === undefined || ctx.res.destroyed) return;
      const found = cache.lookup(key, request);
      if (found.kind !== 'fresh') return goUpstream();
      clearTimeout(ctx.cache.waiting.timer);
      ctx.cache = undefined;
      serve(ctx, cache, found.stored, { fwd: 'uri-miss', collapsed: true, ttl: found.ttl });
    },
    released: goUpstream,
  };
  if (!cache.wait(key, waiter)) return false;
  ctx.cache = {
    cache,
    key,
    request,
    fill: undefined,
    stored: undefined,
    validators: undefined,
    waiting: { waiter, timer: setTimeout(goUpstream, cache.collapseWaitMs) },
  };
  return true;
}

/** A hit (fresh, stale-while-revalidate, or another request's fetch waited for): counted and written. */
function serve(ctx: RoutedContext, cache: RouteCache, stored: StoredResponse, facts: CacheStatusFacts): void {
  cache.counters.hits++;
  const result = facts.hit
    ? facts.detail === 'stale-while-revalidate'
      ? 'stale-while-revalidate'
      : 'hit'
    : 'collapsed';
  answerFromStore(ctx, ctx.res, cache, stored, result, facts);
}

/** Every answer from the cache is written here: its time to first byte, result, Cache-Status and the route's fields. */
function answerFromStore(
  ctx: RoutedContext,
  client: ClientResponse,
  cache: RouteCache,
  stored: StoredResponse,
  result: CacheResult,
  facts: CacheStatusFacts,
  proxyStatus?: string,
): void {
  ctx.headAt = performance.now();
  ctx.cacheResult = result;
  const extra = ctx.extraResponseHeaders ?? [];
  ctx.bytesServed = writeStored(ctx.req, client, stored, {
    requestId: ctx.id,
    cacheStatus: serializeCacheStatus(cache.proxyName, facts),
    extra: proxyStatus === undefined ? extra : ['proxy-status', proxyStatus, ...extra],
  });
}

/**
 * Whether a stored copy may answer this request at all: a GET or HEAD without credentials
 * whose client did not ask to go upstream (no-cache, max-age=0, Pragma) — unless it allowed a
 * stale answer on error itself (stale-if-error in its Cache-Control, RFC 5861 §4).
 */
function storeMayAnswer(ctx: RoutedContext): boolean {
  const h = ctx.req.headers;
  if ((ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') || h.authorization !== undefined) return false;
  const cc = String(h['cache-control'] ?? '').toLowerCase();
  if (/\bstale-if-error\b/.test(cc)) return true;
  return !/\b(no-cache|no-store|max-age=0)\b/.test(cc) && !/no-cache/i.test(String(h.pragma ?? ''));
}

/**
 * The gateway is about to answer a 502, 503 or 504 (an upstream failing, every host down, or
 * the request shed): a stored copy that may stand in is served instead, saying in
 * Cache-Status that it is stale and in Proxy-Status which error it hid. Returns whether it was.
 */
export function standInForError(ctx: RoutedContext, kind: FailureKindName, receivedStatus?: number): boolean {
  const state = ctx.cache;
  const cache = ctx.route.cache;
  if (cache === undefined || ctx.res.headersSent || !storeMayAnswer(ctx)) return false;
  const status = receivedStatus ?? FAILURES[kind].status;
  if (status !== 502 && status !== 503 && status !== 504) return false;
  if (kind === 'maintenance') return false;
  const key = state?.key ?? cache.keyOf(ctx.authority, ctx.req.url!);
  const stored =
    state?.stored !== undefined && cache.mayStandIn(state.stored) ? state.stored : cache.standIn(key, ctx.req.headers);
  if (stored === undefined) return false;
  state?.fill?.abandon();
  const client = state?.fill?.client ?? ctx.res;
  const policy = stored.policy;
  const age = Math.round(policy.age());
  const proxyStatus = serializeProxyStatus({
    proxy: cache.proxyName,
    error: receivedStatus === undefined ? FAILURES[kind].error : undefined,
    receivedStatus,
    details: `a stored copy ${age} s old stood in for this error (stale-if-error)`,
  });
  cache.counters.staleForErrors++;
  ctx.stoodInFor = kind;
  const facts: CacheStatusFacts = {
    fwd: 'stale',
    fwdStatus: receivedStatus,
    ttl: policy.maxAge() - policy.age(),
    detail: receivedStatus === undefined ? FAILURES[kind].error : undefined,
  };
  answerFromStore(ctx, client, cache, stored, 'stale-if-error', facts, proxyStatus);
  return true;
}

/**
 * The upstream answered 304 to the validators the cache sent: the stale copy is current again,
 * refreshed with the 304's fields, and served. A 304 naming another version (a different
 * validator) leaves nothing else to send — the client did not ask a conditional question —
 * so the copy is served this once and forgotten.
 */
export function revalidated(
  ctx: RoutedContext,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): boolean {
  const state = ctx.cache;
  if (state?.stored === undefined || state.validators === undefined || state.fill === undefined) return false;
  const { cache, stored, fill } = state;
  const policy = afterNotModified(stored, state.request, headers);
  if (policy === undefined) {
    fill.abandon();
    cache.store.delete(state.key, stored);
    answerFromStore(ctx, fill.client, cache, stored, 'revalidated', {
      fwd: 'stale',
      fwdStatus: 304,
      detail: 'validator changed',
    });
    return true;
  }
  cache.refresh(state.key, stored, policy, fill);
  answerFromStore(ctx, fill.client, cache, stored, 'revalidated', {
    fwd: 'stale',
    fwdStatus: 304,
    ttl: policy.maxAge() - policy.age(),
  });
  return true;
}

/** The request is over: a waiter stops waiting, an unfinished fill lets its waiters go. */
export function leaveCache(ctx: RoutedContext): void {
  const state = ctx.cache;
  if (state === undefined) return;
  if (state.waiting !== undefined) {
    clearTimeout(state.waiting.timer);
    state.cache.stopWaiting(state.key, state.waiting.waiter);
  }
  state.fill?.abandon();
}
