/**
 * Active health checks for one pool: every host gets a GET of the configured path at a
 * jittered interval, over the pool's protocol (its undici pool speaks it); any answer below 500
 * within the timeout passes. A host leaves rotation after the unhealthy threshold of consecutive
 * failures and comes back after the healthy threshold of passes.
 */
import type { UpstreamConfig } from '../config/schema.js';
import type { UpstreamHost } from './host.js';

export type HealthListener = (host: UpstreamHost, healthy: boolean) => void;

export class HealthChecker {
  private readonly timers = new Map<UpstreamHost, NodeJS.Timeout>();
  private readonly streak = new Map<UpstreamHost, number>();
  private started = false;
  private stopped = false;

  constructor(
    private readonly hosts: readonly UpstreamHost[],
    private readonly config: UpstreamConfig['healthCheck'],
    private readonly onChange: HealthListener,
  ) {}

  start(): void {
    if (!this.config.enabled) return;
    this.started = true;
    for (const host of this.hosts) this.schedule(host, Math.random() * this.config.interval);
  }

  /** A host joined the pool (discovered): it is checked from now on, like the others. */
  add(host: UpstreamHost): void {
    if (this.started && !this.stopped) this.schedule(host, Math.random() * this.config.interval);
  }

  /** A host left the pool: no more checks, and a check under way is not followed by another. */
  remove(host: UpstreamHost): void {
    clearTimeout(this.timers.get(host));
    this.timers.delete(host);
    this.streak.delete(host);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(host: UpstreamHost, delay: number): void {
    if (this.stopped) return;
    const timer: NodeJS.Timeout = setTimeout(() => {
      void this.check(host, timer);
    }, delay).unref();
    this.timers.set(host, timer);
  }

  /** One check, started by `timer`: the next is scheduled only while that timer is still the host's. */
  private async check(host: UpstreamHost, timer: NodeJS.Timeout): Promise<void> {
    let passed = false;
    try {
      const res = await host.dispatcher.request({
        path: this.config.path,
        method: 'GET',
        headers: { 'user-agent': 'gangway-health-check' },
        headersTimeout: this.config.timeout,
        bodyTimeout: this.config.timeout,
        signal: AbortSignal.timeout(this.config.timeout),
        // The TLS name the host's requests use, so a check never makes undici reconnect (host.ts).
        servername: host.servername,
      } as Parameters<typeof host.dispatcher.request>[0]);
      await res.body.dump();
      passed = res.statusCode < 500;
    } catch {
      passed = false;
    }
    // The host left meanwhile, or left and came back and has a chain of checks of its own again:
    // this chain ends here, or every return would add one more.
    if (this.stopped || this.timers.get(host) !== timer) return;
    if (passed && host.healthy && host.ejectedUntil > Date.now()) {
      // A host ejected for failing requests that passes a check is back in service: its
      // process answers again (after a restart, say), so there is no reason to wait out the ejection.
      host.ejectedUntil = 0;
      host.returned();
      this.onChange(host, true);
    }
    // The streak counts consecutive results that disagree with the host's current state.
    const streak = passed === host.healthy ? 0 : (this.streak.get(host) ?? 0) + 1;
    this.streak.set(host, streak);
    const threshold = host.healthy ? this.config.unhealthyThreshold : this.config.healthyThreshold;
    if (streak >= threshold) {
      host.healthy = passed;
      this.streak.set(host, 0);
      if (passed) host.returned();
      this.onChange(host, passed);
    }
    const jitter = 0.8 + Math.random() * 0.4;
    this.schedule(host, this.config.interval * jitter);
  }
}
