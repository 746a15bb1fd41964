/**
 * The gateway's Prometheus metrics, on a registry of its own so several gateways can live
 * in one process. Per-request families use the lightweight series of ./series.ts; the
 * registry formats them, with prom-client's own metrics, when /metrics is scraped.
 */
import { Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { FastCounter, FastHistogram, type RegistrableMetric } from './series.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class GatewayMetrics {
  readonly registry = new Registry();
  /** Requests being handled now; a plain number on the hot path, read by the gauge at scrape time. */
  inFlight = 0;
  private readonly requests = new FastCounter('gangway_requests_total', 'Requests answered, by route, status and failure kind ("" when none)', ['route', 'status', 'failure']);
  private readonly requestDuration = new FastHistogram('gangway_request_duration_seconds', 'Time from request to the end of the response, by route', ['route'], LATENCY_BUCKETS);
  private readonly attempts = new FastCounter('gangway_upstream_attempts_total', 'Attempts sent to upstream hosts, by outcome ("ok" or a failure kind)', ['upstream', 'host', 'outcome']);
  private readonly attemptDuration = new FastHistogram('gangway_upstream_attempt_duration_seconds', 'Time from sending an attempt to receiving its response headers', ['upstream', 'host'], LATENCY_BUCKETS);

  constructor(withProcessMetrics = true) {
    for (const m of [this.requests, this.requestDuration, this.attempts, this.attemptDuration]) this.register(m);
    const metrics = this;
    new Gauge({ name: 'gangway_requests_in_flight', help: 'Requests being handled right now', registers: [this.registry], collect() { this.set(metrics.inFlight); } });
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'gangway_' });
  }

  requestDone(route: string, status: number, failure: string, seconds: number): void {
    this.requests.with(route, String(status), failure).inc();
    this.requestDuration.with(route).observe(seconds);
  }

  attemptDone(upstream: string, host: string, outcome: string, secondsToHeaders: number | undefined): void {
    this.attempts.with(upstream, host, outcome).inc();
    if (secondsToHeaders !== undefined) this.attemptDuration.with(upstream, host).observe(secondsToHeaders);
  }

  private register(metric: RegistrableMetric): void {
    this.registry.registerMetric(metric as unknown as Metric);
  }
}
