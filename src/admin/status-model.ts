/**
 * What the status page and `GET /api/status` say: the overall state, each service (a route,
 * under the name listeners know it by) healthy, busy, degraded, down or in maintenance with
 * the reason, maintenance now and ahead, the incidents the gateway observed, and — on request
 * — the last hour of request rate, failures, requests asked to retry later, and the p99 time
 * to first byte. Failures are what a listener saw break (observe/outcome.ts); a request shed
 * at a limit with Retry-After is counted apart, and a service that sheds many is "busy", not
 * failing. The public view (the status page on the main listener) leaves out upstream names,
 * host counts and addresses; the operator's view keeps them.
 */
import type { RouteCache } from '../cache/route-cache.js';
import { daysLeft, EXPIRY_WARNING_DAYS } from '../listen/certificate.js';
import { describeGate, PRIORITIES } from '../admission/concurrency-gate.js';
import { text } from '../explain/catalogue.js';
import { formatMessage } from '../explain/message.js';
import type { Incident, IncidentDetector } from '../observe/incidents.js';
import type { TimelinePoint, TimelineView } from '../observe/timeline.js';
import type { Runtime } from '../runtime.js';
import type { StoreHealth } from '../state/link.js';

export type ServiceState = 'healthy' | 'busy' | 'degraded' | 'down' | 'maintenance';
export type OverallState = 'operational' | 'busy' | 'degraded' | 'partial_outage' | 'major_outage' | 'maintenance';
/** Why a service is not healthy; the page words each one in the reader's language. */
export type ReasonCode = 'maintenance' | 'no_servers' | 'failing' | 'servers_out' | 'reduced' | 'shedding' | 'queueing';

export interface StatusSources {
  runtime: Runtime;
  /** This process's timeline, or the fleet's (every process sharing the state store). */
  timeline: TimelineView;
  incidents: IncidentDetector;
  version: string;
  startedAt: number;
  /** The shared state store's health; undefined when state stays in this process. */
  store?: () => StoreHealth | undefined;
}

export interface ServiceStatus {
  /** The route's name: what maintenance windows and incidents refer to. */
  name: string;
  /** What listeners call the service (routes[].title), else the route's name. */
  title: string;
  state: ServiceState;
  /** The reason in English, for programs; the page words `reason_code` in the reader's language. */
  reason?: string;
  reason_code?: ReasonCode;
  last_minute: {
    requests: number;
    /** Answers that failed or broke off (failed + cut). */
    errors: number;
    /** Requests turned away at once with Retry-After: asked to retry later. */
    shed: number;
    /** Errors prevented: a stored copy answered in place of a 502/503/504. */
    prevented: number;
    error_rate: number;
    shed_rate: number;
    /** The failure kind behind most errors. */
    top_failure?: string;
    ttfb_p99_ms: number | null;
  };
  maintenance_until?: string;
  /** The operator's own words for the maintenance. */
  maintenance_message?: string;
  /** The operator's view only. */
  upstream?: string;
  priority?: string;
  servers?: { in_rotation: number; total: number };
}

export interface MaintenanceStatus {
  routes: readonly string[] | 'all';
  message?: string;
  start?: string;
  end?: string;
  until?: string;
}

export interface IncidentStatus {
  id: number;
  route: string;
  /** The service's title, as the services list shows it. */
  service: string;
  cause: string;
  ongoing: boolean;
  start: string;
  end: string | null;
  errors: number;
  requests: number;
  peak_error_rate: number;
}

/** The whole gateway's last hour as chart columns. */
export interface StatusHistory {
  step_s: number;
  /** Start of each step, seconds since the epoch. */
  t: number[];
  rps: number[];
  /** Failed and cut answers, % of requests. */
  error_pct: number[];
  /** Asked to retry later (shed), % of requests. */
  shed_pct: number[];
  ttfb_p99_ms: Array<number | null>;
  /**
   * Present (true) while the state store is unreachable: the other instances' steps since then
   * are missing here, and are filled in once it answers again.
   */
  partial?: true;
}

