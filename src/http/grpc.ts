/**
 * The few rules of gRPC's HTTP/2 mapping (grpc/doc/PROTOCOL-HTTP2.md) the gateway needs: which
 * requests are gRPC calls, the deadline a call carries in `grpc-timeout`, and how a status
 * message is written in `grpc-message`. A gRPC client cannot read an HTML page or a 503: the
 * gateway's own answers to it are a status in this form (explain/reply.ts builds them).
 */

/** Lower case throughout, and "/" (0x2f) is unchanged by the `| 0x20` that lower-cases a letter. */
const GRPC_TYPE = 'application/grpc';

/**
 * Whether a request's (or a response's) Content-Type makes it gRPC: `application/grpc`, with or
 * without a suffix (`+proto`, `+json`) or parameters; grpc-web's `application/grpc-web…` too,
 * whose clients read a status from the headers of an answer the same way.
 */
export function isGrpcContentType(value: string | string[] | undefined): boolean {
  if (typeof value !== 'string' || value.length < GRPC_TYPE.length) return false;
  // Asked of every request: compared in place, case-insensitively, with no lower-cased copy.
  for (let i = 0; i < GRPC_TYPE.length; i++) if ((value.charCodeAt(i) | 0x20) !== GRPC_TYPE.charCodeAt(i)) return false;
  // The type ends here, or goes on with a suffix ("+proto"), "-web", or parameters (";", " ").
  const next = value.charCodeAt(GRPC_TYPE.length);
  return Number.isNaN(next) || next === 0x2b || next === 0x2d || next === 0x3b || next === 0x20;
}

/** Milliseconds per unit of `grpc-timeout`: Hours, Minutes, Seconds, milliseconds, microseconds, nanoseconds. */
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * A call's `grpc-timeout` (1 to 8 ASCII digits and a unit) in whole milliseconds, rounded up so
 * a deadline under a millisecond is not read as none; undefined when absent or malformed (the
 * spec gives no meaning to a malformed one, so it is ignored, as gRPC's own servers do).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || value.length < 2 || value.length > 9) return undefined;
  const unit = TIMEOUT_UNIT_MS[value[value.length - 1]!];
  if (unit === undefined) return undefined;
  let amount = 0;
  for (let i = 0; i < value.length - 1; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    amount = amount * 10 + digit;
  }
  return Math.ceil(amount * unit);
}

/**
 * `grpc-message` as the spec writes it: UTF-8, every byte outside printable ASCII (0x20–0x7E)
 * and "%" itself percent-encoded, so any text survives an HTTP/2 header field intact.
 */
export function encodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte);
  }
  return out;
}

/**
 * A trailers-only gRPC answer (the status in the head of an HTTP 200) saying UNAVAILABLE: gRPC's
 * own 503, a host that is not serving. `grpcStatus` is the head's `grpc-status`.
 */
export function isGrpcUnavailable(status: number, grpcStatus: string | string[] | undefined): boolean {
  return status === 200 && grpcStatus === '14';
}
