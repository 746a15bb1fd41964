/**
 * The first rungs of the ladder, read from this machine: is there a network at all
 * (interfaces up with an address, a default route), and do a proxy or a VPN sit between the
 * user and the service (the proxy variables and NO_PROXY as curl reads them; tun/tap/wg/
 * utun/ppp-style interfaces).
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

export interface ProxyChoice {
  /** The proxy that applies to the URL, if any. */
  proxy: URL | undefined;
  /** The variable it came from, or the NO_PROXY entry that exempts the URL. */
  variable: string | undefined;
  bypassedBy: string | undefined;
}

function env(environment: NodeJS.ProcessEnv, name: string): string | undefined {
  return environment[name.toLowerCase()] || environment[name.toUpperCase()] || undefined;
}

/** Which proxy the URL goes through, read as curl does: https_proxy / http_proxy, then all_proxy; NO_PROXY exempts. */
export function proxyFor(target: URL, environment: NodeJS.ProcessEnv = process.env): ProxyChoice {
  const scheme = target.protocol === 'https:' ? 'https_proxy' : 'http_proxy';
  const variable = env(environment, scheme)
    ? scheme.toUpperCase()
    : env(environment, 'all_proxy')
      ? 'ALL_PROXY'
      : undefined;
  if (variable === undefined) return { proxy: undefined, variable: undefined, bypassedBy: undefined };
  const raw = env(environment, variable)!;
  const bypass = noProxyMatch(target, env(environment, 'no_proxy'));
  if (bypass !== undefined) return { proxy: undefined, variable, bypassedBy: bypass };
  let proxy: URL;
  try {
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    proxy = new URL('http://invalid.invalid');
  }
  return { proxy, variable, bypassedBy: undefined };
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
