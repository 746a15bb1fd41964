/**
 * Everything a request needs from the gateway, built once per configuration. A reload
 * builds a new Runtime and swaps it in; requests already under way finish on the one they
 * started with.
 */
import type { GatewayConfig } from '../config/schema.js';
import type { LineDestination } from '../observe/log-sink.js';
import type { Logger } from '../observe/logger.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { Route, Router } from '../route/router.js';
import { UpstreamPool } from '../upstream/pool.js';

export interface Runtime {
  readonly config: GatewayConfig;
  readonly router: Router;
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly trustedClients: ReadonlySet<string>;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** The JSON line destination for the access log's fast path; absent when pino must format (pretty). */
  readonly lines: LineDestination | undefined;
  /** True once shutdown began: answers close their connections. */
  draining: boolean;
}

export function buildRuntime(config: GatewayConfig, metrics: GatewayMetrics, logger: Logger, lines: LineDestination | undefined): Runtime {
  const pools = new Map<string, UpstreamPool>();
  for (const [name, upstream] of Object.entries(config.upstreams)) pools.set(name, new UpstreamPool(name, upstream));
  const routes = config.routes.map((r) => new Route(r, pools.get(r.upstream)!));
  return {
    config,
    router: new Router(routes),
    pools,
    trustedClients: new Set(config.errors.trustedClients),
    metrics,
    logger,
    lines,
    draining: false,
  };
}

export async function closeRuntime(runtime: Runtime): Promise<void> {
  await Promise.all([...runtime.pools.values()].map((p) => p.close()));
}
