/**
 * An upstream: a named pool of interchangeable hosts with its balancer, health checker,
 * outlier detector and retry budget, each a separate object with its own settings. The hosts
 * are the configured list, or those a HostDiscovery finds in DNS: discovered hosts join the
 * balancer, health checks and outlier detection as they appear, and hosts that disappear
 * leave rotation at once but keep their connections until the requests under way finish.
 */
import { ConcurrencyGate } from '../admission/concurrency-gate.js';
import type { UpstreamConfig } from '../config/schema.js';
import { createBalancer, type Balancer } from './balancer.js';
import { HostDiscovery, type DiscoveredHost, type DiscoverySink, type ResolutionResult } from './discovery.js';
import { HealthChecker } from './health-check.js';
import { UpstreamHost } from './host.js';
import { OutlierDetector } from './outlier.js';
import { LatencyWindow } from './latency-window.js';
import { RetryBudget } from './retry-budget.js';

/** How long a pool with no host in rotation is still sent every request after its last answer. */
const TRUST_ANSWERS_FOR_MS = 10_000;
/** Then: one request per this long goes through, to find out whether the hosts are back. */
const PROBE_EVERY_MS = 1000;
/** How often hosts that left the records are looked at, to close them once their requests are over. */
const LEAVING_SWEEP_MS = 1000;

export interface PoolEvents {
  ejected(pool: UpstreamPool, host: UpstreamHost, reason: string, ms: number): void;
  healthChanged(pool: UpstreamPool, host: UpstreamHost, healthy: boolean): void;
  /** Discovery changed the hosts: `added` are in the pool already (an operator's drain still applies to them). */
  hostsChanged(pool: UpstreamPool, added: readonly UpstreamHost[], removed: readonly UpstreamHost[]): void;
  /** A host that left the records finished its last request and closed: nothing will be counted for it again. */
  hostClosed(pool: UpstreamPool, host: UpstreamHost): void;
  /** A DNS resolution of this pool's name ended. */
  resolved(pool: UpstreamPool, result: ResolutionResult, error: string | undefined, failures: number): void;
}

export class UpstreamPool implements DiscoverySink {
  /** The hosts in the pool now; discovery changes this array in place (the detectors hold it). */
  readonly hosts: UpstreamHost[];
  /** Finds the hosts in DNS; undefined for a pool with a list of hosts. */
  readonly discovery: HostDiscovery | undefined;
  /** Hosts gone from the records, out of rotation, finishing their requests before they close; when each left. */
  readonly leaving = new Map<UpstreamHost, number>();
  private leavingSweep: NodeJS.Timeout | undefined = undefined;
  /** What a request is told when the pool has no host at all (DNS found none yet). */
  readonly empty: { details: string };
  readonly outliers: OutlierDetector;
  readonly budget: RetryBudget;
  /** Recent time-to-headers of the pool's attempts, for the hedging delay. */
  readonly latency: LatencyWindow;
  /** The adaptive concurrency limit and its queue; undefined when turned off. */
  readonly gate: ConcurrencyGate | undefined;
  private readonly balancer: Balancer;
  private readonly events: PoolEvents;
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
    private readonly files: ReadonlyMap<string, string> = new Map(),
    /** The pool a reload replaces: its discovered hosts carry over when the dns settings did not change. */
    previous?: UpstreamPool,
  ) {
    this.events = events;
    this.empty = { details: `upstream ${name}: no hosts${config.dns ? ' (none found in DNS yet)' : ''}` };
    this.hosts = config.hosts.map((h) => new UpstreamHost(h, config, files));
    if (config.dns !== undefined) {
      const before = HostDiscovery.sameSettings(previous?.config.dns, config.dns) ? previous!.discovery : undefined;
      this.discovery = new HostDiscovery(config.dns, this, before);
      for (const d of this.discovery.hosts) this.hosts.push(this.hostFor(d));
    }
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
    this.discovery?.start();
  }

  /** Settles once the pool knows its hosts: at once for a list, after the first DNS answer (or failure) otherwise. */
  known(): Promise<void> {
    return this.discovery?.firstAnswer ?? Promise.resolve();
  }

  /**
   * Discovery found a new set of hosts (sorted, deduplicated). Hosts that stay keep their
   * object — latency, health and ejections intact; new ones join every detector and ramp up
   * by slow start like a host coming back; gone ones leave rotation now and close when idle.
   */
  discovered(found: readonly DiscoveredHost[]): void {
    const current = new Map<string, UpstreamHost>();
    for (const h of this.hosts) current.set(h.label, h);
    const next: UpstreamHost[] = [];
    const added: UpstreamHost[] = [];
    const now = Date.now();
    for (const d of found) {
      let host = current.get(d.label);
      if (host === undefined) {
        host = this.takeBack(d.label);
        if (host === undefined) {
          host = this.hostFor(d);
          // Not the first hosts of a pool: a host that just appeared is a new replica, cold.
          if (this.hosts.length > 0) host.returned(now);
        }
        host.weight = d.weight;
        added.push(host);
      } else {
        current.delete(d.label);
        host.weight = d.weight;
      }
      next.push(host);
    }
    const removed = [...current.values()];
    this.hosts.length = 0;
    for (const h of next) this.hosts.push(h);
    for (const h of added) this.health.add(h);
    for (const h of removed) {
      this.health.remove(h);
      this.leaving.set(h, now);
    }
    if (this.leaving.size > 0 && this.leavingSweep === undefined)
      this.leavingSweep = setInterval(closeIdleLeavers, LEAVING_SWEEP_MS, this).unref();
    this.events.hostsChanged(this, added, removed);
  }

  resolved(result: ResolutionResult, error: string | undefined, failures: number): void {
    this.events.resolved(this, result, error, failures);
  }

  /**
   * Closes the hosts that left the records once nothing runs on them — a request, a retry or
   * resume that picked them before they left, a tunnel — and a sweep's time after they left,
   * so a retry that chose one and waits out its backoff still finds it open.
   */
  closeIdleLeavers(now = Date.now()): void {
    for (const [h, leftAt] of this.leaving) {
      if (h.outstanding > 0 || now - leftAt < LEAVING_SWEEP_MS) continue;
      this.leaving.delete(h);
      void h.close();
      this.events.hostClosed(this, h);
    }
    if (this.leaving.size === 0) {
      clearInterval(this.leavingSweep);
      this.leavingSweep = undefined;
    }
  }

  /** A host whose record went and came back while it was still finishing: it serves on, warm, with its connections. */
  private takeBack(label: string): UpstreamHost | undefined {
    for (const h of this.leaving.keys())
      if (h.label === label) {
        this.leaving.delete(h);
        return h;
      }
    return undefined;
  }

  private hostFor(d: DiscoveredHost): UpstreamHost {
    const host = new UpstreamHost(d, this.config, this.files);
    host.weight = d.weight;
    return host;
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

  /** Stops the health checks and discovery (a reload replaced this pool); requests under way carry on. */
  stopChecks(): void {
    this.health.stop();
    this.discovery?.stop();
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
    this.discovery?.stop();
    this.gate?.close();
    clearInterval(this.leavingSweep);
    this.leavingSweep = undefined;
    await Promise.all([...this.hosts, ...this.leaving.keys()].map((h) => h.close()));
    this.leaving.clear();
  }
}

/** The sweep's callback, hoisted so the interval holds the pool and nothing else. */
function closeIdleLeavers(pool: UpstreamPool): void {
  pool.closeIdleLeavers();
}
