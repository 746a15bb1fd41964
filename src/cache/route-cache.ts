/**
 * One route's HTTP cache (RFC 9111, as a shared cache): which stored response, if any, may
 * answer a request, and how — fresh, stale while it is revalidated in the background (RFC
 * 5861 stale-while-revalidate), or only after asking the upstream with its validators. The
 * freshness, Vary, Authorization and revalidation rules are http-cache-semantics' (a
 * well-kept implementation of the RFC's arithmetic; see docs/caching.md for why and what it
 * leaves out). It also keeps the fetches under way, so concurrent misses for one URL wait for
 * one upstream request (collapsing) instead of all going upstream at once.
 */
import type CachePolicy from 'http-cache-semantics';
import type { RouteConfig } from '../config/schema.js';
import type { ClientRequest } from '../listen/client.js';
import type { ForwardReason } from './cache-status.js';
import type { CacheFill } from './fill.js';
import { ResponseStore, type StoredResponse, type StoreStats, varyKeyOf } from './store.js';

export type CacheSettings = NonNullable<RouteConfig['cache']>;

/** What the cache can do for a request. */
export type Lookup =
  /** A fresh stored response answers it. */
  | { kind: 'fresh'; stored: StoredResponse; ttl: number }
  /** A stale one answers it now, and is revalidated in the background. */
  | { kind: 'stale-while-revalidate'; stored: StoredResponse; ttl: number; revalidation: CachePolicy.Headers }
  /**
   * It goes upstream: `stored` is the stale response to revalidate (its validators are in
   * `conditional`) and to stand in if the upstream fails.
   */
  | {
      kind: 'forward';
      reason: ForwardReason;
      stored: StoredResponse | undefined;
      conditional: CachePolicy.Headers | undefined;
    };

/** Someone waiting for a fetch already under way. */
export interface FillWaiter {
  /** The fetch ended stored: answer from the cache. */
  stored(): void;
  /** It will not be stored (or took too long): go upstream. */
  released(): void;
}

export interface CacheCounters {
  hits: number;
  misses: number;
  /** Stale responses served in place of an error. */
  staleForErrors: number;
}

export class RouteCache {
  readonly store: ResponseStore;
  readonly maxObjectSize: number;
  readonly staleIfErrorMs: number;
  readonly collapseWaitMs: number;
  readonly counters: CacheCounters = { hits: 0, misses: 0, staleForErrors: 0 };
  /** Body bytes held by answers being recorded now, bounded by the route's budget. */
  private recordingBytes = 0;
  /** Fetches under way, by key, with who waits for them. */
  private readonly pending = new Map<string, { fill: CacheFill; waiters: Set<FillWaiter> }>();

  constructor(
    settings: CacheSettings,
    readonly proxyName: string,
  ) {
    this.store = new ResponseStore(settings.maxSize);
    this.maxObjectSize = settings.maxObjectSize;
    this.staleIfErrorMs = settings.staleIfError;
    this.collapseWaitMs = settings.collapseWait;
  }

  /** The key of a URL: the authority the request named, and its target (already normalised by the preflight). */
  keyOf(authority: string | undefined, url: string): string {
    return `${(authority ?? '').toLowerCase()}${url}`;
  }

  lookup(key: string, request: CachePolicy.Request): Lookup {
    const variants = this.store.variants(key);
    if (variants === undefined)
      return { kind: 'forward', reason: 'uri-miss', stored: undefined, conditional: undefined };
    let stored: StoredResponse | undefined;
    for (const v of variants)
      if (
        varyKeyOf(v.varyFields, request.headers) === v.varyKey &&
        (stored === undefined || v.storedAt > stored.storedAt)
      )
        stored = v;
    if (stored === undefined)
      return { kind: 'forward', reason: 'vary-miss', stored: undefined, conditional: undefined };
    const { policy } = stored;
    const verdict = policy.evaluateRequest(request);
    const ttl = policy.maxAge() - policy.age();
    if (verdict.response !== undefined) {
      if (verdict.revalidation === undefined) return { kind: 'fresh', stored, ttl };
      return { kind: 'stale-while-revalidate', stored, ttl, revalidation: verdict.revalidation.headers };
    }
    return {
      kind: 'forward',
      reason: policy.stale() ? 'stale' : 'request',
      stored,
      conditional: verdict.revalidation?.headers,
    };
  }

  /**
   * Whether a stored response may stand in for a 502/503/504: within the origin's own
   * stale-if-error, or within the route's `staleIfError` unless the origin forbade serving it
   * stale (must-revalidate, proxy-revalidate, s-maxage, no-cache: RFC 9111 §4.2.4).
   */
  mayStandIn(stored: StoredResponse): boolean {
    const { policy } = stored;
    const staleness = policy.age() - policy.maxAge();
    const cc = String(policy.responseHeaders()['cache-control'] ?? '').toLowerCase();
    const allowed = /(?:^|[\s,])stale-if-error=(\d+)/.exec(cc);
    if (allowed !== null && staleness <= Number(allowed[1])) return true;
    if (this.staleIfErrorMs <= 0) return false;
    if (/(^|[\s,])(must-revalidate|proxy-revalidate|s-maxage|no-cache)\b/.test(cc)) return false;
    return staleness * 1000 <= this.staleIfErrorMs;
  }

