/**
 * The gateway's Prometheus metrics, on a registry of its own so several gateways can live
 * in one process. Per-request families use the lightweight series of ./series.ts; the
 * registry formats them, with prom-client's own metrics, when /metrics is scraped.
 */
import { Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { GateState } from '../admission/concurrency-gate.js';
import { IncidentDetector, type Incident } from './incidents.js';
import type { RequestObserver, RequestRecord } from './record.js';
import { FastCounter, FastHistogram, type RegistrableMetric } from './series.js';
import { Timeline } from './timeline.js';

/**
 * The protocol label, ALPN names: four values at most, so splitting a route's series by it
 * keeps their number bounded (routes × 4).
 */
function protocolLabel(httpVersion: string, scheme: 'http' | 'https'): string {
  if (httpVersion === '2.0') return scheme === 'https' ? 'h2' : 'h2c';
  return httpVersion === '1.0' ? 'http/1.0' : 'http/1.1';
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface HostState {
  upstream: string;
  host: string;
  inRotation: boolean;
}
export interface PoolSize {
  upstream: string;
  hosts: number;
}
export interface MaintenanceState {
  route: string;
  active: boolean;
}
export interface CacheSize {
  route: string;
  bytes: number;
  entries: number;
}

/** What the gauges read at scrape time: the gateway's current configuration, whichever it is. */
export interface MetricSources {
  hostStates(): HostState[];
  /** Hosts per upstream (a discovered pool's change with its records). */
  poolSizes(): PoolSize[];
  gateStates(): GateState[];
  maintenanceStates(): MaintenanceState[];
  cacheStates(): CacheSize[];
  /** The HTTPS listeners' certificates. */
  certificates(): ReadonlyArray<{ listener: string; names: readonly string[]; notAfter: Date }>;
  /** The shared store's state; undefined when state stays in this process. */
  store?(): { kind: string; reachable: boolean; pendingWrites: number } | undefined;
}

export interface MetricsOptions {
  /** Collect Node process metrics (off lets several gateways share a process quietly). */
  processMetrics: boolean;
  /** The status timeline's step. */
  statusStepMs: number;
  /** Called when an incident opens or closes. */
  onIncident(incident: Incident, opened: boolean): void;
}

export class GatewayMetrics implements RequestObserver {
  readonly registry = new Registry();
  /** Requests being handled now; a plain number on the hot path, read by the gauge at scrape time. */
  inFlight = 0;
  private readonly requests = new FastCounter(
    'gangway_requests_total',
    'Requests answered, by route, status and failure kind ("" when none)',
    ['route', 'status', 'failure'],
  );
  private readonly outcomes = new FastCounter(
    'gangway_request_outcomes_total',
    'Requests by what their end meant to the client: ok, failed (5xx), cut (the ' +
      'answer broke part way), shed (503 with Retry-After at a limit), maintenance, ' +
      'client (its own error, or it left)',
    ['route', 'outcome'],
  );
  private readonly protocols = new FastCounter(
    'gangway_requests_by_protocol_total',
    "Requests by route and the client's protocol: http/1.0, http/1.1, h2 (HTTP/2 over TLS) or h2c (in cleartext)",
    ['route', 'protocol'],
  );
  private readonly cacheResults = new FastCounter(
    'gangway_cache_requests_total',
    'Requests on cached routes by what the cache did: hit, collapsed (answered ' +
      "by another request's fetch), stale-while-revalidate, revalidated, stale-if-error, " +
      'or why it went upstream (uri-miss, vary-miss, stale, request, method, bypass)',
    ['route', 'result'],
  );
  private readonly prevented = new FastCounter(
    'gangway_errors_prevented_total',
    'Errors a stored copy stood in for (stale-if-error), by route and the failure kind it hid',
    ['route', 'failure'],
  );
  private readonly firstByte = new FastHistogram(
    'gangway_response_first_byte_seconds',
    "Time from request to the response's status and headers (time to first byte), by route",
    ['route'],
    LATENCY_BUCKETS,
  );
  private readonly requestDuration = new FastHistogram(
    'gangway_request_duration_seconds',
    "Time from request to the end of the response, by route and the client's protocol (as in " +
      'gangway_requests_by_protocol_total)',
    ['route', 'protocol'],
    LATENCY_BUCKETS,
  );
  private readonly attempts = new FastCounter(
    'gangway_upstream_attempts_total',
    'Attempts sent to upstream hosts, by outcome ("ok" or a failure kind)',
    ['upstream', 'host', 'outcome'],
  );
  readonly retries = new FastCounter(
    'gangway_retries_total',
    'Retries sent to another host, by upstream and the failure kind that caused them',
    ['upstream', 'reason'],
  );
  readonly retriesDenied = new FastCounter(
    'gangway_retries_denied_total',
    'Retries not sent, by upstream and why (budget, no_host, attempts, unsafe)',
    ['upstream', 'why'],
  );
  readonly hedges = new FastCounter('gangway_hedges_total', 'Second attempts started for slow idempotent requests', [
    'upstream',
  ]);
  readonly hedgesWon = new FastCounter(
    'gangway_hedges_won_total',
    'Hedged attempts that answered before the first attempt',
    ['upstream'],
  );
  readonly resumes = new FastCounter(
    'gangway_resumes_total',
    'Broken responses resumed from another host with Range, by outcome (started; ' +
      'failed: no host could resume; completed: the client got the whole body)',
    ['upstream', 'outcome'],
  );
  readonly ejections = new FastCounter(
    'gangway_ejections_total',
    'Hosts taken out of rotation by outlier detection, by reason',
    ['upstream', 'host', 'reason'],
  );
  readonly healthTransitions = new FastCounter(
    'gangway_health_transitions_total',
    'Active health check state changes, by new state',
    ['upstream', 'host', 'state'],
  );
  readonly shed = new FastCounter(
    'gangway_shed_total',
    'Requests shed with 503 connection_limit_reached, by route and reason (queue_full, wait_too_long, deadline, event_loop)',
    ['route', 'reason'],
  );
  readonly rateLimited = new FastCounter(
    'gangway_rate_limited_total',
    "Requests answered 429 by a route's rate limit",
    ['route'],
  );
  readonly acme = new FastCounter(
    'gangway_acme_certificates_total',
    'What became of automatic (ACME) certificates, by name: obtained (first order), renewed, ' +
      'reused (a stored one served at start), failed (an attempt that will be retried with backoff)',
    ['name', 'outcome'],
  );
  readonly queueWait = new FastHistogram(
    'gangway_queue_wait_seconds',
    'Time requests waited for a concurrency slot before going upstream, by upstream (only those that waited)',
    ['upstream'],
    LATENCY_BUCKETS,
  );
  readonly storeErrors = new FastCounter(
    'gangway_store_errors_total',
    'Calls to the shared state store that failed or missed their deadline, by operation (the gateway went ' +
      'on from its local view)',
    ['op'],
  );
  readonly http2SentAway = new FastCounter(
    'gangway_http2_connections_sent_away_total',
    'Client HTTP/2 connections the gateway ended for misbehaving, by reason: ping_settings_flood, ' +
      'unread_acks (a flood whose ACKs the client does not read), continuation_flood, invalid_frames ' +
      '(empty frames, streams past the limit), protocol_error (rapid resets among others)',
    ['reason'],
  );
  readonly discoveryResolutions = new FastCounter(
    'gangway_discovery_resolutions_total',
    "DNS resolutions of upstreams' discovered hosts, by result: ok, failed (a query " +
      'failed: its last good answer was kept), empty (no records at all: the last good set was kept)',
    ['upstream', 'result'],
  );
  private readonly attemptDuration = new FastHistogram(
    'gangway_upstream_attempt_duration_seconds',
    'Time from sending an attempt to receiving its response headers',
    ['upstream', 'host'],
    LATENCY_BUCKETS,
  );

  /** The last hour per route, for the status page. */
  readonly timeline: Timeline;
  readonly incidents: IncidentDetector;

  constructor(sources: MetricSources, options: MetricsOptions) {
    this.timeline = new Timeline(options.statusStepMs);
    this.incidents = new IncidentDetector(this.timeline, options.onIncident);
    for (const m of [
      this.requests,
      this.outcomes,
      this.protocols,
      this.cacheResults,
      this.prevented,
      this.requestDuration,
      this.firstByte,
      this.attempts,
      this.attemptDuration,
      this.retries,
      this.retriesDenied,
      this.hedges,
      this.hedgesWon,
      this.resumes,
      this.ejections,
      this.healthTransitions,
      this.shed,
      this.rateLimited,
      this.acme,
      this.queueWait,
      this.storeErrors,
      this.http2SentAway,
      this.discoveryResolutions,
    ])
      this.register(m);
    const metrics = this;
    new Gauge({
      name: 'gangway_upstream_host_in_rotation',
      help: '1 when a host is in rotation (healthy and not ejected), else 0',
      labelNames: ['upstream', 'host'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sources.hostStates()) this.set({ upstream: s.upstream, host: s.host }, s.inRotation ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gangway_upstream_hosts',
      help: 'Hosts in each upstream: its list, or those DNS discovery found (in rotation or not)',
      labelNames: ['upstream'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sources.poolSizes()) this.set({ upstream: s.upstream }, s.hosts);
      },
    });
    new Gauge({
      name: 'gangway_requests_in_flight',
      help: 'Requests being handled right now',
      registers: [this.registry],
      collect() {
        this.set(metrics.inFlight);
      },
    });
    new Gauge({
      name: 'gangway_maintenance_active',
      help: '1 while a route is in maintenance (a window or the admin switch), else 0',
      labelNames: ['route'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sources.maintenanceStates()) this.set({ route: s.route }, s.active ? 1 : 0);
      },
    });
    const gauge = (name: string, help: string, read: (s: GateState) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['upstream'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const s of sources.gateStates()) this.set({ upstream: s.upstream }, read(s));
        },
      });
    };
    gauge(
      'gangway_concurrency_limit',
      'The adaptive concurrency limit of each upstream: requests that may wait for its answers at once',
      (s) => s.limit,
    );
    gauge(
      'gangway_concurrency_in_use',
      'Requests holding a concurrency slot (waiting for response headers), by upstream',
      (s) => s.inFlight,
    );
    for (const [name, help, read] of [
      ['gangway_cache_bytes', "Bytes held by each route's cache", (s: CacheSize) => s.bytes],
      [
        'gangway_cache_entries',
        "Responses held by each route's cache (variants counted apart)",
        (s: CacheSize) => s.entries,
      ],
    ] as const) {
      new Gauge({
        name,
        help,
        labelNames: ['route'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const s of sources.cacheStates()) this.set({ route: s.route }, read(s));
        },
      });
    }
    new Gauge({
      name: 'gangway_certificate_expiry_seconds',
      help: "Seconds until each HTTPS listener's certificate expires (negative once expired), by listener and name",
      labelNames: ['listener', 'name'],
      registers: [this.registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const c of sources.certificates())
          for (const name of c.names)
            this.set({ listener: c.listener, name }, Math.round((c.notAfter.getTime() - now) / 1000));
      },
    });
    new Gauge({
      name: 'gangway_store_up',
      help:
        '1 while the shared state store answers, 0 while it is unreachable (rate limits use a local share, ' +
        'the last known maintenance state holds), by kind; absent without a store',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        this.reset();
        const s = sources.store?.();
        if (s !== undefined) this.set({ kind: s.kind }, s.reachable ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gangway_store_pending_writes',
      help: 'Changes (maintenance, drains, incidents) waiting for the shared state store to answer again',
      registers: [this.registry],
      collect() {
        this.set(sources.store?.()?.pendingWrites ?? 0);
      },
    });
    gauge('gangway_queue_depth', 'Requests waiting for a concurrency slot, by upstream', (s) => s.waiting);
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'gangway_' });
  }

  requestFinished(r: RequestRecord): void {
    const route = r.route ?? '';
    this.requests.with(route, String(r.status), r.failure ?? '').inc();
    this.outcomes.with(route, r.outcome).inc();
    const protocol = protocolLabel(r.httpVersion, r.scheme);
    this.protocols.with(route, protocol).inc();
    if (r.cache !== undefined) this.cacheResults.with(route, r.cache).inc();
    if (r.stoodInFor !== undefined) this.prevented.with(route, r.stoodInFor).inc();
    if (r.resumes > 0 && r.outcome === 'ok') this.resumes.with(r.upstream ?? '', 'completed').inc();
    this.requestDuration.with(route, protocol).observe(r.ms / 1000);
    if (r.ttfbMs !== undefined) this.firstByte.with(route).observe(r.ttfbMs / 1000);
    // Responsiveness is the time to the answer's headers: a two-hour stream is not a slow answer.
    this.timeline.record(
      route,
      r.outcome,
      r.failure ?? (r.status >= 500 ? `status_${r.status}` : ''),
      r.ttfbMs ?? r.ms,
      r.stoodInFor !== undefined,
    );
  }

  /** Requests answered since start, all routes and statuses (read rarely: sums the series). */
  requestsAnswered(): number {
    let n = 0;
    for (const v of this.requests.get().values) n += v.value;
    return n;
  }

  /**
   * A discovered host left its records and closed: its series go with it. Addresses change with
   * every deploy behind DNS, and series kept for each would grow without bound.
   */
  forgetHost(upstream: string, host: string): void {
    const match = { upstream, host };
    this.attempts.forget(match);
    this.attemptDuration.forget(match);
    this.ejections.forget(match);
    this.healthTransitions.forget(match);
  }

  attemptDone(upstream: string, host: string, outcome: string, secondsToHeaders: number | undefined): void {
    this.attempts.with(upstream, host, outcome).inc();
    if (secondsToHeaders !== undefined) this.attemptDuration.with(upstream, host).observe(secondsToHeaders);
  }

  private register(metric: RegistrableMetric): void {
    this.registry.registerMetric(metric as unknown as Metric);
  }
}
