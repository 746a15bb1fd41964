/**
 * The DNS rung: the system resolver's answer and time (getaddrinfo, as every program on the
 * machine sees it), and the answers of other resolvers given with --resolver, so "my DNS is
 * broken" can be told from "the name does not exist" and from answers that disagree.
 */
import { promises as dns } from 'node:dns';

export interface Lookup {
  /** "system", or the resolver's address. */
  resolver: string;
  ok: boolean;
  addresses: string[];
  ms: number;
  /** ENOTFOUND (no such name), ETIMEOUT, ECONNREFUSED (resolver down)… */
  error?: string;
}

export async function systemLookup(host: string, timeoutMs: number): Promise<Lookup> {
  const started = performance.now();
  try {
    const answers = await withTimeout(dns.lookup(host, { all: true, verbatim: true }), timeoutMs);
    return { resolver: 'system', ok: true, addresses: answers.map((a) => a.address), ms: performance.now() - started };
  } catch (err) {
    return { resolver: 'system', ok: false, addresses: [], ms: performance.now() - started, error: codeOf(err) };
  }
}

export async function resolverLookup(host: string, server: string, timeoutMs: number): Promise<Lookup> {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers([server]);
  const started = performance.now();
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  const ms = performance.now() - started;
  if (addresses.length > 0) return { resolver: server, ok: true, addresses, ms };
  const failure = v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : undefined;
  return { resolver: server, ok: false, addresses, ms, error: codeOf(failure) };
}

function codeOf(err: unknown): string {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code ?? e?.message ?? 'unknown';
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' })), ms);
    }),
  ]);
}
