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
  /** gRPC methods that may be sent twice ("/pkg.Service/Method"), and services whose every method may. */
  grpcIdempotent: { methods: ReadonlySet<string>; services: ReadonlySet<string> };
}

/**
 * Whether a gRPC call may be sent again once it reached a host: every call is a POST, so only
 * the route's word makes one idempotent. `path` is the call's ":path", "/pkg.Service/Method".
 */
export function isIdempotentGrpcCall(policy: RoutePolicy, path: string): boolean {
  const { methods, services } = policy.grpcIdempotent;
  if (methods.has(path)) return true;
  if (services.size === 0) return false;
  const slash = path.lastIndexOf('/');
  return slash > 0 && services.has(path.slice(0, slash));
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
    grpcIdempotent: grpcIdempotent(route.grpc.idempotentMethods),
  };
}

function grpcIdempotent(listed: readonly string[]): RoutePolicy['grpcIdempotent'] {
  const methods = new Set<string>();
  const services = new Set<string>();
  for (const m of listed) {
    if (m.endsWith('/*')) services.add(m.slice(0, -2));
    else methods.add(m);
  }
  return { methods, services };
}