export interface StatusReport {
  name: string;
  generated_at: string;
  overall: OverallState;
  services: ServiceStatus[];
  maintenance: { active: MaintenanceStatus[]; scheduled: MaintenanceStatus[] };
  incidents: IncidentStatus[];
  history?: StatusHistory;
  /** The operator's view only. */
  version?: string;
  uptime_s?: number;
  certificates?: Array<{
    listener: string;
    names: string[];
    not_after: string;
    days_left: number;
    expires_soon: boolean;
  }>;
  draining?: boolean;
  /** Where shared state lives: "local" (this process), or a store and whether it answers. */
  store?: {
    kind: string;
    reachable: boolean;
    since?: string;
    last_error?: string;
    instances?: number;
    pending_writes?: number;
  };
  routes?: Array<{
    name: string;
    title?: string;
    upstream: string;
    priority?: string;
    cache?: Record<string, number | null>;
  }>;
  upstreams?: Array<Record<string, unknown>>;
  /** The operator's view, when workers share the listeners: each worker's state and traffic. */
  workers?: Array<{
    worker: number;
    pid: number | undefined;
    state: string;
    answered_by: true | undefined;
    started_at: string;
    restarts: number;
    /** Requests this worker answered since it started (undefined: it did not report in time). */
    requests: number | undefined;
    in_flight: number | undefined;
    rss_bytes: number | undefined;
  }>;
}

/** Shares of the last minute's requests that make a service degraded, down, or busy. */
const DEGRADED_RATE = 0.05;
const DOWN_RATE = 0.5;
const BUSY_RATE = 0.05;
const RECENT_MS = 60_000;

