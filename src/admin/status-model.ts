/**
 * What the status page and `GET /api/status` say: the overall state, each service (a route
 * and the upstream behind it) healthy, degraded, down or in maintenance with the reason,
 * maintenance now and ahead, the incidents the gateway observed, and — on request — the last
 * hour of request rate, error rate and p99. The public view (the status page on the main
 * listener) leaves out host addresses and the operator's internals.
 */
import { describeGate, PRIORITIES } from '../admission/concurrency-gate.js';
import type { Incident, IncidentDetector } from '../observe/incidents.js';
import type { Timeline, TimelinePoint } from '../observe/timeline.js';
import type { Runtime } from '../runtime.js';

export type ServiceState = 'healthy' | 'degraded' | 'down' | 'maintenance';
export type OverallState = 'operational' | 'degraded' | 'partial_outage' | 'major_outage' | 'maintenance';

export interface StatusSources {
  runtime: Runtime;
  timeline: Timeline;
  incidents: IncidentDetector;
  version: string;
  startedAt: number;
}

/** Error rates that make a service degraded, or down, over the last minute. */
const DEGRADED_RATE = 0.05;
const DOWN_RATE = 0.5;
const RECENT_MS = 60_000;

export function buildStatus(s: StatusSources, opts: { public: boolean; history: boolean }): Record<string, unknown> {
  const { runtime, timeline } = s;
  const now = Date.now();
  const recentSteps = Math.max(1, Math.round(RECENT_MS / timeline.stepMs));
  const services = runtime.router.routes.map((route) => {
    const pool = route.upstream;
    const inRotation = pool.hosts.filter((h) => h.available(now)).length;
    const recent = sum(timeline.series(route.name, recentSteps));
    const rate = recent.requests === 0 ? 0 : recent.errors / recent.requests;
    const maintenance = runtime.maintenance.activeFor(runtime.config, route.name, now);
    const shedding = pool.gate !== undefined && pool.gate.waiting > 0;
    let state: ServiceState = 'healthy';
    let reason: string | undefined;
    if (maintenance) {
      state = 'maintenance';
      reason = maintenance.message ?? 'planned maintenance';
    } else if (inRotation === 0) {
      state = 'down';
      reason = 'no server of the service is in rotation';
    } else if (rate >= DOWN_RATE) {
      state = 'down';
      reason = `${pct(rate)} of requests failed in the last minute (${topCause(recent)})`;
    } else if (rate >= DEGRADED_RATE) {
      state = 'degraded';
      reason = `${pct(rate)} of requests failed in the last minute (${topCause(recent)})`;
    } else if (inRotation < pool.hosts.length) {
      state = 'degraded';
      reason = `${pool.hosts.length - inRotation} of ${pool.hosts.length} servers out of rotation`;
    } else if (shedding) {
      state = 'degraded';
      reason = 'at its concurrency limit: some requests are turned away';
    }
    return {
      name: route.name,
      upstream: pool.name,
      priority: PRIORITIES[route.priority],
      state,
      reason,
      servers: { in_rotation: inRotation, total: pool.hosts.length },
      last_minute: { requests: recent.requests, errors: recent.errors, error_rate: round(rate, 4), p99_ms: recent.p99 },
      maintenance_until: maintenance?.until === undefined ? undefined : new Date(maintenance.until).toISOString(),
    };
  });
  const body: Record<string, unknown> = {
    name: runtime.config.name,
    generated_at: new Date(now).toISOString(),
    overall: overallOf(services.map((x) => x.state)),
    services,
    maintenance: maintenanceOf(runtime, now),
    incidents: s.incidents.list().map((i) => incidentJson(i)),
  };
  if (!opts.public) {
    body.version = s.version;
    body.uptime_s = Math.round((now - s.startedAt) / 1000);
    body.draining = runtime.draining;
    body.routes = runtime.router.routes.map((r) => ({
      name: r.name,
      upstream: r.upstream.name,
      priority: PRIORITIES[r.priority],
    }));
    body.upstreams = [...runtime.pools.values()].map((p) => ({
      name: p.name,
      balance: p.config.balance,
      concurrency: p.gate && describeGate(p.name, p.gate),
      hosts: p.hosts.map((h) => ({
        address: h.label,
        state: h.state(now),
        healthy: h.healthy,
        ejected_until: h.ejectedUntil > now ? new Date(h.ejectedUntil).toISOString() : undefined,
        ejections: h.ejections,
        outstanding: h.outstanding,
        latency_ms: Math.round(h.latency(performance.now()) * 10) / 10,
      })),
    }));
  }
  if (opts.history) body.history = historyOf(timeline);
  return body;
}

/** The whole's series as columns for a chart: time (s), requests/s, error %, p99 ms. */
export function historyOf(timeline: Timeline, points = timeline.series()): Record<string, unknown> {
  const step = timeline.stepMs / 1000;
  return {
    step_s: step,
    t: points.map((p) => p.t / 1000),
    rps: points.map((p) => round(p.requests / step, 2)),
    error_pct: points.map((p) => (p.requests === 0 ? 0 : round((100 * p.errors) / p.requests, 2))),
    p99_ms: points.map((p) => p.p99),
  };
}

function overallOf(states: ServiceState[]): OverallState {
  const down = states.filter((x) => x === 'down').length;
  if (down > 0) return down === states.length ? 'major_outage' : 'partial_outage';
  if (states.includes('degraded')) return 'degraded';
  if (states.includes('maintenance')) return 'maintenance';
  return 'operational';
}

function maintenanceOf(runtime: Runtime, now: number): Record<string, unknown> {
  const o = runtime.maintenance.override;
  const active: Array<Record<string, unknown>> = [];
  if (o.enabled && (o.until === undefined || now < o.until)) {
    active.push({
      routes: o.routes ?? 'all',
      message: o.message,
      until: o.until === undefined ? undefined : new Date(o.until).toISOString(),
    });
  }
  const scheduled: Array<Record<string, unknown>> = [];
  for (const w of runtime.config.maintenance.windows) {
    const entry = {
      routes: w.routes ?? 'all',
      message: w.message,
      start: new Date(w.start).toISOString(),
      end: new Date(w.end).toISOString(),
    };
    if (now >= w.start && now < w.end) active.push({ ...entry, until: entry.end });
    else if (w.start > now) scheduled.push(entry);
  }
  return { active, scheduled };
}

function incidentJson(i: Incident): Record<string, unknown> {
  return {
    id: i.id,
    route: i.route,
    cause: i.cause,
    ongoing: i.end === null,
    start: new Date(i.start).toISOString(),
    end: i.end === null ? null : new Date(i.end).toISOString(),
    errors: i.errors,
    requests: i.requests,
    peak_error_rate: round(i.peakErrorRate, 4),
  };
}

function sum(points: TimelinePoint[]): {
  requests: number;
  errors: number;
  p99: number | null;
  causes: Record<string, number>;
} {
  let requests = 0;
  let errors = 0;
  let p99: number | null = null;
  const causes: Record<string, number> = {};
  for (const p of points) {
    requests += p.requests;
    errors += p.errors;
    if (p.p99 !== null) p99 = Math.max(p99 ?? 0, p.p99);
    for (const [k, v] of Object.entries(p.causes)) causes[k] = (causes[k] ?? 0) + v;
  }
  return { requests, errors, p99, causes };
}

function topCause(r: { causes: Record<string, number> }): string {
  return Object.entries(r.causes).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'unknown';
}

function pct(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
