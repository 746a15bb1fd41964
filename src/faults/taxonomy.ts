/**
 * The failure taxonomy: every way a request can fail at this gateway maps to exactly one
 * kind, and each kind has one status code, one RFC 9209 Proxy-Status `error` token, one
 * retry rule, one kind of advice and one gRPC status (what a gRPC client gets instead).
 * Status codes, headers, retry decisions, metric labels, error pages, gRPC statuses and
 * docs/failures.md all read from this table and nowhere else; the words a person reads
 * (titles, explanations, steps, in every language) are in ./catalogue.ts.
 */

/** When an attempt that failed this way may be tried again on another host. */
export type RetryRule =
  /** Nothing reached the upstream: safe for any method. */
  | 'any'
  /** The request may have been read: only if the body can be sent again in full. */
  | 'replayable'
  /** The request may have been processed: only for idempotent requests. */
  | 'idempotent'
  /** The response had started: resume by Range when validators allow, else cut the stream. */
  | 'resume'
  | 'never';

/** Whose side the fault is on, as the person on the other end should hear it. */
export type Side = 'service' | 'client' | 'maintenance';

export interface FailureKind {
  /** The HTTP status the client receives; null when the response had already started. */
  status: number | null;
  /** RFC 9209 Proxy-Status `error` parameter. */
  error: string;
  retry: RetryRule;
  side: Side;
  /** Suggested Retry-After, in seconds, for answers about the service's health. */
  retryAfter: number | null;
  /** Which steps a person is given (src/faults/catalogue.ts `advice.*`); the kind's own title and explanation are there too. */
  advice: AdviceGroup;
  /**
   * The gRPC status a gRPC client gets instead (`grpc-status` in a trailers-only answer), from
   * gRPC's own HTTP-to-gRPC mapping: UNAVAILABLE for whatever a client may simply try again
   * (nothing was processed, or the service is down, in maintenance or cut off a stream),
   * DEADLINE_EXCEEDED for timeouts, RESOURCE_EXHAUSTED for limits (shedding, rate limits, sizes),
   * UNIMPLEMENTED for a method no route serves, INTERNAL for a broken exchange.
   */
  grpc: GrpcCode;
}

/** gRPC status codes by name (grpc/doc/statuscodes.md), as `grpc-status` carries them. */
export const GRPC_CODES = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcCode = keyof typeof GRPC_CODES;

/** The kinds of advice a person can be given; each is a list of steps in the catalogue. */
export type AdviceGroup =
  | 'unreachable'
  | 'incomplete'
  | 'upgrade'
  | 'overloaded'
  | 'maintenance'
  | 'misconfigured'
  | 'slow_down'
  | 'check_address'
  | 'fix_request'
  | 'slow_connection'
  | 'smaller_body'
  | 'shorter_address'
  | 'clear_cookies'
  | 'nothing';

