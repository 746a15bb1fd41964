/**
 * The failure taxonomy: every way a request can fail at this gateway maps to exactly one
 * kind, and each kind has one status code, one RFC 9209 Proxy-Status `error` token, one
 * retry rule and one explanation. Status codes, headers, retry decisions, metric labels,
 * error pages and docs/failures.md all read from this table and nowhere else.
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
  /** A short title: the problem document's `title`. */
  title: string;
  /** What happened, in plain words; `{service}` names the upstream pool. */
  explanation: string;
  /** What the person can do, tailored to this kind. */
  advice: string;
}

const SERVICE_SIDE_ADVICE = 'Nothing is wrong with your connection, and refreshing, clearing caches or changing DNS will not help. Try again in a moment.';

export const FAILURES = {
  dns_error: {
    status: 502, error: 'dns_error', retry: 'any', side: 'service', retryAfter: 10,
    title: 'Upstream name did not resolve',
    explanation: 'Our gateway could not find the address of the {service} service: its name did not resolve.',
    advice: SERVICE_SIDE_ADVICE,
  },
  dns_timeout: {
    status: 504, error: 'dns_timeout', retry: 'any', side: 'service', retryAfter: 10,
    title: 'Upstream name lookup timed out',
    explanation: 'Our gateway could not look up the address of the {service} service in time.',
    advice: SERVICE_SIDE_ADVICE,
  },
  connection_refused: {
    status: 502, error: 'connection_refused', retry: 'any', side: 'service', retryAfter: 5,
    title: 'Upstream refused the connection',
    explanation: 'Our gateway could not reach the {service} service: its server refused the connection, usually because it is down or restarting.',
    advice: SERVICE_SIDE_ADVICE,
  },
  destination_unreachable: {
    status: 502, error: 'destination_ip_unroutable', retry: 'any', side: 'service', retryAfter: 10,
    title: 'Upstream unreachable',
    explanation: 'Our gateway has no network route to the {service} service.',
    advice: SERVICE_SIDE_ADVICE,
  },
  connection_timeout: {
    status: 504, error: 'connection_timeout', retry: 'any', side: 'service', retryAfter: 5,
    title: 'Upstream did not accept the connection in time',
    explanation: 'Our gateway could not connect to the {service} service in time; its server is overloaded or unreachable.',
    advice: SERVICE_SIDE_ADVICE,
  },
  connection_terminated_reused: {
    status: 502, error: 'connection_terminated', retry: 'replayable', side: 'service', retryAfter: 2,
    title: 'Upstream closed a reused connection',
    explanation: 'The {service} service closed the connection just as our gateway sent your request on it, before answering.',
    advice: SERVICE_SIDE_ADVICE,
  },
  connection_terminated: {
    status: 502, error: 'connection_terminated', retry: 'idempotent', side: 'service', retryAfter: 2,
    title: 'Upstream closed the connection without answering',
    explanation: 'The {service} service dropped the connection before sending any answer; it may have crashed while handling your request.',
    advice: SERVICE_SIDE_ADVICE,
  },
  http_response_timeout: {
    status: 504, error: 'http_response_timeout', retry: 'idempotent', side: 'service', retryAfter: 5,
    title: 'Upstream did not answer in time',
    explanation: 'The {service} service accepted your request but did not start answering in time.',
    advice: SERVICE_SIDE_ADVICE,
  },
  http_protocol_error: {
    status: 502, error: 'http_protocol_error', retry: 'idempotent', side: 'service', retryAfter: 5,
    title: 'Upstream sent an invalid response',
    explanation: 'The {service} service answered with something that is not valid HTTP, so our gateway could not pass it on.',
    advice: SERVICE_SIDE_ADVICE,
  },
  http_response_incomplete: {
    status: null, error: 'http_response_incomplete', retry: 'resume', side: 'service', retryAfter: null,
    title: 'Upstream response broke off',
    explanation: 'The {service} service stopped sending part way through the response; the stream was cut so the incomplete body is not mistaken for a whole one.',
    advice: 'Try again: the next attempt may be served by another server.',
  },
  http_upgrade_failed: {
    status: 502, error: 'http_upgrade_failed', retry: 'never', side: 'service', retryAfter: 5,
    title: 'Upstream refused the protocol upgrade',
    explanation: 'The {service} service did not accept the protocol upgrade (such as WebSocket) the request asked for.',
    advice: 'Try again shortly; if it persists, the service does not offer this protocol here.',
  },
  upstream_error_status: {
    status: null, error: '', retry: 'idempotent', side: 'service', retryAfter: null,
    title: 'Upstream reported an error',
    explanation: 'The {service} service answered with an error of its own, which our gateway passed on.',
    advice: SERVICE_SIDE_ADVICE,
  },
  destination_unavailable: {
    status: 503, error: 'destination_unavailable', retry: 'never', side: 'service', retryAfter: 5,
    title: 'No healthy server available',
    explanation: 'Every server of the {service} service is down or out of rotation right now.',
    advice: SERVICE_SIDE_ADVICE,
  },
  connection_limit_reached: {
    status: 503, error: 'connection_limit_reached', retry: 'never', side: 'service', retryAfter: 2,
    title: 'Service overloaded',
    explanation: 'The {service} service is busier than it can handle, so our gateway turned this request away at once rather than make you wait for a timeout.',
    advice: 'Wait a few seconds and try again; nothing is wrong on your side.',
  },
  maintenance: {
    status: 503, error: 'destination_unavailable', retry: 'never', side: 'maintenance', retryAfter: 60,
    title: 'Down for maintenance',
    explanation: 'The {service} service is down for planned maintenance.',
    advice: 'Nothing is wrong on your side. Come back when the maintenance window ends.',
  },
  proxy_loop_detected: {
    status: 502, error: 'proxy_loop_detected', retry: 'never', side: 'service', retryAfter: null,
    title: 'Request loop detected',
    explanation: 'This request came back through our gateway a second time; the service is misconfigured and would loop forever.',
    advice: 'This is a configuration fault on our side; retrying will not help until it is fixed.',
  },
  proxy_internal_error: {
    status: 502, error: 'proxy_internal_error', retry: 'never', side: 'service', retryAfter: 5,
    title: 'Gateway error',
    explanation: 'Our gateway failed while handling the exchange with the {service} service.',
    advice: SERVICE_SIDE_ADVICE,
  },
  rate_limited: {
    status: 429, error: 'http_request_denied', retry: 'never', side: 'client', retryAfter: 1,
    title: 'Too many requests',
    explanation: 'This client sent more requests than the {service} service accepts from one client in a short time.',
    advice: 'Wait until the time given in Retry-After, then continue at a slower pace.',
  },
  destination_not_found: {
    status: 404, error: 'destination_not_found', retry: 'never', side: 'client', retryAfter: null,
    title: 'No such service here',
    explanation: 'This address does not lead to any service behind our gateway.',
    advice: 'Check the address you followed or typed.',
  },
  bad_request: {
    status: 400, error: 'http_request_error', retry: 'never', side: 'client', retryAfter: null,
    title: 'Malformed request',
    explanation: 'The request was not valid HTTP, so it was not passed on.',
    advice: 'If a program sent this request, it needs fixing; a browser extension or proxy on your side may also be rewriting requests.',
  },
  request_timeout: {
    status: 408, error: 'http_request_error', retry: 'never', side: 'client', retryAfter: null,
    title: 'Request took too long to arrive',
    explanation: 'Your request did not arrive completely in time, so the gateway stopped waiting for it.',
    advice: 'Your connection may be slow or unstable; try again.',
  },
  request_body_too_large: {
    status: 413, error: 'http_request_error', retry: 'never', side: 'client', retryAfter: null,
    title: 'Request body too large',
    explanation: 'The request body is larger than this service accepts.',
    advice: 'Send a smaller body.',
  },
  uri_too_long: {
    status: 414, error: 'http_request_error', retry: 'never', side: 'client', retryAfter: null,
    title: 'Address too long',
    explanation: 'The requested address is longer than this service accepts.',
    advice: 'Use a shorter address; long query strings are a common cause.',
  },
  request_header_too_large: {
    status: 431, error: 'http_request_error', retry: 'never', side: 'client', retryAfter: null,
    title: 'Request headers too large',
    explanation: 'The request\'s headers are larger than this service accepts; oversized cookies are the usual cause.',
    advice: 'Clear this site\'s cookies and try again.',
  },
  client_closed: {
    status: null, error: '', retry: 'never', side: 'client', retryAfter: null,
    title: 'Client went away',
    explanation: 'The client closed its connection before the response was complete.',
    advice: 'Nothing to do; the gateway stopped the exchange with the upstream.',
  },
} as const satisfies Record<string, FailureKind>;

export type FailureKindName = keyof typeof FAILURES;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** RFC 9110 §9.2.2 idempotent methods, or any request that carries an Idempotency-Key. */
export function isIdempotent(method: string, hasIdempotencyKey: boolean): boolean {
  return hasIdempotencyKey || IDEMPOTENT.has(method);
}