export function buildStatus(s: StatusSources, opts: { public: boolean; history: boolean }): StatusReport {
  const { runtime, timeline } = s;
  const now = Date.now();
  const recentSteps = Math.max(1, Math.round(RECENT_MS / timeline.stepMs));
  const titles = titlesOf(runtime);
  const services = runtime.router.routes.map((route): ServiceStatus => {
    const pool = route.upstream;
    const inRotation = pool.hosts.filter((h) => h.available(now)).length;
    const recent = sum(timeline.series(route.name, recentSteps));
    const errorRate = recent.requests === 0 ? 0 : recent.errors / recent.requests;
    const shedRate = recent.requests === 0 ? 0 : recent.shed / recent.requests;
    const maintenance = runtime.maintenance.activeFor(runtime.config, route.name, now);
    const servers = { in_rotation: inRotation, total: pool.hosts.length };
    let state: ServiceState = 'healthy';
    let code: ReasonCode | undefined;
    if (maintenance) [state, code] = ['maintenance', 'maintenance'];
    else if (inRotation === 0) [state, code] = ['down', 'no_servers'];
    else if (errorRate >= DOWN_RATE) [state, code] = ['down', 'failing'];
    else if (errorRate >= DEGRADED_RATE) [state, code] = ['degraded', 'failing'];
    else if (inRotation < pool.hosts.length) [state, code] = ['degraded', opts.public ? 'reduced' : 'servers_out'];
    else if (shedRate >= BUSY_RATE) [state, code] = ['busy', 'shedding'];
    else if (pool.gate !== undefined && pool.gate.waiting > 0) [state, code] = ['busy', 'queueing'];
    const service: ServiceStatus = {
      name: route.name,
      title: titles.get(route.name) ?? route.name,
      state,
      reason_code: code,
      last_minute: {
        requests: recent.requests,
        errors: recent.errors,
        shed: recent.shed,
        prevented: recent.prevented,
        error_rate: round(errorRate, 4),
        shed_rate: round(shedRate, 4),
        top_failure: topCause(recent),
        ttfb_p99_ms: recent.ttfbP99,
      },
      maintenance_until: maintenance?.until === undefined ? undefined : new Date(maintenance.until).toISOString(),
      maintenance_message: maintenance?.message,
    };
    if (!opts.public) {
      service.upstream = pool.name;
      service.priority = PRIORITIES[route.priority];
      service.servers = servers;
    }
    service.reason = reasonText(service, 'en', (key) => text('en', key), servers);
    return service;
  });
  const body: StatusReport = {
    name: runtime.config.name,
    generated_at: new Date(now).toISOString(),
    overall: overallOf(services.map((x) => x.state)),
    services,
    maintenance: maintenanceOf(runtime, now),
    incidents: s.incidents.list().map((i) => incidentJson(i, titles)),
  };
  if (!opts.public) {
    body.version = s.version;
    body.uptime_s = Math.round((now - s.startedAt) / 1000);
    body.draining = runtime.draining;
    const store = s.store?.();
    body.store =
      store === undefined
        ? { kind: 'local', reachable: true }
        : {
            kind: store.kind,
            reachable: store.reachable,
            since: new Date(store.since).toISOString(),
            last_error: store.lastError,
            instances: store.instances,
            pending_writes: store.pendingWrites,
          };
    body.certificates = runtime.certificates.map((c) => {
      const days = daysLeft(c, now);
      return {
        listener: c.listener,
        names: c.names,
        not_after: c.notAfter.toISOString(),
        days_left: days,
        expires_soon: days < EXPIRY_WARNING_DAYS,
      };
    });
    body.routes = runtime.router.routes.map((r) => ({
      name: r.name,
      title: titles.get(r.name),
      upstream: r.upstream.name,
      priority: PRIORITIES[r.priority],
      cache: r.cache === undefined ? undefined : cacheJson(r.cache.stats()),
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
        weight: h.weight === 1 ? undefined : h.weight,
      })),
      // Hosts found in DNS: when the name last resolved, the last error, hosts gone but still finishing.
      discovery: p.discovery && {
        ...p.discovery.status(now),
        leaving: [...p.leaving.keys()].map((h) => ({ address: h.label, outstanding: h.outstanding })),
      },
    }));
  }
  if (opts.history) {
    body.history = historyOf(timeline);
    if (s.store?.()?.reachable === false) body.history.partial = true;
  }
  return body;
}

/**
 * A service's reason in `lang`, from its code and counts: the one wording the JSON (English,
 * with the failure kind's token) and the page (the reader's language) both use. `cause` words
 * the failure kind; `servers` is needed for "servers_out" only, which the public view never has.
 */
export function reasonText(
  service: ServiceStatus,
  lang: string,
  words: (key: `status.reason.${ReasonCode}`) => string,
  servers = service.servers,
  cause: (kind: string) => string = (kind) => kind,
): string | undefined {
  const code = service.reason_code;
  if (code === undefined) return undefined;
  if (code === 'maintenance' && service.maintenance_message !== undefined) return service.maintenance_message;
  const m = service.last_minute;
  return formatMessage(lang, words(`status.reason.${code}`), {
    rate: percent(lang, m.error_rate),
    cause: cause(m.top_failure ?? 'unknown'),
    shed: m.shed,
    out: servers === undefined ? 0 : servers.total - servers.in_rotation,
    total: servers?.total ?? 0,
  });
}

/** A share (0…1) as a percentage in `lang`: "33.3%", "33,3 %". */
export function percent(lang: string, share: number): string {
  try {
    return new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 1 }).format(share);
  } catch {
    return `${Math.round(share * 1000) / 10}%`;
  }
}

