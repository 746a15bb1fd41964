/**
 * What a route does with its requests, resolved once from the route's and its upstream's
 * settings when a runtime is built (as Envoy resolves a cluster's settings into its
 * detector and retry objects), so no decision on the request path reads the configuration tree.
 */
import type { RouteConfig, UpstreamConfig } from '../config/schema.js';

export interface RetryPolicy {
  /** Most attempts per request, the first included. */
  attempts: number;
  /** Base of the jittered exponential backoff between attempts. */
  backoffMs: number;
  /** Request bodies up to this size are read whole before going upstream (so a retry can send them again). */
  bufferBodyUpTo: number;
}

export interface HedgePolicy {
  minDelayMs: number;
  maxDelayMs: number;
}

export interface RoutePolicy {
  retry: RetryPolicy;
  /** Second attempts for slow idempotent requests; undefined when off (or with one host, nothing to hedge on). */
  hedge: HedgePolicy | undefined;
  /** Longest a whole exchange may take, body included; 0: no limit. */
  totalTimeoutMs: number;
  /** Send the client's Host upstream, or the host's own name. */
  hostHeader: 'preserve' | 'upstream';
  /** Largest request body accepted (413 beyond it). */
  bodyLimit: number;
  /** Protocols a client may switch to on this route (lower case). */
  upgrades: ReadonlySet<string>;
  /** Explain an upstream's own 502/503/504 to a person when retries could not replace it. */
  explainUpstreamErrors: boolean;
}

export function resolvePolicy(route: RouteConfig, upstream: UpstreamConfig, requestBuffer: number): RoutePolicy {
  const { retries, hedging } = upstream;
  return {
    retry: {
      attempts: retries.attempts,
      backoffMs: retries.backoff,
      bufferBodyUpTo: Math.max(requestBuffer, retries.replayBody),
    },
    hedge:
      hedging.enabled && (upstream.hosts.length > 1 || upstream.dns !== undefined)
        ? { minDelayMs: hedging.minDelay, maxDelayMs: hedging.maxDelay }
        : undefined,
    totalTimeoutMs: upstream.timeouts.total,
    hostHeader: upstream.hostHeader,
    bodyLimit: route.limits.body,
    upgrades: new Set(route.upgrades),
    explainUpstreamErrors: route.explainUpstreamErrors,
  };
}
