/**
 * Where a route's cached responses live: in memory, under a byte budget, the least recently
 * used going first (lru-cache, which counts each entry's size; a scan of unique URLs evicts
 * rather than grows). A URL maps to its variants — one stored response per combination of
 * the request fields its Vary names (RFC 9111 §4.1) — so a response that varies on
 * Accept-Encoding keeps a copy per encoding under one key.
 */
import type CachePolicy from 'http-cache-semantics';
import { LRUCache } from 'lru-cache';

/** Bytes counted for an entry beyond its body: its header fields and bookkeeping. */
const OVERHEAD = 512;

export class StoredResponse {
  readonly size: number;
  /** ms since the epoch. */
  readonly storedAt = Date.now();
  /**
   * The origin's Date, as sent: a cache passes it on unchanged (the policy's own field list
   * says "now", which would make every hit look freshly generated).
   */
  originDate: string | undefined;
  /** The origin sent a Warning field (the library adds a "113" one of its own, a field RFC 9111 retired). */
  originWarned = false;
  private current: CachePolicy;

  get policy(): CachePolicy {
    return this.current;
  }

  /** A revalidation replaced the policy (and perhaps the Date, from the 304). */
  set policy(policy: CachePolicy) {
    this.current = policy;
    const { date, warning } = policy.toObject().resh;
    this.originDate = typeof date === 'string' ? date : undefined;
    this.originWarned = warning !== undefined;
  }

  constructor(
    policy: CachePolicy,
    readonly status: number,
    readonly body: Buffer,
    /** The lower-case field names the response's Vary lists. */
    readonly varyFields: readonly string[],
    /** Those fields' values in the request it answered. */
    readonly varyKey: string,
  ) {
    this.current = policy;
    this.policy = policy;
    let headerBytes = 0;
    for (const [k, v] of Object.entries(policy.responseHeaders())) headerBytes += k.length + String(v).length;
    this.size = body.length + headerBytes + OVERHEAD;
  }
}

/** The Vary fields' values in a request, normalised as RFC 9111 §4.1 allows (whitespace). */
export function varyKeyOf(fields: readonly string[], headers: Readonly<Record<string, string | string[] | undefined>>) {
  let key = '';
  for (const f of fields) {
    const v = headers[f];
    key += `${f}:${(Array.isArray(v) ? v.join(',') : (v ?? '')).replace(/\s+/g, ' ').trim()}\n`;
  }
  return key;
}

/** The field names in a Vary value, lower case; `*` when it names everything (never matches). */
export function varyFieldsOf(vary: string | string[] | undefined): string[] {
  if (vary === undefined) return [];
  const value = Array.isArray(vary) ? vary.join(',') : vary;
  return value
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f !== '')
    .sort();
}

export interface StoreStats {
  entries: number;
  bytes: number;
  maxBytes: number;
}

export class ResponseStore {
  private readonly lru: LRUCache<string, StoredResponse[]>;

  constructor(readonly maxBytes: number) {
    this.lru = new LRUCache<string, StoredResponse[]>({
      maxSize: maxBytes,
      sizeCalculation: (variants) =>
        Math.max(
          1,
          variants.reduce((n, v) => n + v.size, 0),
        ),
    });
  }

  /** The variants stored for a URL (most recent use first is the LRU's business, not the caller's). */
  variants(key: string): readonly StoredResponse[] | undefined {
    return this.lru.get(key);
  }

  /** Stores a response, replacing the variant for the same Vary values; false when it cannot fit. */
  put(key: string, response: StoredResponse): boolean {
    if (response.size > this.maxBytes) return false;
    const before = this.lru.peek(key) ?? [];
    const variants = before.filter(
      (v) => v.varyKey !== response.varyKey || v.varyFields.join() !== response.varyFields.join(),
    );
    variants.push(response);
    this.lru.set(key, variants);
    return this.lru.has(key);
  }

  /** Forgets one stored variant (a revalidation found it changed) or all of a URL's. */
  delete(key: string, only?: StoredResponse): void {
    if (only === undefined) {
      this.lru.delete(key);
      return;
    }
    const rest = (this.lru.peek(key) ?? []).filter((v) => v !== only);
    if (rest.length === 0) this.lru.delete(key);
    else this.lru.set(key, rest);
  }

  /** Forgets every URL whose key passes `matches`; returns how many. */
  purgeWhere(matches: (key: string) => boolean): number {
    let n = 0;
    for (const key of [...this.lru.keys()]) {
      if (!matches(key)) continue;
      this.lru.delete(key);
      n++;
    }
    return n;
  }

  stats(): StoreStats {
    let entries = 0;
    for (const v of this.lru.values()) entries += v.length;
    return { entries, bytes: this.lru.calculatedSize, maxBytes: this.maxBytes };
  }
}