/** The whole's series as columns for a chart: time (s), requests/s, failed %, shed %, TTFB p99 ms. */
export function historyOf(timeline: TimelineView, points = timeline.series()): StatusHistory {
  const step = timeline.stepMs / 1000;
  const share = (n: number, of: number): number => (of === 0 ? 0 : round((100 * n) / of, 2));
  return {
    step_s: step,
    t: points.map((p) => p.t / 1000),
    rps: points.map((p) => round(p.requests / step, 2)),
    error_pct: points.map((p) => share(p.errors, p.requests)),
    shed_pct: points.map((p) => share(p.shed, p.requests)),
    ttfb_p99_ms: points.map((p) => p.ttfbP99),
  };
}

/** Route name → the title listeners know it by, for the routes that have one. */
function titlesOf(runtime: Runtime): Map<string, string> {
  const titles = new Map<string, string>();
  for (const r of runtime.config.routes) if (r.title !== undefined) titles.set(r.name ?? r.match.path, r.title);
  return titles;
}

function overallOf(states: ServiceState[]): OverallState {
  const down = states.filter((x) => x === 'down').length;
  if (down > 0) return down === states.length ? 'major_outage' : 'partial_outage';
  if (states.includes('degraded')) return 'degraded';
  if (states.includes('busy')) return 'busy';
  if (states.includes('maintenance')) return 'maintenance';
  return 'operational';
}

function maintenanceOf(runtime: Runtime, now: number): StatusReport['maintenance'] {
  const o = runtime.maintenance.override;
  const active: MaintenanceStatus[] = [];
  if (o.enabled && (o.until === undefined || now < o.until)) {
    active.push({
      routes: o.routes ?? 'all',
      message: o.message,
      until: o.until === undefined ? undefined : new Date(o.until).toISOString(),
    });
  }
  const scheduled: MaintenanceStatus[] = [];
  for (const w of runtime.config.maintenance.windows) {
    const entry: MaintenanceStatus = {
      routes: w.routes ?? 'all',
      message: w.message,
      start: new Date(w.start).toISOString(),
      end: new Date(w.end).toISOString(),
    };
    if (now >= w.start && now < w.end) active.push({ ...entry, until: entry.end! });
    else if (w.start > now) scheduled.push(entry);
  }
  return { active, scheduled };
}

function incidentJson(i: Incident, titles: ReadonlyMap<string, string>): IncidentStatus {
  return {
    id: i.id,
    route: i.route,
    service: titles.get(i.route) ?? i.route,
    cause: i.cause,
    ongoing: i.end === null,
    start: new Date(i.start).toISOString(),
    end: i.end === null ? null : new Date(i.end).toISOString(),
    errors: i.errors,
    requests: i.requests,
    peak_error_rate: round(i.peakErrorRate, 4),
  };
}

function cacheJson(s: ReturnType<RouteCache['stats']>): Record<string, number | null> {
  return {
    entries: s.entries,
    bytes: s.bytes,
    max_bytes: s.maxBytes,
    hits: s.hits,
    misses: s.misses,
    hit_ratio: s.hitRatio === null ? null : round(s.hitRatio, 4),
    stale_for_errors: s.staleForErrors,
  };
}

interface Totals {
  requests: number;
  errors: number;
  shed: number;
  prevented: number;
  /** The worst step's: an upper bound of the minute's. */
  ttfbP99: number | null;
  causes: Record<string, number>;
}

function sum(points: TimelinePoint[]): Totals {
  const t: Totals = { requests: 0, errors: 0, shed: 0, prevented: 0, ttfbP99: null, causes: {} };
  for (const p of points) {
    t.requests += p.requests;
    t.errors += p.errors;
    t.shed += p.shed;
    t.prevented += p.prevented;
    if (p.ttfbP99 !== null) t.ttfbP99 = Math.max(t.ttfbP99 ?? 0, p.ttfbP99);
    for (const [k, v] of Object.entries(p.causes)) t.causes[k] = (t.causes[k] ?? 0) + v;
  }
  return t;
}

function topCause(r: Totals): string | undefined {
  return Object.entries(r.causes).sort((a, b) => b[1] - a[1])[0]?.[0];
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
