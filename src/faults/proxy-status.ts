/**
 * RFC 9209 Proxy-Status members, serialised as RFC 8941 structured fields. Each
 * intermediary appends its member at the end of the list, so the last member is the hop
 * nearest the client.
 */

export interface ProxyStatusMember {
  /** This intermediary's name (an sf-token). */
  proxy: string;
  error?: string;
  /** Status received from the next hop, when passing on its answer. */
  receivedStatus?: number;
  nextHop?: string;
  details?: string;
}

/** An RFC 8941 sf-string: printable ASCII only, with `"` and `\` escaped. */
export function sfString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += '\\' + value[i];
    else if (c >= 0x20 && c <= 0x7e) out += value[i];
    else out += '?';
  }
  return out + '"';
}

export function serializeProxyStatus(m: ProxyStatusMember): string {
  let out = m.proxy;
  if (m.error) out += `; error=${m.error}`;
  if (m.receivedStatus !== undefined) out += `; received-status=${m.receivedStatus}`;
  if (m.nextHop) out += `; next-hop=${sfString(m.nextHop)}`;
  if (m.details) out += `; details=${sfString(m.details)}`;
  return out;
}

/** Appends our member to a Proxy-Status value received from upstream (which may be absent). */
export function appendProxyStatus(received: string | string[] | undefined, member: string): string {
  if (received === undefined || received.length === 0) return member;
  const prior = Array.isArray(received) ? received.join(', ') : received;
  return `${prior}, ${member}`;
}

/**
 * Parses a Proxy-Status field value (an RFC 8941 list of tokens or strings with
 * parameters) into its members, first hop (nearest the origin) first. Unknown parameters are
 * kept out; a member that does not parse ends the list (what came before is still useful).
 */
export function parseProxyStatus(value: string): ProxyStatusMember[] {
  const members: ProxyStatusMember[] = [];
  let i = 0;
  const skipSpace = (): void => { while (value[i] === ' ' || value[i] === '\t') i++; };
  const readToken = (): string => {
    const start = i;
    while (i < value.length && /[A-Za-z0-9!#$%&'*+\-.^_`|~:/]/.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  const readString = (): string => {
    let out = '';
    i++; // opening quote
    while (i < value.length && value[i] !== '"') {
      if (value[i] === '\\') i++;
      out += value[i++] ?? '';
    }
    i++; // closing quote
    return out;
  };
  const readItem = (): string => (value[i] === '"' ? readString() : readToken());
  while (i < value.length) {
    skipSpace();
    const proxy = readItem();
    if (!proxy) break;
    const m: ProxyStatusMember = { proxy };
    skipSpace();
    while (value[i] === ';') {
      i++;
      skipSpace();
      const key = readToken();
      let v: string | undefined;
      if (value[i] === '=') { i++; v = readItem(); }
      if (key === 'error' && v) m.error = v;
      else if (key === 'received-status' && v) m.receivedStatus = Number(v);
      else if (key === 'next-hop' && v) m.nextHop = v;
      else if (key === 'details' && v !== undefined) m.details = v;
      skipSpace();
    }
    members.push(m);
    if (value[i] !== ',') break;
    i++;
  }
  return members;
}
