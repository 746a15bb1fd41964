/**
 * Who may talk to the admin API. Its token (when set) guards changes; this guards against the
 * browser on an operator's machine being used as a way in:
 *
 *   - DNS rebinding: a page on evil.example whose name is made to resolve to 127.0.0.1 talks
 *     to the admin listener with `Host: evil.example`. Requests must name an IP address,
 *     `localhost`, or one of `adminHosts` — a rebinding attack can only ever use a name.
 *   - Cross-site writes: a page may POST a form to any address. A change is refused when the
 *     browser says it comes from another site (`Sec-Fetch-Site`) or another origin (`Origin`),
 *     and it must be JSON — a content type no page can send across sites without asking first
 *     (a CORS preflight, which this API never grants).
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { parseAuthority } from '../http/host.js';

export interface AdminRefusal {
  status: number;
  error: string;
}

/** Why this request may not reach the admin API, or undefined when it may; `change`: it asks for one. */
export function refuseAdminRequest(
  req: IncomingMessage,
  allowedNames: ReadonlySet<string>,
  change: boolean,
): AdminRefusal | undefined {
  const host = req.headers.host;
  if (host !== undefined) {
    const authority = parseAuthority(host);
    if (!authority.ok) return { status: 400, error: `invalid Host: ${authority.reason}` };
    const name = authority.host.startsWith('[') ? authority.host.slice(1, -1) : authority.host;
    if (name !== '' && isIP(name) === 0 && name !== 'localhost' && !allowedNames.has(name)) {
      return {
        status: 403,
        error: `the admin API does not answer to the name "${authority.host}" (add it to adminHosts if it is yours)`,
      };
    }
  }
  if (!change) return undefined;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, error: `changes are not accepted from another site (Sec-Fetch-Site: ${site})` };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, host)) {
    return { status: 403, error: `changes are not accepted from another origin (${origin})` };
  }
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    return { status: 415, error: 'a change is sent as JSON: Content-Type: application/json' };
  }
  return undefined;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // "null", or not a URL
  }
}
