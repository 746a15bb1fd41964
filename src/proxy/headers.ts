/**
 * Header rewriting at the gateway (RFC 9110 §7.6): hop-by-hop fields are dropped in both
 * directions, with any field the Connection header names; Via, X-Forwarded-*, Forwarded
 * and X-Request-Id are added on the way up; Via and the request id on the way down.
 * Work is done on flat [name, value, name, value…] arrays, the form Node and undici
 * both speak natively, so no header object is built per request.
 */

/** Dropped in both directions (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade']);

/** Request fields the gateway replaces with its own value, or extends. */
const REWRITTEN_UP = new Set([
  'via',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
  'expect',
]);

export interface ForwardingFacts {
  proxyName: string;
  requestId: string;
  clientAddress: string;
  proto: 'http' | 'https';
  httpVersion: string;
  /** The authority the client named, as the preflight checked it (Host, or an absolute-form target's). */
  authority: string | undefined;
  /** Send this Host instead (the upstream's own name), or the client's authority. */
  hostOverride: string | undefined;
  /** Ask for trailers (`TE: trailers`) whatever the client said: a gRPC call, whose status is in them. */
  askTrailers?: boolean;
}

/** Field names the Connection header lists, lower-cased; undefined when there are none. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (!value) return undefined;
  let tokens: Set<string> | undefined;
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (!name || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue;
    tokens ??= new Set();
    tokens.add(name);
  }
  return tokens;
}

export function buildUpstreamHeaders(raw: string[], connection: string | undefined, f: ForwardingFacts): string[] {
  const named = connectionTokens(connection);
  const out: string[] = [];
  let via: string | undefined;
  let xff: string | undefined;
  let forwarded: string | undefined;
  const host = f.authority;
  // TE is hop-by-hop, but a client asking for trailers (TE: trailers) is passed on.
  let wantsTrailers = false;
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // HTTP/2's pseudo-headers (:method, :path, :authority, :scheme) are the request line, not fields.
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const lower = name.toLowerCase();
    if (lower === 'cookie') {
      // HTTP/2 may split Cookie into several fields; an HTTP/1.1 upstream gets one (RFC 9113 §8.2.3).
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'te' && /\btrailers\b/i.test(value)) wantsTrailers = true;
      continue;
    }
    if (REWRITTEN_UP.has(lower)) {
      if (lower === 'via') via = via ? `${via}, ${value}` : value;
      else if (lower === 'x-forwarded-for') xff = xff ? `${xff}, ${value}` : value;
      else if (lower === 'forwarded') forwarded = forwarded ? `${forwarded}, ${value}` : value;
      continue;
    }
    // Host goes up as the preflight checked it: one field, the absolute-form authority when there was one.
    if (named?.has(lower) || lower === 'host') continue;
    out.push(name, value);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  const upstreamHost = f.hostOverride ?? host;
  if (upstreamHost !== undefined) out.push('host', upstreamHost);
  if (wantsTrailers || f.askTrailers === true) out.push('te', 'trailers');
  const ours = `${f.httpVersion} ${f.proxyName}`;
  out.push('via', via ? `${via}, ${ours}` : ours);
  out.push('x-forwarded-for', xff ? `${xff}, ${f.clientAddress}` : f.clientAddress);
  out.push('x-forwarded-proto', f.proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  const node = f.clientAddress.includes(':') ? `"[${f.clientAddress}]"` : f.clientAddress;
  const element =
    host !== undefined && /^[A-Za-z0-9.:[\]-]+$/.test(host)
      ? `for=${node};proto=${f.proto};host=${host}`
      : `for=${node};proto=${f.proto}`;
  out.push('forwarded', forwarded ? `${forwarded}, ${element}` : element);
  out.push('x-request-id', f.requestId);
  return out;
}

/** True when this gateway's own name is among the Via entries (the request looped). */
export function viaContains(via: string | undefined, proxyName: string): boolean {
  if (via === undefined || !via.includes(proxyName)) return false;
  for (const entry of via.split(',')) {
    // An entry is "[protocol-name/]protocol-version received-by [comment]".
    const parts = entry.trim().split(/\s+/);
    if (parts[1] === proxyName) return true;
  }
  return false;
}

export interface DownstreamFacts {
  proxyName: string;
  requestId: string;
  httpVersion: string;
  /** Our Proxy-Status member, when we pass an upstream's 5xx. */
  proxyStatus: string | undefined;
}

/**
 * The response head for the client, from undici's raw header buffers. Latin-1 decoding
 * keeps every byte as it came, which is how Node writes header strings back out.
 */
export function buildDownstreamHeaders(raw: readonly Buffer[], f: DownstreamFacts): string[] {
  const out: string[] = [];
  let named: Set<string> | undefined;
  let via: string | undefined;
  let proxyStatus: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      named = connectionTokens(raw[i + 1]!.toString('latin1'));
      continue;
    }
    if (HOP_BY_HOP.has(lower) || lower === 'x-request-id') continue;
    const value = raw[i + 1]!.toString('latin1');
    if (lower === 'via') {
      via = via ? `${via}, ${value}` : value;
      continue;
    }
    if (lower === 'proxy-status' && f.proxyStatus !== undefined) {
      proxyStatus = proxyStatus ? `${proxyStatus}, ${value}` : value;
      continue;
    }
    out.push(name, value);
  }
  if (named) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (named.has(out[i]!.toLowerCase())) out.splice(i, 2);
    }
  }
  const ours = `${f.httpVersion} ${f.proxyName}`;
  out.push('via', via ? `${via}, ${ours}` : ours);
  out.push('x-request-id', f.requestId);
  if (f.proxyStatus !== undefined)
    out.push('proxy-status', proxyStatus ? `${proxyStatus}, ${f.proxyStatus}` : f.proxyStatus);
  return out;
}

/** The fields of an interim answer (Early Hints) for the client: hop-by-hop fields left out. */
export function buildInterimHeaders(raw: readonly Buffer[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (HOP_BY_HOP.has(name.toLowerCase())) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  return out;
}
