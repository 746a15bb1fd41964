/**
 * Whether a failed attempt may be tried again on another host. The failure kind's rule
 * (from the taxonomy) says what must be true of the request; the attempt limit, the pool's
 * retry budget and the existence of a host not yet tried say whether it is worth it.
 * A request that may have been processed is never sent twice unless it is idempotent.
 */
import { FAILURES, isIdempotent, type FailureKindName } from '../faults/taxonomy.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { RequestContext } from './context.js';

export type RetryVerdict =
  | { retry: true; host: UpstreamHost; delayMs: number }
  | { retry: false; why: 'unsafe' | 'attempts' | 'no_host' | 'budget' };

export function decideRetry(ctx: RequestContext, kind: FailureKindName): RetryVerdict {
  const pool = ctx.route!.upstream;
  const policy = pool.config.retries;
  if (ctx.expired || !safeToRetry(ctx, kind)) return { retry: false, why: 'unsafe' };
  if (ctx.attempts >= policy.attempts) return { retry: false, why: 'attempts' };
  const host = pool.pick(ctx.triedHosts);
  if (host === undefined) return { retry: false, why: 'no_host' };
  if (!pool.budget.tryAcquire()) return { retry: false, why: 'budget' };
  // Full jitter: somewhere between nothing and base × 2^(retries so far).
  const delayMs = Math.random() * policy.backoff * 2 ** (ctx.attempts - 1);
  return { retry: true, host, delayMs };
}

function safeToRetry(ctx: RequestContext, kind: FailureKindName): boolean {
  // A body being streamed from the client cannot be sent twice once undici started reading it;
  // on the connect-level failures ('any') it has not.
  const replayable = ctx.body === null || Buffer.isBuffer(ctx.body);
  switch (FAILURES[kind].retry) {
    case 'any':
      return true;
    case 'replayable':
      // Only the keep-alive race has this rule, and its kind already says the connection was reused.
      return replayable;
    case 'idempotent':
      return replayable && isIdempotent(ctx.req.method!, ctx.req.headers['idempotency-key'] !== undefined);
    default:
      return false;
  }
}
