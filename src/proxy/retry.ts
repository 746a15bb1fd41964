/**
 * Whether a failed attempt may be tried again on another host. The failure kind's rule
 * (from the taxonomy) says what must be true of the request; the route's retry policy, the
 * pool's retry budget and the existence of a host not yet tried say whether it is worth it.
 * A request that may have been processed is never sent twice unless it is idempotent.
 */
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { RetryPolicy } from '../route/policy.js';

/** What the decision needs to know of the exchange so far. */
export interface RetryState {
  readonly policy: RetryPolicy;
  readonly pool: UpstreamPool;
  /** Attempts made, the first included. */
  readonly attempts: number;
  readonly tried: ReadonlySet<UpstreamHost>;
  /** The body can be sent again in full (none, or read whole before the first attempt). */
  readonly replayable: boolean;
  /** Idempotent by method or by Idempotency-Key. */
  readonly idempotent: boolean;
  /** The total timeout passed: no further attempts. */
  readonly expired: boolean;
}

export type RetryVerdict =
  | { retry: true; host: UpstreamHost; delayMs: number }
  | { retry: false; why: 'unsafe' | 'attempts' | 'no_host' | 'budget' };

export function decideRetry(s: RetryState, kind: FailureKindName): RetryVerdict {
  if (s.expired || !safeToRetry(s, kind)) return { retry: false, why: 'unsafe' };
  if (s.attempts >= s.policy.attempts) return { retry: false, why: 'attempts' };
  const host = s.pool.pick(s.tried);
  if (host === undefined) return { retry: false, why: 'no_host' };
  if (!s.pool.budget.tryAcquire()) return { retry: false, why: 'budget' };
  // Full jitter: somewhere between nothing and base × 2^(retries so far).
  const delayMs = Math.random() * s.policy.backoffMs * 2 ** (s.attempts - 1);
  return { retry: true, host, delayMs };
}

function safeToRetry(s: RetryState, kind: FailureKindName): boolean {
  switch (FAILURES[kind].retry) {
    case 'any':
      // A body being streamed from the client cannot be sent twice once undici started
      // reading it; on the connect-level failures it has not.
      return true;
    case 'replayable':
      // Only the keep-alive race has this rule, and its kind already says the connection was reused.
      return s.replayable;
    case 'idempotent':
      return s.replayable && s.idempotent;
    default:
      return false;
  }
}
