/**
 * Prometheus metrics (prom-client), on a registry of the gateway's own so several
 * gateways can live in one process. Label children are cached: finding one is a Map
 * lookup, not a label hash, on every request.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Observer { observe(v: number): void }
interface Incrementer { inc(v?: number): void }

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status' | 'failure'>;
  private readonly requestDuration: Histogram<'route'>;
  private readonly attempts: Counter<'upstream' | 'host' | 'outcome'>;
  private readonly attemptDuration: Histogram<'upstream' | 'host'>;
  /** Requests being handled now; a plain number on the hot path, read by the gauge at scrape time. */
  inFlight = 0;
  private readonly requestChildren = new Map<string, Incrementer>();
  private readonly durationChildren = new Map<string, Observer>();
  private readonly attemptChildren = new Map<string, Incrementer>();
  private readonly attemptDurationChildren = new Map<string, Observer>();

  constructor(withProcessMetrics = true) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'gangway_requests_total', help: 'Requests answered, by route, status and failure kind ("" when none)', labelNames: ['route', 'status', 'failure'], registers });
    this.requestDuration = new Histogram({ name: 'gangway_request_duration_seconds', help: 'Time from request to the end of the response, by route', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.attempts = new Counter({ name: 'gangway_upstream_attempts_total', help: 'Attempts sent to upstream hosts, by outcome ("ok" or a failure kind)', labelNames: ['upstream', 'host', 'outcome'], registers });
    this.attemptDuration = new Histogram({ name: 'gangway_upstream_attempt_duration_seconds', help: 'Time from sending an attempt to receiving its response headers', labelNames: ['upstream', 'host'], buckets: LATENCY_BUCKETS, registers });
    const metrics = this;
    new Gauge({ name: 'gangway_requests_in_flight', help: 'Requests being handled right now', registers, collect() { this.set(metrics.inFlight); } });
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'gangway_' });
  }

  requestDone(route: string, status: number, failure: string, seconds: number): void {
    const key = `${route}\u0000${status}\u0000${failure}`;
    let c = this.requestChildren.get(key);
    if (!c) { c = this.requests.labels(route, String(status), failure); this.requestChildren.set(key, c); }
    c.inc();
    let d = this.durationChildren.get(route);
    if (!d) { d = this.requestDuration.labels(route); this.durationChildren.set(route, d); }
    d.observe(seconds);
  }

  attemptDone(upstream: string, host: string, outcome: string, secondsToHeaders: number | undefined): void {
    const key = `${upstream}\u0000${host}\u0000${outcome}`;
    let c = this.attemptChildren.get(key);
    if (!c) { c = this.attempts.labels(upstream, host, outcome); this.attemptChildren.set(key, c); }
    c.inc();
    if (secondsToHeaders === undefined) return;
    const dkey = `${upstream}\u0000${host}`;
    let d = this.attemptDurationChildren.get(dkey);
    if (!d) { d = this.attemptDuration.labels(upstream, host); this.attemptDurationChildren.set(dkey, d); }
    d.observe(secondsToHeaders);
  }
}
