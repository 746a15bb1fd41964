/**
 * The finished record of one request: what the observers (metrics, the status timeline, the
 * access log) are given once its response is over, instead of the live context the proxy
 * worked with.
 */
import type { FailureKindName } from '../faults/taxonomy.js';
import type { Outcome } from './outcome.js';

export interface RequestRecord {
  readonly id: string;
  readonly client: string;
  readonly method: string;
  /** The client's HTTP version: "1.1", "2.0" (HTTP/2), "1.0". */
  readonly httpVersion: string;
  /** Whether the client came over TLS: with the version, it tells h2 from h2c. */
  readonly scheme: 'http' | 'https';
  readonly path: string;
  /** The protocol a client asked to upgrade to (a tunnel), when it did. */
  readonly upgrade: string | undefined;
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  /** The host of the last attempt. */
  readonly host: string | undefined;
  /** Every host tried, in order. */
  readonly hostsTried: readonly string[];
  readonly attempts: number;
  /** Why each further attempt was made (failure kinds, or "hedge"). */
  readonly retries: readonly string[];
  readonly resumes: number;
  /** The status the client got; 499 when it left before any. */
  readonly status: number;
  readonly failure: FailureKindName | undefined;
  /** What the end meant to the client: the one definition of a failure every counter uses. */
  readonly outcome: Outcome;
  /** The low-level cause of the failure (never shown to clients unless trusted). */
  readonly cause: string | undefined;
  /**
   * What the route's cache did: hit, collapsed, revalidated, stale-while-revalidate,
   * stale-if-error, or why it went upstream (uri-miss, vary-miss, stale, request, method, bypass).
   */
  readonly cache: string | undefined;
  /** The failure a stored copy stood in for, when one did (an error prevented). */
  readonly stoodInFor: FailureKindName | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Time to the response's status and headers: how responsive the service was; undefined when none was sent. */
  readonly ttfbMs: number | undefined;
  /** Time to the response's end, body included (a stream's whole length). */
  readonly ms: number;
}

/** Told about every finished request. */
export interface RequestObserver {
  requestFinished(record: RequestRecord): void;
}
