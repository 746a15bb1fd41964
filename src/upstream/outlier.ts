/**
 * Passive outlier detection for one pool: a host whose attempts keep failing (gateway-side
 * failures or 5xx answers) is ejected for a while, longer each time it happens again, but
 * never more than the configured share of the pool's healthy hosts. An upstream
 * that answers 503 with Retry-After is also taken out of rotation for that long.
 */
import type { UpstreamConfig } from '../config/schema.js';
import type { UpstreamHost } from './host.js';

/** The longest an upstream's own Retry-After keeps a host out of rotation. */
const MAX_RETRY_AFTER_MS = 60_000;

export type EjectionListener = (host: UpstreamHost, reason: 'consecutive_failures' | 'retry_after', ms: number) => void;

export class OutlierDetector {
  constructor(
    private readonly hosts: readonly UpstreamHost[],
    private readonly config: UpstreamConfig['outlierDetection'],
    private readonly onEject: EjectionListener,
  ) {}

  success(host: UpstreamHost): void {
    host.consecutiveFailures = 0;
  }

  failure(host: UpstreamHost, now = Date.now()): void {
    host.consecutiveFailures++;
    if (host.consecutiveFailures < this.config.consecutiveFailures || now < host.ejectedUntil) return;
    if (!this.mayEject(now)) return;
    host.ejections++;
    const ms = Math.min(this.config.baseEjection * host.ejections, this.config.maxEjection);
    host.ejectedUntil = now + ms;
    host.consecutiveFailures = 0;
    this.onEject(host, 'consecutive_failures', ms);
  }

  /** The host answered 503 (or 429) with Retry-After: do not send it more before then. */
  retryAfter(host: UpstreamHost, seconds: number, now = Date.now()): void {
    if (!(seconds > 0) || !this.mayEject(now)) return;
    const ms = Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
    if (now + ms <= host.ejectedUntil) return;
    host.ejectedUntil = now + ms;
    this.onEject(host, 'retry_after', ms);
  }

  /**
   * The cap counts the hosts that are otherwise fit (healthy, not drained): outlier
   * detection may take out at most that share of them. A host already out for another
   * reason is not protected by the cap, and does not use it up.
   */
  private mayEject(now: number): boolean {
    let fit = 0;
    let ejected = 0;
    for (const h of this.hosts) {
      if (!h.healthy || h.draining) continue;
      fit++;
      if (now < h.ejectedUntil) ejected++;
    }
    return (ejected + 1) * 100 <= fit * this.config.maxEjectedPercent;
  }
}
