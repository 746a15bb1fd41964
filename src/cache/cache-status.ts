/**
 * RFC 9211 Cache-Status: what the cache did with a request, as one member named `gangway`
 * (the proxy's name). `hit` when the answer came from the cache without going upstream;
 * otherwise `fwd` says why it went upstream, `fwd-status` what came back, `stored` whether
 * the answer was kept, `ttl` the freshness left (negative when stale), `collapsed` when the
 * request waited for another one's fetch instead of making its own.
 */
import { isToken, sfString } from '../http/structured-fields.js';

export type ForwardReason =
  /** No stored response for the URL. */
  | 'uri-miss'
  /** Stored responses for the URL, none for this request's Vary fields. */
  | 'vary-miss'
  /** The client asked to go upstream (no-cache, max-age=0). */
  | 'request'
  /** The stored response was stale: revalidated, or it stood in for an error. */
  | 'stale'
  /** The method is not served from the cache. */
  | 'method'
  /** The cache was not consulted (a request with Authorization). */
  | 'bypass';

export interface CacheStatusFacts {
  hit?: boolean;
  fwd?: ForwardReason;
  fwdStatus?: number;
  stored?: boolean;
  /** Seconds of freshness left; negative when stale. */
  ttl?: number;
  collapsed?: boolean;
  detail?: string;
}

export function serializeCacheStatus(proxyName: string, f: CacheStatusFacts): string {
  let out = isToken(proxyName) ? proxyName : sfString(proxyName);
  if (f.hit) out += '; hit';
  if (f.fwd !== undefined) out += `; fwd=${f.fwd}`;
  if (f.fwdStatus !== undefined) out += `; fwd-status=${f.fwdStatus}`;
  if (f.stored) out += '; stored';
  if (f.collapsed) out += '; collapsed';
  // A stale answer's ttl is negative, never a rounded 0 that would read as fresh.
  if (f.ttl !== undefined) out += `; ttl=${f.ttl < 0 ? Math.min(-1, Math.round(f.ttl)) : Math.round(f.ttl)}`;
  if (f.detail !== undefined) out += `; detail=${sfString(f.detail)}`;
  return out;
}
