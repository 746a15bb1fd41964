/**
 * Everything a request needs from the gateway, built once per configuration. A reload
 * builds a new Runtime and swaps it in; requests already under way finish on the one they
 * started with.
 */
import type { EventLoopGuard } from '../admission/event-loop-guard.js';
import type { ConcurrencyGate } from '../admission/concurrency-gate.js';
import type { Maintenance } from '../admission/maintenance.js';
import type { GatewayConfig } from '../config/schema.js';
import type { LineDestination } from '../observe/log-sink.js';
import type { Logger } from '../observe/logger.js';
import type { GateState, GatewayMetrics } from '../observe/metrics.js';
import { Route, Router } from '../route/router.js';
import { UpstreamPool, type PoolEvents } from '../upstream/pool.js';

export interface Runtime {
  readonly config: GatewayConfig;
  readonly router: Router;
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly trustedClients: ReadonlySet<string>;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** The JSON line destination for the access log's fast path; absent when pino must format (pretty). */
  readonly lines: LineDestination | undefined;
  /** Maintenance windows and the operator's switch (shared by every runtime of a gateway). */
  readonly maintenance: Maintenance;
  /** Sheds new requests while the process's event loop is held up (shared by every runtime). */
  readonly loopGuard: EventLoopGuard;
  /** True once shutdown began: answers close their connections. */
  draining: boolean;
}

/**
 * Builds the runtime of a configuration. On reload, `previous` hands over what the running
 * one learned: each pool's concurrency limit, and each unchanged rate limit's buckets (so a
 * reload is not a way around a quota).
 */
export function buildRuntime(config: GatewayConfig, metrics: GatewayMetrics, logger: Logger, lines: LineDestination | undefined, maintenance: Maintenance, loopGuard: EventLoopGuard, previous?: Runtime): Runtime {
  const pools = new Map<string, UpstreamPool>();
  const events: PoolEvents = {
    ejected(pool, host, reason, ms) {
      metrics.ejections.with(pool.name, host.label, reason).inc();
      logger.warn({ upstream: pool.name, host: host.label, reason, ms }, 'host ejected');
    },
    healthChanged(pool, host, healthy) {
      metrics.healthTransitions.with(pool.name, host.label, healthy ? 'healthy' : 'unhealthy').inc();
      logger.warn({ upstream: pool.name, host: host.label, healthy }, healthy ? 'host healthy again' : 'host failed its health checks');
    },
  };
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const pool = new UpstreamPool(name, upstream, events);
    for (const h of pool.hosts) h.draining = maintenance.drained.has(`${name}/${h.label}`);
    const before = previous?.pools.get(name)?.gate;
    if (before !== undefined && pool.gate !== undefined) pool.gate.limit.inheritFrom(before.limit);
    pools.set(name, pool);
  }
  const oldRoutes = new Map(previous?.router.routes.map((r) => [r.name, r]));
  const routes = config.routes.map((r) => new Route(r, pools.get(r.upstream)!, oldRoutes.get(r.name ?? r.match.path)));
  return {
    config,
    router: new Router(routes),
    pools,
    trustedClients: new Set(config.errors.trustedClients),
    metrics,
    logger,
    lines,
    maintenance,
    loopGuard,
    draining: false,
  };
}

/** What /metrics and /api/status show of an upstream's concurrency gate. */
export function gateState(upstream: string, gate: ConcurrencyGate): GateState {
  const l = gate.limit;
  return { upstream, limit: l.current, inFlight: gate.inFlight, waiting: gate.waiting, minRttMs: round(l.minRttMs), rttMs: round(l.rttMs), probing: l.probing };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export async function closeRuntime(runtime: Runtime): Promise<void> {
  await Promise.all([...runtime.pools.values()].map((p) => p.close()));
}

/** Starts the background work of a runtime (health checks) and points the metrics at its hosts. */
export function startRuntime(runtime: Runtime): void {
  for (const pool of runtime.pools.values()) pool.start();
  runtime.metrics.hostStates = () => {
    const now = Date.now();
    const out: Array<{ upstream: string; host: string; inRotation: boolean }> = [];
    for (const pool of runtime.pools.values()) for (const h of pool.hosts) out.push({ upstream: pool.name, host: h.label, inRotation: h.available(now) });
    return out;
  };
  runtime.metrics.gateStates = () => {
    const out: GateState[] = [];
    for (const pool of runtime.pools.values()) if (pool.gate) out.push(gateState(pool.name, pool.gate));
    return out;
  };
  runtime.metrics.maintenanceStates = () => runtime.router.routes.map((r) => ({ route: r.name, active: runtime.maintenance.activeFor(runtime.config, r.name) !== undefined }));
}
