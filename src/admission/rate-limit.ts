/**
 * Per-client rate limits: a token bucket per client key (address or a header), refilled
 * continuously at `requests` per window up to `burst`. Buckets live behind a small store
 * interface, in memory here; with a shared store (Redis, the supervisor) the limit holds for the
 * fleet (../state/fleet-rate-limit.ts). Idle, full buckets are swept so memory follows the
 * active clients only.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import type { ReplyFacts } from '../explain/reply.js';

export interface RateDecision {
  allowed: boolean;
  /** Whole requests left in the bucket after this one. */
  remaining: number;
  /** Seconds until a request would be allowed (0 when allowed now). */
  retryAfter: number;
  /** Seconds until the bucket is full again. */
  reset: number;
}

/** Decides at once, from what this process knows: a request never waits for a shared store. */
export interface RateLimitStore {
  take(key: string, now: number): RateDecision;
}

/** Makes the bucket store of a route's rate limit (../state/fleet-rate-limit.ts for a fleet). */
export type RateLimitStores = (config: NonNullable<RouteConfig['rateLimit']>, route: string) => RateLimitStore;

interface Bucket {
  tokens: number;
  at: number;
}

const SWEEP_EVERY_MS = 10_000;

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;
  private readonly perMs: number;

  constructor(
    requests: number,
    windowMs: number,
    private readonly burst: number,
  ) {
    this.perMs = requests / windowMs;
  }

  take(key: string, now: number): RateDecision {
    if (now - this.lastSweep > SWEEP_EVERY_MS) this.sweep(now);
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    const reset = Math.ceil((this.burst - b.tokens) / this.perMs / 1000);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return {
        allowed: true,
        remaining: Math.floor(b.tokens),
        retryAfter: 0,
        reset: Math.ceil((this.burst - b.tokens) / this.perMs / 1000),
      };
    }
    return {
      allowed: false,
      remaining: 0,
      retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)),
      reset,
    };
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(key);
    }
  }
}

export class RateLimiter {
  readonly policy: string;
  private readonly header: string | undefined;
  private readonly store: RateLimitStore;

  constructor(
    config: NonNullable<RouteConfig['rateLimit']>,
    private readonly route: string,
    store?: RateLimitStore,
  ) {
    this.store = store ?? new MemoryRateLimitStore(config.requests, config.window, config.burst ?? config.requests);
    this.header = config.key.startsWith('header:') ? config.key.slice(7).toLowerCase() : undefined;
    // RFC draft "RateLimit header fields for HTTP": quota q per window w (seconds).
    this.policy = `"gangway";q=${config.burst ?? config.requests};w=${Math.max(1, Math.round(config.window / 1000))}`;
  }

  check(req: { readonly headers: IncomingHttpHeaders }, clientAddress: string, now = Date.now()): RateDecision {
    const h = this.header === undefined ? undefined : req.headers[this.header];
    const key = typeof h === 'string' ? `h:${h}` : `a:${clientAddress}`;
    return this.store.take(key, now);
  }

  /** What a 429 for a refused decision says: when to come back, whose limit, and the RateLimit fields (nothing left until then). */
  refusal(d: RateDecision): Pick<ReplyFacts, 'retryAfter' | 'details' | 'headers'> {
    return {
      retryAfter: d.retryAfter,
      details: `rate limit of route ${this.route}`,
      headers: [
        ['ratelimit-policy', this.policy],
        ['ratelimit', `"gangway";r=0;t=${d.retryAfter}`],
      ],
    };
  }
}
