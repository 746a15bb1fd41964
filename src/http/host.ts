/**
 * The authority a request names (its Host field, an absolute-form target's authority, or
 * HTTP/2's :authority), checked before anything routes on it or forwards it (RFC 9110 §7.2,
 * RFC 3986 §3.2.2): a DNS-style name, an IPv4 address or a bracketed IPv6 address, and an
 * optional port. Names with userinfo ("@"), paths, spaces, other sub-delimiters or anything
 * outside ASCII are refused: no origin needs them, and each has been used to confuse a router,
 * a cache key or a log.
 */
import { isIPv6 } from 'node:net';

export type ParsedAuthority = { ok: true; host: string; port: number | undefined } | { ok: false; reason: string };

/** Letters, digits, "-", "." and "_" (some internal names use it). */
const NAME_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._') NAME_CHAR[c.charCodeAt(0)] = 1;

/**
 * The host (lower-cased, IPv6 in brackets) and port of an authority. An empty one is refused:
 * an http(s) URI with an empty host is invalid (RFC 9110 §4.2.1), and every request reaching
 * a gateway targets one.
 */
export function parseAuthority(value: string): ParsedAuthority {
  if (value === '') return refuse('an empty host');
  let host: string;
  let rest: string;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']');
    if (close < 0) return refuse('an IPv6 address without its closing "]"');
    const inside = value.slice(1, close);
    if (!isIPv6(inside)) return refuse('not an IPv6 address in the brackets');
    host = `[${inside.toLowerCase()}]`;
    rest = value.slice(close + 1);
  } else {
    const colon = value.indexOf(':');
    host = colon < 0 ? value : value.slice(0, colon);
    rest = colon < 0 ? '' : value.slice(colon);
    if (host === '') return refuse('a port without a host');
    if (host.length > 253) return refuse('a name longer than 253 characters');
    // Labels are not empty: "..", "a..b" and ".a" name nothing, and an origin that maps the
    // host to a directory could be walked out of with them. One trailing dot (the root) is fine.
    if (host.startsWith('.') || host.includes('..')) return refuse('an empty label in the name');
    for (let i = 0; i < host.length; i++) {
      const code = host.charCodeAt(i);
      if (code >= 128 || NAME_CHAR[code] !== 1) return refuse(`the character ${JSON.stringify(host[i])} in a name`);
    }
    host = host.toLowerCase();
  }
  if (rest === '') return { ok: true, host, port: undefined };
  if (rest.charCodeAt(0) !== 0x3a /* : */) return refuse('something after the host that is not a port');
  const digits = rest.slice(1);
  // RFC 3986 allows an empty port ("host:"); it means the default one.
  if (digits === '') return { ok: true, host, port: undefined };
  if (!/^\d{1,5}$/.test(digits) || Number(digits) > 65535) return refuse('a port that is not a number from 0 to 65535');
  return { ok: true, host, port: Number(digits) };
}

/** How many Host fields a raw header list has (RFC 9112 §3.2: more than one is a 400). */
export function hostFieldCount(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

function refuse(reason: string): ParsedAuthority {
  return { ok: false, reason };
}
