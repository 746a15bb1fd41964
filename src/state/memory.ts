/**
 * The store in one process's memory. A gateway without `store` keeps its state to itself and
 * needs none of this; the memory store serves the supervisor (its workers share it over IPC)
 * and gateways living in one process (tests, the library). It cannot be unreachable.
 */
import { leaseBucket, type StateStore } from './store.js';

interface Bucket {
  tokens: number;
  at: number;
  perMs: number;
  burst: number;
}

/** Full buckets are forgotten this often: memory follows the clients that are active. */
const SWEEP_EVERY_MS = 10_000;

export class MemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  private readonly values = new Map<string, string>();
  /** When values set with a time to live expire (ms since the epoch). */
  private readonly expiries = new Map<string, number>();
  private readonly hashes = new Map<string, Map<string, string>>();
  private readonly lists = new Map<string, string[]>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly instances = new Map<string, number>();
  private lastSweep = 0;
  private lastExpirySweep = 0;

  async get(key: string): Promise<string | undefined> {
    return this.live(key);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.values.set(key, value);
    if (ttlMs === undefined) this.expiries.delete(key);
    else this.expiries.set(key, Date.now() + ttlMs);
  }

  async claim(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.live(key);
    if (held !== undefined && held !== owner) return false;
    this.values.set(key, owner);
    this.expiries.set(key, Date.now() + ttlMs);
    return true;
  }

  async release(key: string, owner: string): Promise<boolean> {
    if (this.live(key) !== owner) return false;
    this.values.delete(key);
    this.expiries.delete(key);
    return true;
  }

  async hashAll(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.hashes.get(key) ?? []);
  }

  async hashSet(key: string, field: string, value: string | undefined): Promise<void> {
    let hash = this.hashes.get(key);
    if (hash === undefined) {
      hash = new Map();
      this.hashes.set(key, hash);
    }
    if (value === undefined) hash.delete(field);
    else hash.set(field, value);
  }

  async append(key: string, value: string, keep: number): Promise<void> {
    let list = this.lists.get(key);
    if (list === undefined) {
      list = [];
      this.lists.set(key, list);
    }
    list.push(value);
    if (list.length > keep) list.splice(0, list.length - keep);
  }

  async recent(key: string, count: number): Promise<string[]> {
    return (this.lists.get(key) ?? []).slice(-count);
  }

  async publish(channel: string, message: string): Promise<void> {
    // Delivered on a later turn, as a real broker would: never inside the publisher's own call.
    const listeners = this.channels.get(channel);
    if (listeners === undefined) return;
    setImmediate(() => {
      for (const l of listeners) l(message);
    });
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    let listeners = this.channels.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.channels.set(channel, listeners);
    }
    listeners.add(listener);
  }

  async lease(
    buckets: readonly string[],
    owed: readonly number[],
    asked: readonly number[],
    perMs: number,
    burst: number,
  ): Promise<number[]> {
    const now = Date.now();
    if (now - this.lastSweep > SWEEP_EVERY_MS) this.sweep(now);
    return buckets.map((key, i) => {
      const b = this.buckets.get(key) ?? { tokens: burst, at: now, perMs, burst };
      const { tokens, granted } = leaseBucket(b.tokens, b.at, now, owed[i] ?? 0, asked[i] ?? 0, perMs, burst);
      b.tokens = tokens;
      b.at = now;
      b.perMs = perMs;
      b.burst = burst;
      this.buckets.set(key, b);
      return granted;
    });
  }

  async heartbeat(instance: string, ttlMs: number): Promise<number> {
    const now = Date.now();
    this.instances.set(instance, now + ttlMs);
    for (const [name, until] of this.instances) if (until <= now) this.instances.delete(name);
    // Every instance beats each second: the time to forget values that expired unread (challenges).
    if (now - this.lastExpirySweep > SWEEP_EVERY_MS) {
      this.lastExpirySweep = now;
      for (const [key, until] of this.expiries) if (until <= now) this.live(key);
    }
    return this.instances.size;
  }

  onConnection(): void {
    // Memory is always there.
  }

  async close(): Promise<void> {
    this.channels.clear();
  }

  /** A value that has not expired (an expired one is forgotten as it is found). */
  private live(key: string): string | undefined {
    const until = this.expiries.get(key);
    if (until !== undefined && until <= Date.now()) {
      this.values.delete(key);
      this.expiries.delete(key);
      return undefined;
    }
    return this.values.get(key);
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, b] of this.buckets) if (b.tokens + (now - b.at) * b.perMs >= b.burst) this.buckets.delete(key);
  }
}
