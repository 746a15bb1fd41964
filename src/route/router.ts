/**
 * Matches a request to a route: host (exact or "*.suffix"), path prefix on segment
 * boundaries, and method. Routes are tried in the order written; the first match wins.
 */
import { PRIORITIES } from '../admission/concurrency-gate.js';
import { RateLimiter, type RateLimitStores } from '../admission/rate-limit.js';
import type { RouteConfig } from '../config/schema.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { RouteCache } from '../cache/route-cache.js';
import { resolvePolicy, type RoutePolicy } from './policy.js';

export class Route {
  readonly name: string;
  /** Retries, hedging, timeouts and limits, resolved from the configuration once. */
  readonly policy: RoutePolicy;
  readonly rateLimiter: RateLimiter | undefined;
  /** The route's HTTP cache, when it has one (kept across a reload that leaves its settings alone). */
  readonly cache: RouteCache | undefined;
  /** What the stored answers depend on: the cache's settings, what the route matches and where it sends. */
  private readonly cacheKey: string;
  /** The rate limit's settings, to tell whether a reloaded route may keep the buckets. */
  private readonly rateLimitKey: string;
  /** Index into PRIORITIES: 0 is shed last. */
  readonly priority: number;
  private readonly prefix: string;
  private readonly prefixSlash: string;
  private readonly exactHost: string | undefined;
  private readonly hostSuffix: string | undefined;
  private readonly methods: ReadonlySet<string> | undefined;

  /** `previous`: the route of the same name in the configuration this one replaces. */
  constructor(
    config: RouteConfig,
    readonly upstream: UpstreamPool,
    /** server.requestBuffer: bodies up to it are read whole before going upstream. */
    requestBuffer: number,
    previous?: Route,
    /** The gateway's name, which the cache's Cache-Status members carry. */
    proxyName = 'gangway',
    /** Where rate-limit buckets live when not in this process (the fleet's store). */
    rateLimitStores?: RateLimitStores,
  ) {
    this.name = config.name ?? config.match.path;
    this.policy = resolvePolicy(config, upstream.config, requestBuffer);
    this.priority = PRIORITIES.indexOf(config.priority);
    this.rateLimitKey = JSON.stringify(config.rateLimit ?? null);
    this.rateLimiter =
      previous?.rateLimiter !== undefined && previous.rateLimitKey === this.rateLimitKey
        ? previous.rateLimiter
        : config.rateLimit
          ? new RateLimiter(config.rateLimit, this.name, rateLimitStores?.(config.rateLimit, this.name))
          : undefined;
    // Answers stored from another upstream, or for other URLs, must not outlive a reload.
    this.cacheKey = JSON.stringify([config.cache ?? null, config.upstream, config.match]);
    this.cache =
      config.cache === undefined
        ? undefined
        : previous?.cache !== undefined && previous.cacheKey === this.cacheKey
          ? previous.cache
          : new RouteCache(config.cache, proxyName);
    this.prefix =
      config.match.path.length > 1 && config.match.path.endsWith('/')
        ? config.match.path.slice(0, -1)
        : config.match.path;
    this.prefixSlash = this.prefix === '/' ? '/' : `${this.prefix}/`;
    const host = config.match.host?.toLowerCase();
    if (host?.startsWith('*.')) this.hostSuffix = host.slice(1);
    else this.exactHost = host;
    this.methods = config.match.methods ? new Set(config.match.methods) : undefined;
  }

  matches(host: string, path: string, method: string): boolean {
    if (this.methods && !this.methods.has(method)) return false;
    if (this.exactHost !== undefined && host !== this.exactHost) return false;
    if (this.hostSuffix !== undefined && !(host.endsWith(this.hostSuffix) && host.length > this.hostSuffix.length))
      return false;
    if (this.prefix === '/') return true;
    if (!path.startsWith(this.prefix)) return false;
    if (path.length === this.prefix.length) return true;
    const next = path.charCodeAt(this.prefix.length);
    return next === 0x2f /* / */ || next === 0x3f /* ? */ || path.startsWith(this.prefixSlash);
  }
}

export class Router {
  constructor(readonly routes: readonly Route[]) {}

  /** The first route for this authority (Host, or HTTP/2's :authority), path and method. */
  match(authority: string | undefined, url: string, method: string): Route | undefined {
    const host = authority ? stripPort(authority).toLowerCase() : '';
    for (const route of this.routes) {
      if (route.matches(host, url, method)) return route;
    }
    return undefined;
  }
}

function stripPort(host: string): string {
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
