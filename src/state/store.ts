/**
 * The shared state store: the few operations the gateway needs to share the maintenance switch,
 * host drains, rate-limit buckets, incidents and ACME (challenges, certificates, the issuance
 * lock) across the processes of one service. Three implementations: memory (one process; also
 * two gateways in one process, as tests do), the supervisor (workers on one machine reach it
 * over IPC: ./supervisor.ts) and Redis (a fleet: ./redis.ts). Values are strings (JSON where
 * structured) so every implementation carries them alike. Nothing on a request's path awaits a
 * store call: ./link.ts puts a deadline on each, and the users of the store decide from a local
 * view that the store reconciles in the background.
 */

export type StoreKind = 'memory' | 'supervisor' | 'redis';

export interface StateStore {
  readonly kind: StoreKind;
  /** A value, or undefined when it was never set. */
  get(key: string): Promise<string | undefined>;
  /** Sets a value; with `ttlMs` it is gone after that long (an ACME challenge outlives no order). */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /**
   * Takes `key` for `owner` for `ttlMs`, atomically: true when it was free (or expired) or already
   * this owner's (its time is then extended — how a holder keeps a lock while it works), false
   * while another owner holds it. A holder that dies lets go when the time runs out.
   */
  claim(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Deletes `key` only while its value is `owner` (a lock taken over meanwhile is not ours to drop). */
  release(key: string, owner: string): Promise<boolean>;
  /** Every field of a hash (host drains: one field per host). */
  hashAll(key: string): Promise<Record<string, string>>;
  /** Sets one field of a hash; undefined removes it. */
  hashSet(key: string, field: string, value: string | undefined): Promise<void>;
  /** Appends to a list that keeps only its newest `keep` entries. */
  append(key: string, value: string, keep: number): Promise<void>;
  /** The newest `count` entries of a list, oldest first. */
  recent(key: string, count: number): Promise<string[]>;
  publish(channel: string, message: string): Promise<void>;
  /** Calls `listener` with every message published on the channel from now on, by any instance. */
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  /**
   * Leases tokens of shared token buckets, atomically: bucket i is refilled at `perMs` tokens per
   * ms up to `burst`, pays back `owed[i]` tokens (admitted before a lease was there; negative:
   * tokens given back unused — a bucket may go into debt down to -burst), then grants up to
   * `asked[i]` of the whole tokens it has. Answers each bucket's grant.
   */
  lease(
    buckets: readonly string[],
    owed: readonly number[],
    asked: readonly number[],
    perMs: number,
    burst: number,
  ): Promise<number[]>;
  /** Says `instance` is alive for `ttlMs`; answers how many instances are alive (itself included). */
  heartbeat(instance: string, ttlMs: number): Promise<number>;
  /**
   * Called when the connection to the store is lost or found again (Redis); a store that cannot
   * be lost (memory) never calls it.
   */
  onConnection(listener: (up: boolean, reason?: string) => void): void;
  close(): Promise<void>;
}

/** The store's operations, by name: what the supervisor relays and what error metrics are labelled with. */
export const STORE_OPERATIONS = [
  'get',
  'set',
  'claim',
  'release',
  'hashAll',
  'hashSet',
  'append',
  'recent',
  'publish',
  'subscribe',
  'lease',
  'heartbeat',
] as const;
export type StoreOperation = (typeof STORE_OPERATIONS)[number];

/**
 * Refills one token bucket, takes what is owed and grants what it can of what is asked: the
 * arithmetic every implementation (and the Lua script in ./redis.ts) shares. `tokens` and `at`
 * are the bucket as stored.
 */
export function leaseBucket(
  tokens: number,
  at: number,
  now: number,
  owed: number,
  asked: number,
  perMs: number,
  burst: number,
): { tokens: number; granted: number } {
  const refilled = Math.min(burst, tokens + Math.max(0, now - at) * perMs);
  const after = Math.max(-burst, Math.min(burst, refilled - owed));
  const granted = asked > 0 && after >= 1 ? Math.min(asked, Math.floor(after)) : 0;
  return { tokens: after - granted, granted };
}