export const FAILURES = {
  dns_error: {
    status: 502,
    error: 'dns_error',
    retry: 'any',
    side: 'service',
    retryAfter: 10,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  dns_timeout: {
    status: 504,
    error: 'dns_timeout',
    retry: 'any',
    side: 'service',
    retryAfter: 10,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  connection_refused: {
    status: 502,
    error: 'connection_refused',
    retry: 'any',
    side: 'service',
    retryAfter: 5,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  // TLS with an upstream failed during the handshake: nothing was sent, so any method may go
  // to another host. Our side's fault (certificates, versions), never the listener's.
  tls_certificate_error: {
    status: 502,
    error: 'tls_certificate_error',
    retry: 'any',
    side: 'service',
    retryAfter: 30,
    advice: 'misconfigured',
    grpc: 'UNAVAILABLE',
  },
  tls_protocol_error: {
    status: 502,
    error: 'tls_protocol_error',
    retry: 'any',
    side: 'service',
    retryAfter: 30,
    advice: 'misconfigured',
    grpc: 'UNAVAILABLE',
  },
  tls_alert_received: {
    status: 502,
    error: 'tls_alert_received',
    retry: 'any',
    side: 'service',
    retryAfter: 30,
    advice: 'misconfigured',
    grpc: 'UNAVAILABLE',
  },
  destination_unreachable: {
    status: 502,
    error: 'destination_ip_unroutable',
    retry: 'any',
    side: 'service',
    retryAfter: 10,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  connection_timeout: {
    status: 504,
    error: 'connection_timeout',
    retry: 'any',
    side: 'service',
    retryAfter: 5,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  connection_terminated_reused: {
    status: 502,
    error: 'connection_terminated',
    retry: 'replayable',
    side: 'service',
    retryAfter: 2,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  connection_terminated: {
    status: 502,
    error: 'connection_terminated',
    retry: 'idempotent',
    side: 'service',
    retryAfter: 2,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  http_response_timeout: {
    status: 504,
    error: 'http_response_timeout',
    retry: 'idempotent',
    side: 'service',
    retryAfter: 5,
    advice: 'unreachable',
    grpc: 'DEADLINE_EXCEEDED',
  },
  http_protocol_error: {
    status: 502,
    error: 'http_protocol_error',
    retry: 'idempotent',
    side: 'service',
    retryAfter: 5,
    advice: 'unreachable',
    grpc: 'INTERNAL',
  },
  http_response_incomplete: {
    status: null,
    error: 'http_response_incomplete',
    retry: 'resume',
    side: 'service',
    retryAfter: null,
    advice: 'incomplete',
    grpc: 'UNAVAILABLE',
  },
  http_upgrade_failed: {
    status: 502,
    error: 'http_upgrade_failed',
    retry: 'never',
    side: 'service',
    retryAfter: 5,
    advice: 'upgrade',
    grpc: 'UNAVAILABLE',
  },
  upstream_error_status: {
    status: null,
    error: '',
    retry: 'idempotent',
    side: 'service',
    retryAfter: null,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  destination_unavailable: {
    status: 503,
    error: 'destination_unavailable',
    retry: 'never',
    side: 'service',
    retryAfter: 5,
    advice: 'unreachable',
    grpc: 'UNAVAILABLE',
  },
  connection_limit_reached: {
    status: 503,
    error: 'connection_limit_reached',
    retry: 'never',
    side: 'service',
    retryAfter: 2,
    advice: 'overloaded',
    grpc: 'RESOURCE_EXHAUSTED',
  },
  maintenance: {
    status: 503,
    error: 'destination_unavailable',
    retry: 'never',
    side: 'maintenance',
    retryAfter: 60,
    advice: 'maintenance',
    grpc: 'UNAVAILABLE',
  },
  proxy_loop_detected: {
    status: 502,
    error: 'proxy_loop_detected',
    retry: 'never',
    side: 'service',
    retryAfter: null,
    advice: 'misconfigured',
    grpc: 'INTERNAL',
  },
  proxy_internal_error: {
    status: 502,
    error: 'proxy_internal_error',
    retry: 'never',
    side: 'service',
    retryAfter: 5,
    advice: 'unreachable',
    grpc: 'INTERNAL',
  },
  rate_limited: {
    status: 429,
    error: 'http_request_denied',
    retry: 'never',
    side: 'client',
    retryAfter: 1,
    advice: 'slow_down',
    grpc: 'RESOURCE_EXHAUSTED',
  },
  destination_not_found: {
    status: 404,
    error: 'destination_not_found',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'check_address',
    grpc: 'UNIMPLEMENTED',
  },
  bad_request: {
    status: 400,
    error: 'http_request_error',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'fix_request',
    grpc: 'INTERNAL',
  },
  request_timeout: {
    status: 408,
    error: 'http_request_error',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'slow_connection',
    grpc: 'DEADLINE_EXCEEDED',
  },
  request_body_too_large: {
    status: 413,
    error: 'http_request_error',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'smaller_body',
    grpc: 'RESOURCE_EXHAUSTED',
  },
  uri_too_long: {
    status: 414,
    error: 'http_request_error',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'shorter_address',
    grpc: 'RESOURCE_EXHAUSTED',
  },
  request_header_too_large: {
    status: 431,
    error: 'http_request_error',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'clear_cookies',
    grpc: 'RESOURCE_EXHAUSTED',
  },
  client_closed: {
    status: null,
    error: '',
    retry: 'never',
    side: 'client',
    retryAfter: null,
    advice: 'nothing',
    grpc: 'CANCELLED',
  },
} as const satisfies Record<string, FailureKind>;

export type FailureKindName = keyof typeof FAILURES;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** RFC 9110 §9.2.2 idempotent methods, or any request that carries an Idempotency-Key. */
export function isIdempotent(method: string, hasIdempotencyKey: boolean): boolean {
  return hasIdempotencyKey || IDEMPOTENT.has(method);
}
