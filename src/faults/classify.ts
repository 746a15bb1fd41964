/**
 * Turns what went wrong in an exchange with an upstream (an error from undici or the
 * socket, and how far the exchange had got) into a kind of the failure taxonomy.
 */
import type { FailureKindName } from './taxonomy.js';

/** Raised by the gateway itself when it ends an exchange on purpose. */
export class GatewayAbort extends Error {
  constructor(
    readonly kind: FailureKindName,
    message: string,
  ) {
    super(message);
    this.name = 'GatewayAbort';
  }
}

export interface ExchangeProgress {
  /** Response headers were received (and possibly forwarded). */
  responseStarted: boolean;
  /** The connection had served an earlier request (a keep-alive reuse). */
  reusedConnection: boolean;
}

/** RFC 9113 §7 error code PROTOCOL_ERROR, as undici reports a stream reset with it. */
const HTTP2_PROTOCOL_ERROR = 1;
const DNS_ERRORS = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL']);
const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);
const TERMINATED = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_CLOSED']);
/** OpenSSL's verification results and Node's name check: the upstream's certificate was not accepted. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_CRL',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function classifyFailure(err: unknown, progress: ExchangeProgress): FailureKindName {
  if (err instanceof GatewayAbort) return err.kind;
  const e = err as { code?: string; name?: string; cause?: { code?: string } } | null;
  const code = e?.code ?? e?.cause?.code ?? '';
  if (progress.responseStarted) return 'http_response_incomplete';
  // undici refused to send the request as it stands (a header or target it will not write):
  // nothing reached a host, and nothing about the host is known.
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') return 'bad_request';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'connection_timeout';
  if (DNS_ERRORS.has(code)) return 'dns_error';
  if (code === 'EAI_AGAIN') return 'dns_timeout';
  if (UNREACHABLE.has(code)) return 'destination_unreachable';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'http_response_timeout';
  const tls = classifyTls(code);
  if (tls !== undefined) return tls;
  if (
    code.startsWith('HPE_') ||
    e?.name === 'HTTPParserError' ||
    code === 'UND_ERR_HEADERS_OVERFLOW' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
  )
    return 'http_protocol_error';
  // On a reused keep-alive connection, a close or reset before any response byte is the
  // keep-alive race (the server closed the idle connection as we wrote on it): it never
  // processed the request. The error code cannot tell a FIN-then-RST race from a crash, so
  // reuse alone decides, as in Pingora.
  if (TERMINATED.has(code)) return progress.reusedConnection ? 'connection_terminated_reused' : 'connection_terminated';
  // An HTTP/2 stream or session that ended before any response byte (a reset stream, a GOAWAY,
  // a session torn down: undici's informational errors and node:http2's own). Streams the host
  // never processed (REFUSED_STREAM, above a GOAWAY's last stream) undici sends again itself;
  // what reaches us may have been processed. A reset for PROTOCOL_ERROR is a broken exchange.
  if (code === 'UND_ERR_INFO' || code.startsWith('ERR_HTTP2_'))
    return (e as { http2ErrorCode?: number }).http2ErrorCode === HTTP2_PROTOCOL_ERROR
      ? 'http_protocol_error'
      : 'connection_terminated';
  return 'proxy_internal_error';
}

/** The TLS handshake with the upstream failed: which way (RFC 9209 §2.3.12–2.3.14). */
function classifyTls(code: string): FailureKindName | undefined {
  if (CERTIFICATE_ERRORS.has(code)) return 'tls_certificate_error';
  // The peer sent an alert ("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", "…_SSLV3_ALERT_HANDSHAKE_FAILURE").
  if (/^ERR_SSL_(TLSV1|TLSV13|SSLV3)_ALERT_/.test(code)) return 'tls_alert_received';
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO' || code === 'ERR_TLS_HANDSHAKE_TIMEOUT')
    return 'tls_protocol_error';
  return undefined;
}

/** An error as the access log (and, for trusted clients, Proxy-Status details) shows it. */
export function describeError(err: unknown): string {
  if (err instanceof GatewayAbort) return err.message;
  const e = err as { code?: string; message?: string } | null;
  const msg = e?.message ?? String(err);
  return e?.code && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}
