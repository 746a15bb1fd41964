/**
 * RFC 9209 Proxy-Status members, written and read as RFC 8941 structured fields. Each
 * intermediary appends its member at the end of the list, so the last member is the hop
 * nearest the client.
 */
import { isToken, parseList, sfString, textOf } from '../http/structured-fields.js';

export interface ProxyStatusMember {
  /** This intermediary's name (an sf-token, or a string when it is not a token). */
  proxy: string;
  error?: string;
  /** Status received from the next hop, when passing on its answer. */
  receivedStatus?: number;
  nextHop?: string;
  details?: string;
}

export function serializeProxyStatus(m: ProxyStatusMember): string {
  let out = isToken(m.proxy) ? m.proxy : sfString(m.proxy);
  if (m.error) out += `; error=${isToken(m.error) ? m.error : sfString(m.error)}`;
  if (m.receivedStatus !== undefined) out += `; received-status=${m.receivedStatus}`;
  if (m.nextHop) out += `; next-hop=${sfString(m.nextHop)}`;
  if (m.details) out += `; details=${sfString(m.details)}`;
  return out;
}

/**
 * The members of a Proxy-Status field value, first hop (nearest the origin) first. Unknown
 * parameters are left out; a member that does not parse ends the list, keeping what came
 * before it (a person diagnosing a failure is better served by the hops that did parse).
 */
export function parseProxyStatus(value: string): ProxyStatusMember[] {
  return parseList(value).members.flatMap((item): ProxyStatusMember[] => {
    const proxy = textOf(item.value);
    if (proxy === undefined || proxy === '') return [];
    const m: ProxyStatusMember = { proxy };
    const error = textOf(item.params.get('error'));
    if (error) m.error = error;
    const status = item.params.get('received-status');
    if (status?.type === 'integer') m.receivedStatus = status.value;
    const nextHop = textOf(item.params.get('next-hop'));
    if (nextHop) m.nextHop = nextHop;
    const details = textOf(item.params.get('details'));
    if (details !== undefined) m.details = details;
    return [m];
  });
}
