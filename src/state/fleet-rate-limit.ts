/**
 * Rate limits that hold for the whole fleet: a route's `requests` per `window` counted across
 * every instance sharing the store, without a request ever waiting for it. Each client's bucket
 * lives in the store (a token bucket spent atomically there: ./store.ts `spend`); each instance
 * decides from its share of that bucket — the tokens the store last reported, divided among the
 * instances alive, refilled locally at its share of the rate — and reports what it admitted every
 * few tens of ms. The store lets a bucket go into debt, so whatever the instances admitted between
 * two reports over the limit is paid back before more is admitted: over a window the fleet admits
 * the limit, give or take what one report interval lets through.
 *
 * When the store is unreachable each instance falls back to a local bucket of its share of the
 * limit (limit ÷ instances last counted): the fleet as a whole stays near the limit, and no
 * request waits or fails for it.
 */
import { MemoryRateLimitStore, type RateDecision, type RateLimitStore } from '../admission/rate-limit.js';
import type { RouteConfig } from '../config/schema.js';
import type { StoreLink } from './link.js';

type RateLimitConfig = NonNullable<RouteConfig['rateLimit']>;

interface Share {
  /** This instance's share of the bucket's tokens: as last reported, less uses, plus refills. */
  tokens: number;
  /** When `tokens` was last refilled. */
  at: number;
  /** Admitted here and not yet reported. */
  unsent: number;
  /** Reported in the sync under way. */
  inFlight: number;
  /** Asked since the last sync (a client refused here wants a fresh view too). */
  touched: boolean;
  lastUse: number;
}

/** Keys reported in one store call, at most. */
const BATCH = 500;

export class FleetRateLimitStore implements RateLimitStore {
  private readonly shares = new Map<string, Share>();
  private readonly perMs: number;
  private fallback: MemoryRateLimitStore | undefined = undefined;
  private fallbackInstances = 0;
  private syncing = false;
  /** Whether the registry syncs this store (an idle store is dropped until it is asked again). */
  registered = false;

  constructor(
    private readonly link: StoreLink,
    private readonly registry: FleetRateLimits,
    /** Prefix of this route's buckets in the store. */
    private readonly bucketPrefix: string,
    private readonly requests: number,
    private readonly windowMs: number,
    private readonly burst: number,
  ) {
    this.perMs = requests / windowMs;
  }

  take(key: string, now: number): RateDecision {
    const instances = this.link.instances;
    if (!this.link.reachable) return this.fallbackFor(instances).take(key, now);
    if (!this.registered) this.registry.register(this);
    const ceiling = this.burst / instances;
    const perMs = this.perMs / instances;
    let s = this.shares.get(key);
    if (s === undefined) {
      s = { tokens: ceiling, at: now, unsent: 0, inFlight: 0, touched: true, lastUse: now };
      this.shares.set(key, s);
    } else {
      s.tokens = Math.min(ceiling, s.tokens + Math.max(0, now - s.at) * perMs);
      s.at = now;
    }
    s.touched = true;
    s.lastUse = now;
    if (s.tokens >= 1) {
      s.tokens -= 1;
      s.unsent++;
      return {
        allowed: true,
        remaining: Math.max(0, Math.floor(s.tokens * instances)),
        retryAfter: 0,
        reset: Math.ceil((this.burst - s.tokens * instances) / this.perMs / 1000),
      };
    }
    return {
      allowed: false,
      remaining: 0,
      retryAfter: Math.max(1, Math.ceil((1 - s.tokens) / perMs / 1000)),
      reset: Math.ceil((this.burst - s.tokens * instances) / this.perMs / 1000),
    };
  }

  /**
   * Reports what this instance admitted and takes the store's view of each bucket in return.
   * Answers false once the store has no client left (the registry stops syncing it).
   */
  async sync(now = Date.now()): Promise<boolean> {
    if (this.syncing || !this.link.reachable) return this.shares.size > 0;
    const keys: string[] = [];
    const uses: number[] = [];
    for (const [key, s] of this.shares) {
      if (s.touched || s.unsent > 0) {
        if (keys.length < BATCH) {
          keys.push(key);
          uses.push(s.unsent);
          s.inFlight = s.unsent;
          s.unsent = 0;
          s.touched = false;
        }
      } else if (now - s.lastUse > 2 * this.windowMs) {
        this.shares.delete(key);
      }
    }
    if (keys.length === 0) return this.shares.size > 0;
    this.syncing = true;
    try {
      const tokens = await this.link.call('spend', (store) =>
        store.spend(
          keys.map((k) => this.bucketPrefix + k),
          uses,
          this.perMs,
          this.burst,
        ),
      );
      const instances = this.link.instances;
      const at = Date.now();
      keys.forEach((key, i) => {
        const s = this.shares.get(key);
        if (s === undefined) return;
        // What the store reports has every instance's reports in it, ours up to this sync.
        s.tokens = Math.min(this.burst / instances, tokens[i]! / instances - s.unsent);
        s.at = at;
        s.inFlight = 0;
      });
    } catch {
      // Too slow or away: the uses may or may not have been counted; they are not sent twice.
      for (const key of keys) {
        const s = this.shares.get(key);
        if (s !== undefined) s.inFlight = 0;
      }
    } finally {
      this.syncing = false;
    }
    return true;
  }

  /** A local bucket of this instance's share of the limit, for while the store is away. */
  private fallbackFor(instances: number): MemoryRateLimitStore {
    if (this.fallback === undefined || this.fallbackInstances !== instances) {
      this.fallbackInstances = instances;
      this.fallback = new MemoryRateLimitStore(
        this.requests / instances,
        this.windowMs,
        Math.max(1, this.burst / instances),
      );
    }
    return this.fallback;
  }
}

/** How often each instance reports what it admitted. */
const SYNC_MS = 20;

/** Every fleet-wide rate limit of a gateway, and the one timer that syncs them. */
export class FleetRateLimits {
  private readonly active = new Set<FleetRateLimitStore>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: StoreLink,
    private readonly syncMs = SYNC_MS,
  ) {}

  /** The bucket store of one route's rate limit. */
  storeFor(config: RateLimitConfig, route: string): FleetRateLimitStore {
    return new FleetRateLimitStore(
      this.link,
      this,
      `rate:${route}:`,
      config.requests,
      config.window,
      config.burst ?? config.requests,
    );
  }

  register(store: FleetRateLimitStore): void {
    store.registered = true;
    this.active.add(store);
  }

  start(): void {
    this.timer ??= setInterval(() => this.syncAll(), this.syncMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private syncAll(): void {
    for (const store of this.active) {
      void store.sync().then((busy) => {
        if (busy) return;
        store.registered = false;
        this.active.delete(store);
      });
    }
  }
}
