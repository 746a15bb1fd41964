/**
 * The first rungs of the ladder, read from this machine: is there a network at all
 * (interfaces up with an address, a default route), and do a proxy or a VPN sit between the
 * user and the service (the proxy variables and no_proxy exactly as curl reads them, SOCKS
 * included; tun/tap/wg/utun/ppp-style interfaces).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

export interface NetworkFacts {
  /** Interfaces other than loopback that have an address. */
  interfaces: string[];
  /** Whether a default route exists (IPv4 or IPv6); undefined where it cannot be read (not Linux). */
  defaultRoute: boolean | undefined;
  /** Interfaces whose names look like a VPN or tunnel. */
  vpnInterfaces: string[];
}

const VPN_NAME = /^(tun|tap|wg|utun|ppp|ipsec|vpn|tailscale|zt|nordlynx|proton|gpd|cscotun)/i;

export function inspectNetwork(): NetworkFacts {
  const interfaces: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => !a.internal)) interfaces.push(name);
  }
  return { interfaces, defaultRoute: hasDefaultRoute(), vpnInterfaces: interfaces.filter((n) => VPN_NAME.test(n)) };
}

function hasDefaultRoute(): boolean | undefined {
  try {
    const v4 = readFileSync('/proc/net/route', 'utf8')
      .split('\n')
      .slice(1)
      .some((l) => l.split('\t')[1] === '00000000');
    let v6 = false;
    try {
      v6 = readFileSync('/proc/net/ipv6_route', 'utf8')
        .split('\n')
        .some((l) => l.startsWith('00000000000000000000000000000000 00') && !l.trimEnd().endsWith(' lo'));
    } catch {
      /* no IPv6 */
    }
    return v4 || v6;
  } catch {
    return undefined;
  }
}

/** What a proxy URL asks for: doctor can send requests through http and https proxies only. */
export type ProxyKind = 'http' | 'socks';

export interface ProxyChoice {
  /** The proxy that applies to the URL, if any, with curl's default port filled in. */
  proxy: URL | undefined;
  kind: ProxyKind | undefined;
  /** The variable it came from, by the name it was read from (`https_proxy` or `HTTPS_PROXY`). */
  variable: string | undefined;
  /** A proxy variable that applies but holds nothing curl could use as a proxy. */
  unusable: string | undefined;
  /** The no_proxy entry that exempts the URL, and the variable it was read from. */
  bypassedBy: string | undefined;
  bypassVariable: string | undefined;
  /** HTTP_PROXY, when it is set and ignored (curl reads only the lowercase http_proxy). */
  ignored: string | undefined;
}

/**
 * A variable as curl reads it: the lowercase name first, then the uppercase one. `http_proxy`
 * is read in lowercase only: a CGI program gets the request's `Proxy:` header as HTTP_PROXY
 * (httpoxy), so curl refuses to trust the uppercase name. An empty value counts as unset.
 */
function curlVariable(environment: NodeJS.ProcessEnv, lower: string): string | undefined {
  if (environment[lower]) return lower;
  const upper = lower.toUpperCase();
  return lower !== 'http_proxy' && environment[upper] ? upper : undefined;
}

const SOCKS = new Set(['socks4:', 'socks4a:', 'socks5:', 'socks5h:']);

/** Which proxy the URL goes through, read as curl reads it: no_proxy exempts; then http(s)_proxy, then all_proxy. */
export function proxyFor(target: URL, environment: NodeJS.ProcessEnv = process.env): ProxyChoice {
  const choice: ProxyChoice = {
    proxy: undefined,
    kind: undefined,
    variable: undefined,
    unusable: undefined,
    bypassedBy: undefined,
    bypassVariable: undefined,
    ignored:
      target.protocol === 'http:' && !environment.http_proxy && environment.HTTP_PROXY ? 'HTTP_PROXY' : undefined,
  };
  const scheme = target.protocol === 'https:' ? 'https_proxy' : 'http_proxy';
  choice.variable = curlVariable(environment, scheme) ?? curlVariable(environment, 'all_proxy');
  if (choice.variable === undefined) return choice;
  const noProxy = curlVariable(environment, 'no_proxy');
  const bypass = noProxy === undefined ? undefined : noProxyMatch(target, environment[noProxy]);
  if (bypass !== undefined) return { ...choice, bypassedBy: bypass, bypassVariable: noProxy };
  const raw = environment[choice.variable]!;
  let proxy: URL;
  try {
    // Without a scheme curl takes an http proxy; without a port, 1080 (443 for an https proxy).
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
    if (!proxy.hostname) throw new Error('no host');
  } catch {
    return { ...choice, unusable: raw };
  }
  const kind =
    proxy.protocol === 'http:' || proxy.protocol === 'https:'
      ? 'http'
      : SOCKS.has(proxy.protocol)
        ? 'socks'
        : undefined;
  if (kind === undefined) return { ...choice, unusable: raw };
  if (proxy.port === '') proxy.port = proxy.protocol === 'https:' ? '443' : '1080';
  return { ...choice, proxy, kind };
}

/** A proxy as it may be shown: scheme, host and port, never the credentials it may carry. */
export function proxyName(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

function noProxyMatch(target: URL, noProxy: string | undefined): string | undefined {
  if (!noProxy) return undefined;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return entry;
    const [name, entryPort] = entry.startsWith('[')
      ? [entry.slice(1, entry.indexOf(']')), entry.split(']:')[1]]
      : entry.split(':');
    if (entryPort && entryPort !== port) continue;
    const bare = name!.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return entry;
  }
  return undefined;
}
