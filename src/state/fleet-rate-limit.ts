/**
 * Rate limits that hold for the whole fleet: a route's `requests` per `window` counted across
 * every instance sharing the store, without a request ever waiting for it. Each client's token
 * bucket lives in the store; each instance leases tokens from it (an atomic script: ./store.ts
 * `lease`) a little ahead of its demand, every few tens of ms, and admits requests from its lease
 * alone. Tokens only leave the bucket by lease, so the fleet cannot admit more than the limit;
 * what an idle instance holds it gives back, so the fleet does not admit much less.
 *
 * A client the store has not answered for yet (its first requests) and every client while the
 * store is unreachable are decided by this instance's local share of the limit — a bucket of
 * limit ÷ instances alive, refilled at that share of the rate. What the share admits is owed to
 * the store and paid back when it answers (one share's worth at most after an outage, so the
 * fleet neither gains a burst then nor owes a long debt). No request waits or fails for the store.
 */
import type { RateDecision, RateLimitStore } from '../admission/rate-limit.js';
import type { RouteConfig } from '../config/schema.js';
import { DeadlineExceeded, type StoreLink } from './link.js';

type RateLimitConfig = NonNullable<RouteConfig['rateLimit']>;

interface Share {
  /** Tokens leased to this instance and not used yet. */
  lease: number;
  /** Admitted by the local share rather than a lease: to be paid back to the store. */
  owed: number;
  /** Requests since the last sync, admitted or not: how much to lease next. */
  demand: number;
  /** The store has answered for this client at least once. */
  known: boolean;
  /** The local share: this instance's part of the limit, for what leases cannot decide. */
  local: number;
  /** When `local` was last refilled. */
  at: number;
  lastUse: number;
}

/** Keys synced in one store call, at most. */
const BATCH = 500;

export class FleetRateLimitStore implements RateLimitStore {
  private readonly shares = new Map<string, Share>();
  private readonly perMs: number;
  private syncing = false;
  /** Whether the registry syncs this store (an idle store is dropped until it is asked again). */
  registered = false;

  constructor(
    private readonly link: StoreLink,
    private readonly registry: FleetRateLimits,
    /** Prefix of this route's buckets in the store. */
    private readonly bucketPrefix: string,
    requests: number,
    private readonly windowMs: number,
    private readonly burst: number,
  ) {
    this.perMs = requests / windowMs;
  }

  take(key: string, now: number): RateDecision {
    if (!this.registered) this.registry.register(this);
    const instances = this.link.instances;
    const ceiling = this.burst / instances;
    let s = this.shares.get(key);
    if (s === undefined) {
      s = { lease: 0, owed: 0, demand: 0, known: false, local: ceiling, at: now, lastUse: now };
      this.shares.set(key, s);
    } else {
      s.local = Math.min(ceiling, s.local + (Math.max(0, now - s.at) * this.perMs) / instances);
      s.at = now;
    }
    s.demand++;
    s.lastUse = now;
    if (s.known && this.link.reachable) {
      if (s.lease >= 1) {
        s.lease--;
        // The local share follows what this instance admits, so an outage starts from it, not from a burst.
        if (s.local > 0) s.local = Math.max(0, s.local - 1);
        return this.allowed(s.lease);
      }
      // Over the limit: the local share is spent too, so an outage now starts from nothing saved.
      s.local = 0;
      return this.refused(instances);
    }
    if (s.local >= 1) {
      s.local--;
      s.owed++;
      return this.allowed(s.local);
    }
    return this.refused(instances);
  }

  /**
   * Pays back what the local share admitted, gives back the leases of clients gone quiet, and
   * leases ahead for the active ones. Answers false once no client is left (the registry stops
   * syncing this store).
   */
  async sync(now = Date.now()): Promise<boolean> {
    if (this.syncing) return true;
    const ceiling = this.burst / this.link.instances;
    if (!this.link.reachable) {
      // At most one share's worth is paid back when the store returns.
      for (const s of this.shares.values()) if (s.owed > ceiling) s.owed = Math.ceil(ceiling);
      return this.shares.size > 0;
    }
    const keys: string[] = [];
    const owed: number[] = [];
    const asked: number[] = [];
    const sent: Array<{ share: Share; owed: number; givenBack: number }> = [];
    for (const [key, s] of this.shares) {
      if (keys.length >= BATCH) break;
      if (s.demand === 0 && s.owed === 0 && s.lease === 0) {
        if (now - s.lastUse > 2 * this.windowMs) this.shares.delete(key);
        continue;
      }
      // Lease about twice what the last interval asked for, up to a share; give back what sits idle.
      const want = s.demand === 0 ? 0 : Math.min(Math.ceil(ceiling), 2 * s.demand);
      const givenBack = s.demand === 0 ? s.lease : 0;
      keys.push(this.bucketPrefix + key);
      owed.push(s.owed - givenBack);
      asked.push(Math.max(0, want - Math.floor(s.lease - givenBack)));
      sent.push({ share: s, owed: s.owed, givenBack });
      s.lease -= givenBack;
      s.demand = 0;
    }
    if (keys.length === 0) return this.shares.size > 0;
    this.syncing = true;
    const granted = (grants: number[]): void => {
      sent.forEach(({ share }, i) => {
        share.lease += grants[i] ?? 0;
        share.known = true;
      });
    };
    try {
      granted(
        await this.link.call('lease', (store) => store.lease(keys, owed, asked, this.perMs, this.burst), granted),
      );
      for (const { share, owed } of sent) share.owed -= owed;
    } catch (err) {
      if (err instanceof DeadlineExceeded) {
        // Too slow, not refused: the store most likely took the payment (its late grant still counts).
        for (const { share, owed } of sent) share.owed -= owed;
      } else {
        for (const { share, givenBack } of sent) share.lease += givenBack;
      }
    } finally {
      this.syncing = false;
    }
    return true;
  }

  private allowed(left: number): RateDecision {
    return {
      allowed: true,
      remaining: Math.max(0, Math.floor(left)),
      retryAfter: 0,
      reset: Math.ceil(this.burst / this.perMs / 1000),
    };
  }

  private refused(instances: number): RateDecision {
    // A token reaches some instance each 1/perMs ms; a client spread over the fleet may try sooner.
    const wait = Math.max(1, Math.ceil(instances / this.perMs / 1000));
    return { allowed: false, remaining: 0, retryAfter: wait, reset: Math.ceil(this.burst / this.perMs / 1000) };
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
