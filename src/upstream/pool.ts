/**
 * An upstream: a named pool of interchangeable hosts with its balancer, health checker,
 * outlier detector and retry budget, each a separate object with its own settings.
 */
import { ConcurrencyGate } from '../admission/concurrency-gate.js';
import type { UpstreamConfig } from '../config/schema.js';
import { createBalancer, type Balancer } from './balancer.js';
import { HealthChecker } from './health-check.js';
import { UpstreamHost } from './host.js';
import { OutlierDetector } from './outlier.js';
import { LatencyWindow } from './latency-window.js';
import { RetryBudget } from './retry-budget.js';

/** How long a pool with no host in rotation is still sent every request after its last answer. */
const TRUST_ANSWERS_FOR_MS = 10_000;
/** Then: one request per this long goes through, to find out whether the hosts are back. */
const PROBE_EVERY_MS = 1000;

export interface PoolEvents {
  ejected(pool: UpstreamPool, host: UpstreamHost, reason: string, ms: number): void;
  healthChanged(pool: UpstreamPool, host: UpstreamHost, healthy: boolean): void;
}

export class UpstreamPool {
  readonly hosts: UpstreamHost[];
  readonly outliers: OutlierDetector;
  readonly budget: RetryBudget;
  /** Recent time-to-headers of the pool's attempts, for the hedging delay. */
  readonly latency: LatencyWindow;
  /** The adaptive concurrency limit and its queue; undefined when turned off. */
  readonly gate: ConcurrencyGate | undefined;
  private readonly balancer: Balancer;
  /** Below this share of hosts in rotation (in %), traffic spreads over all of them. */
  private readonly panicThreshold: number;
  private readonly health: HealthChecker;
  private readonly candidates: UpstreamHost[] = [];
  /** When an attempt last got an answer below 500 (ms since epoch). */
  private lastAnswerAt = 0;
  /** When a request last went to a pool with no host in rotation. */
  private lastProbeAt = 0;

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
    events: PoolEvents,
    /** The configuration's referenced files (TLS material), by path as written. */
    files: ReadonlyMap<string, string> = new Map(),
  ) {
    this.hosts = config.hosts.map((h) => new UpstreamHost(h, config, files));
    this.balancer = createBalancer(config.balance);
    this.outliers = new OutlierDetector(this.hosts, config.outlierDetection, (host, reason, ms) =>
      events.ejected(this, host, reason, ms),
    );
    this.health = new HealthChecker(this.hosts, config.healthCheck, (host, healthy) =>
      events.healthChanged(this, host, healthy),
    );
    this.budget = new RetryBudget(config.retries.budget, config.retries.minPerSecond);
    this.latency = new LatencyWindow(config.hedging.percentile);
    const c = config.concurrency;
    this.gate = c.enabled ? new ConcurrencyGate(c) : undefined;
    this.panicThreshold = config.panicThreshold;
  }

  start(): void {
    this.health.start();
  }

  /** An attempt got an answer below 500 from one of the hosts: the pool is alive. */
  noteAnswer(now = Date.now()): void {
    this.lastAnswerAt = now;
  }

  /**
   * With no host in rotation, requests still go to the hosts — the health checks may be what
   * is wrong — as long as one of them answered lately. Once none has for a while, only one
   * request a second is let through to find out, and the others are answered 503 at once
   * instead of each waiting out a timeout on a fleet that is down.
   */
  private mayTryOutOfRotation(now: number): boolean {
    if (now - this.lastAnswerAt < TRUST_ANSWERS_FOR_MS) return true;
    if (now - this.lastProbeAt < PROBE_EVERY_MS) return false;
    this.lastProbeAt = now;
    return true;
  }

  /** Stops the health checks (a reload replaced this pool); requests under way carry on. */
  stopChecks(): void {
    this.health.stop();
  }

  /**
   * The host for the next attempt, never one in `exclude` (hosts this request already
   * tried); undefined when none is left. When too few hosts are in rotation the pool
   * panics and spreads traffic over all of them rather than crush the survivors.
   */
  pick(exclude?: ReadonlySet<UpstreamHost>, now = Date.now()): UpstreamHost | undefined {
    const candidates = this.candidates;
    candidates.length = 0;
    let inRotation = 0;
    for (const h of this.hosts) {
      if (!h.available(now)) continue;
      inRotation++;
      if (exclude === undefined || !exclude.has(h)) candidates.push(h);
    }
    const panic = inRotation * 100 < this.hosts.length * this.panicThreshold;
    if (!panic && candidates.length > 0) return this.balancer.pick(candidates);
    if (inRotation === 0 && !this.mayTryOutOfRotation(now)) return undefined;
    // Panic, or every host in rotation was tried already: any host not yet tried will do,
    // except one an operator is draining.
    candidates.length = 0;
    for (const h of this.hosts) if (!h.draining && (exclude === undefined || !exclude.has(h))) candidates.push(h);
    return this.balancer.pick(candidates);
  }

  async close(): Promise<void> {
    this.health.stop();
    this.gate?.close();
    await Promise.all(this.hosts.map((h) => h.close()));
  }
}