  /** The freshest stored response for a request that may stand in for an error, if any. */
  standIn(key: string, headers: ClientRequest['headers']): StoredResponse | undefined {
    let best: StoredResponse | undefined;
    for (const v of this.store.variants(key) ?? [])
      if (
        varyKeyOf(v.varyFields, headers) === v.varyKey &&
        this.mayStandIn(v) &&
        (best === undefined || v.storedAt > best.storedAt)
      )
        best = v;
    return best;
  }

  /** A recording wants `bytes` more; false when that would take the route over its budget. */
  recording(bytes: number): boolean {
    if (this.recordingBytes + bytes > this.store.maxBytes) return false;
    this.recordingBytes += bytes;
    return true;
  }

  /** A recording ended (stored or let go): its bytes are no longer held for it. */
  recordingDone(bytes: number): void {
    this.recordingBytes -= bytes;
  }

  // Collapsing.

  /** A fetch for this key is under way: wait for it (false when none is, and the caller should fetch). */
  wait(key: string, waiter: FillWaiter): boolean {
    const p = this.pending.get(key);
    if (p === undefined) return false;
    p.waiters.add(waiter);
    return true;
  }

  /** Stops waiting (the client left, or waited long enough). */
  stopWaiting(key: string, waiter: FillWaiter): void {
    this.pending.get(key)?.waiters.delete(waiter);
  }

  /** A fetch starts: later misses for the key wait for it. */
  began(fill: CacheFill): void {
    if (!this.pending.has(fill.key)) this.pending.set(fill.key, { fill, waiters: new Set() });
  }

  /**
   * The fetch will not be stored: the first waiter fetches instead, and the others wait for
   * that fetch — a failing upstream meets one request at a time, not the whole herd at once.
   */
  release(fill: CacheFill): void {
    const p = this.pending.get(fill.key);
    if (p === undefined || p.fill !== fill) return;
    this.pending.delete(fill.key);
    const [first, ...rest] = p.waiters;
    first?.released();
    for (const w of rest) if (!this.wait(fill.key, w)) w.released();
  }

  /** The fetch ended complete and storable: keep it, and answer its waiters from it. */
  keep(fill: CacheFill, response: StoredResponse): void {
    const kept = this.store.put(fill.key, response);
    const p = this.pending.get(fill.key);
    if (p === undefined || p.fill !== fill) return;
    this.pending.delete(fill.key);
    for (const w of p.waiters) {
      if (kept) w.stored();
      else w.released();
    }
  }

  /** A revalidation answered 304: the stored response is current again, with the new fields; waiters get it. */
  refresh(key: string, stored: StoredResponse, policy: CachePolicy, fill?: CacheFill): void {
    stored.policy = policy;
    if (fill !== undefined) this.keep(fill, stored);
    else this.store.put(key, stored);
  }

  /**
   * An unsafe method succeeded on the URL: what is stored for it, and for the same-authority
   * Location and Content-Location it names, is no longer to be trusted (RFC 9111 §4.4).
   */
  invalidate(key: string, headers: readonly string[]): void {
    this.store.delete(key);
    const slash = key.indexOf('/');
    const authority = slash < 0 ? key : key.slice(0, slash);
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name !== 'location' && name !== 'content-location') continue;
      const target = sameAuthorityPath(headers[i + 1]!, authority);
      if (target !== undefined) this.store.delete(`${authority}${target}`);
    }
  }

  /**
   * Forgets a URL (every variant) or, with `prefix`, every URL whose target starts with `path`;
   * for the one authority given, or for any. Returns how many URLs were forgotten.
   */
  purge(authority: string | undefined, path: string, prefix: boolean): number {
    const host = authority?.toLowerCase();
    return this.store.purgeWhere((key) => {
      const slash = key.indexOf('/');
      if (host !== undefined && key.slice(0, slash) !== host) return false;
      const target = key.slice(slash);
      return prefix ? target.startsWith(path) : target === path;
    });
  }

  stats(): StoreStats & CacheCounters & { hitRatio: number | null } {
    const total = this.counters.hits + this.counters.misses;
    return { ...this.store.stats(), ...this.counters, hitRatio: total === 0 ? null : this.counters.hits / total };
  }
}

/** A Location's path when it names the same authority (or none), else undefined. */
function sameAuthorityPath(value: string, authority: string): string | undefined {
  if (value.startsWith('/') && !value.startsWith('//')) return value;
  try {
    const url = new URL(value);
    return url.host.toLowerCase() === authority ? url.pathname + url.search : undefined;
  } catch {
    return undefined;
  }
}
