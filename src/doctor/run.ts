/**
 * `gangway doctor URL`: the troubleshooting ladder a support article walks a person through,
 * run for them, rung by rung, ending in a verdict with its evidence:
 *
 *   1. network      interfaces up, a default route
 *   2. proxy / VPN  proxy variables that apply to the URL (a dead proxy is the verdict), VPN interfaces
 *   3. DNS          the system resolver's answer and time, against --resolver answers
 *   4. TCP          connect time to each address, IPv4 and IPv6
 *   5. TLS          handshake and certificate (https)
 *   6. HTTP         status, time to first byte, every hop's Proxy-Status, Via, Retry-After, request id
 *   7. repeat       further attempts with backoff: transient or persistent
 *   8. status page  what the service's own status page says, when it advertises one
 *   9. control      a URL known to work (--control): "my network" or "their service"
 */
import { isIP } from 'node:net';
import { connectTo, tlsHandshake } from './connect.js';
import { resolverLookup, systemLookup, type Lookup } from './dns.js';
import { inspectNetwork, proxyFor } from './environment.js';
import { dispatcherFor, fetchOnce, readStatusPage, type HttpAttempt, type Hop } from './http.js';
import { failedHop, isMaintenance, isOverload, VERDICTS, type Verdict } from './verdict.js';

export interface DoctorOptions {
  resolvers: string[];
  control?: URL;
  attempts: number;
  timeoutMs: number;
  /** Longest pause between attempts, whatever Retry-After asks. */
  maxBackoffMs: number;
  env?: NodeJS.ProcessEnv;
}

export interface Step {
  name: string;
  ok: boolean | null;
  ms?: number;
  detail: string;
}

export interface DoctorReport {
  url: string;
  verdict: Verdict;
  summary: string;
  /** The hop that failed, in words. */
  failedAt?: string;
  steps: Step[];
  hops: Hop[];
  advice: string[];
  requestId?: string;
  retryAfter?: number;
  exitCode: number;
}

export async function runDoctor(
  url: URL,
  opts: DoctorOptions,
  onStep: (s: Step) => void = () => undefined,
): Promise<DoctorReport> {
  const steps: Step[] = [];
  const step = (s: Step): Step => {
    steps.push(s);
    onStep(s);
    return s;
  };
  const finish = (verdict: Verdict, summary: string, extra: Partial<DoctorReport> = {}): DoctorReport => ({
    url: url.href,
    verdict,
    summary,
    steps,
    hops: [],
    advice: [...VERDICTS[verdict].advice],
    exitCode: VERDICTS[verdict].exit,
    ...extra,
  });
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');

  // 1. network
  const net = inspectNetwork();
  const networkOk = loopback || (net.interfaces.length > 0 && net.defaultRoute !== false);
  step({
    name: 'network',
    ok: networkOk,
    detail: loopback
      ? 'the service is on this machine (loopback)'
      : `${net.interfaces.length > 0 ? `interfaces up: ${net.interfaces.join(', ')}` : 'no network interface has an address'}; ${net.defaultRoute === undefined ? 'default route unknown' : net.defaultRoute ? 'default route present' : 'no default route'}`,
  });

  // 2. proxy / VPN
  const proxy = proxyFor(url, opts.env ?? process.env);
  const vpn = net.vpnInterfaces.length > 0 ? `; VPN-like interfaces: ${net.vpnInterfaces.join(', ')}` : '';
  if (proxy.proxy !== undefined) {
    const p = proxy.proxy;
    const reach = await connectTo(
      p.hostname.replace(/^\[|\]$/g, ''),
      Number(p.port || (p.protocol === 'https:' ? 443 : 80)),
      opts.timeoutMs,
    );
    step({
      name: 'proxy/vpn',
      ok: reach.ok,
      ms: reach.ms,
      detail: `${proxy.variable}=${p.origin} applies to this URL: ${reach.ok ? 'reachable' : `not reachable (${reach.error})`}${vpn}`,
    });
    if (!reach.ok)
      return finish(
        'your-proxy-or-vpn',
        `The proxy ${p.origin} (from ${proxy.variable}) that this URL goes through does not accept connections (${reach.error}); the request never reaches the service.`,
        { failedAt: `proxy ${p.origin}` },
      );
  } else {
    step({
      name: 'proxy/vpn',
      ok: true,
      detail: `${proxy.bypassedBy ? `${proxy.variable} set, but NO_PROXY (${proxy.bypassedBy}) exempts this URL` : 'no proxy applies'}${vpn}`,
    });
  }

  // 3–5: the client's own path, unless a proxy makes the connection for it.
  if (proxy.proxy === undefined) {
    let addresses: string[] = [host];
    if (isIP(host) === 0) {
      const system = await systemLookup(host, opts.timeoutMs);
      const others = await Promise.all(opts.resolvers.map((r) => resolverLookup(host, r, opts.timeoutMs)));
      step({ name: 'dns', ok: system.ok, ms: system.ms, detail: describeLookups(system, others) });
      if (!system.ok) return dnsVerdict(url, system, others, opts, networkOk, finish);
      addresses = system.addresses;
    } else {
      step({ name: 'dns', ok: null, detail: 'skipped: the URL names an address' });
    }
    const tcp = await Promise.all(addresses.map((a) => connectTo(a, port, opts.timeoutMs)));
    const reached = tcp.find((c) => c.ok);
    step({
      name: 'tcp',
      ok: reached !== undefined,
      ms: reached?.ms,
      detail: tcp.map((c) => `${c.address}:${port} ${c.ok ? `${c.ms.toFixed(1)} ms` : c.error}`).join('; '),
    });
    if (reached === undefined)
      return transportVerdict(
        url,
        tcp.map((c) => c.error ?? ''),
        opts,
        networkOk,
        finish,
      );
    if (url.protocol === 'https:') {
      const tls = await tlsHandshake(reached.address, port, host, opts.timeoutMs);
      step({
        name: 'tls',
        ok: tls.ok,
        ms: tls.ms,
        detail:
          tls.error && !tls.subject
            ? tls.error
            : `${tls.protocol ?? ''} certificate for ${tls.subject ?? '?'} from ${tls.issuer ?? '?'}, valid until ${tls.validTo ?? '?'} (${tls.daysLeft ?? '?'} days)${tls.nameMismatch ? `; ${tls.nameMismatch}` : ''}${tls.error ? `; ${tls.error}` : ''}`,
      });
      if (!tls.ok) {
        const intercepted = net.vpnInterfaces.length > 0 && /SELF_SIGNED|UNABLE_TO_GET_ISSUER/.test(tls.error ?? '');
        return intercepted
          ? finish(
              'your-proxy-or-vpn',
              `The TLS certificate presented for ${host} is not trusted (${tls.error}) and a VPN is active: something on your side may be intercepting the connection.`,
              { failedAt: 'TLS between you and the service' },
            )
          : finish(
              'service-side',
              `The service's TLS certificate is not valid for ${host} (${tls.nameMismatch ?? tls.error}).`,
              { failedAt: `the TLS certificate of ${host}` },
            );
      }
    } else {
      step({ name: 'tls', ok: null, detail: 'skipped: plain http' });
    }
  }

  // 6. HTTP
  const dispatcher = dispatcherFor(proxy.proxy, opts.timeoutMs);
  try {
    const first = await fetchOnce(url, dispatcher);
    step({ name: 'http', ok: answeredWell(first), ms: first.ms, detail: describeAttempt(first) });
    let last = first;

    // 7. repeat
    if (!answeredWell(first) && opts.attempts > 1 && !isMaintenance(first.hops, first.problemType)) {
      let good: HttpAttempt | undefined;
      let failed = 1;
      for (let i = 1; i < opts.attempts && good === undefined; i++) {
        const pause = Math.min(
          opts.maxBackoffMs,
          last.retryAfter !== undefined ? last.retryAfter * 1000 : 500 * 2 ** (i - 1),
        );
        await new Promise((r) => setTimeout(r, pause));
        const next = await fetchOnce(url, dispatcher);
        if (answeredWell(next)) good = next;
        else {
          failed++;
          last = next;
        }
      }
      step({
        name: 'repeat',
        ok: good !== undefined,
        detail: good
          ? `failed ${failed} time${failed === 1 ? '' : 's'}, then answered ${good.status} in ${good.ms.toFixed(0)} ms`
          : `all ${failed} attempts failed (${describeAttempt(last)})`,
      });
      if (good !== undefined) {
        return finish(
          'transient',
          `${url.host} failed (${describeAttempt(first)}) and then answered ${good.status}: a passing fault on the service's side.`,
          { hops: first.hops, requestId: first.requestId },
        );
      }
    }

    // 8. status page
    const advertised = last.statusPage;
    let statusNote = '';
    if (advertised !== undefined) {
      const page = await readStatusPage(advertised, url, dispatcher);
      const troubled = page?.services?.filter((s) => s.state !== 'healthy') ?? [];
      statusNote = page
        ? ` The service's status page says: ${page.overall}${troubled.length ? ` (${troubled.map((s) => `${s.name}: ${s.state}${s.reason ? `, ${s.reason}` : ''}`).join('; ')})` : ''}.`
        : '';
      step({
        name: 'status page',
        ok: page !== undefined,
        detail: page
          ? `${new URL(advertised, url).href}: ${page.overall}${troubled.length ? `; ${troubled.map((s) => `${s.name} ${s.state}`).join(', ')}` : ''}`
          : `${advertised}: could not be read`,
      });
    }

    if (!last.ok) return transportVerdict(url, [last.error ?? ''], opts, networkOk, finish);
    if (answeredWell(last))
      return finish('ok', `${url.host} answered ${last.status} in ${last.ms.toFixed(0)} ms.`, {
        hops: last.hops,
        requestId: last.requestId,
      });
    const hop = failedHop(last.hops);
    const where = hop ? `${hop.proxy}${hop.details ? ` (${hop.details})` : ''}` : "the service's own server";
    const what = hop?.error ?? (hop?.status ? `received ${hop.status}` : `status ${last.status}`);
    const extra = { hops: last.hops, requestId: last.requestId, retryAfter: last.retryAfter, failedAt: where };
    if (isMaintenance(last.hops, last.problemType)) {
      const until =
        last.retryAfter !== undefined ? new Date(Date.now() + last.retryAfter * 1000).toISOString() : undefined;
      return finish(
        'service-maintenance',
        `${url.host} is down for planned maintenance${until ? ` until about ${until}` : ''}.${statusNote}`,
        extra,
      );
    }
    if (isOverload(last.status, last.hops)) {
      return finish(
        'service-overloaded',
        `${url.host} is turning requests away (${last.status}, ${what} at ${where})${last.retryAfter !== undefined ? `; it asks to come back in ${last.retryAfter} s` : ''}.${statusNote}`,
        extra,
      );
    }
    return finish(
      'service-side',
      `${url.host} answered ${last.status}: ${what} at ${where}. Your side is fine; the fault is behind the service's gateway.${statusNote}`,
      extra,
    );
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

function answeredWell(a: HttpAttempt): boolean {
  return a.ok && a.status !== undefined && a.status < 500 && a.status !== 429;
}

function describeAttempt(a: HttpAttempt): string {
  if (!a.ok) return `no answer: ${a.error}`;
  const hops = a.hops
    .map(
      (h) =>
        `${h.proxy}${h.error ? ` error=${h.error}` : ''}${h.status ? ` received-status=${h.status}` : ''}${h.details ? ` "${h.details}"` : ''}`,
    )
    .join(' → ');
  return `${a.status} in ${a.ms.toFixed(0)} ms${hops ? `; Proxy-Status: ${hops}` : ''}${a.via ? `; Via: ${a.via}` : ''}${a.retryAfter !== undefined ? `; Retry-After: ${a.retryAfter} s` : ''}${a.requestId ? `; request id ${a.requestId}` : ''}`;
}

function describeLookups(system: Lookup, others: Lookup[]): string {
  const one = (l: Lookup): string =>
    `${l.resolver}: ${l.ok ? l.addresses.join(', ') : l.error} (${l.ms.toFixed(0)} ms)`;
  let detail = [system, ...others].map(one).join('; ');
  const agreeing = others.filter((o) => o.ok && system.ok);
  if (agreeing.some((o) => !o.addresses.some((a) => system.addresses.includes(a))))
    detail += '; the resolvers disagree';
  return detail;
}

type Finish = (verdict: Verdict, summary: string, extra?: Partial<DoctorReport>) => DoctorReport;

async function dnsVerdict(
  url: URL,
  system: Lookup,
  others: Lookup[],
  opts: DoctorOptions,
  networkOk: boolean,
  finish: Finish,
): Promise<DoctorReport> {
  const answered = others.find((o) => o.ok);
  if (answered) {
    return finish(
      'your-dns',
      `Your system resolver cannot resolve ${url.hostname} (${system.error}), but ${answered.resolver} can (${answered.addresses.join(', ')}): your DNS is the problem.`,
      { failedAt: 'your DNS resolver' },
    );
  }
  if (opts.control) {
    const control = await systemLookup(opts.control.hostname, opts.timeoutMs);
    if (!control.ok)
      return finish(
        'your-network',
        `Nothing resolves from here: neither ${url.hostname} (${system.error}) nor the control ${opts.control.hostname} (${control.error}).`,
        { failedAt: 'your network or its DNS' },
      );
  }
  if (!networkOk)
    return finish(
      'your-network',
      `${url.hostname} does not resolve (${system.error}) and this machine has no working network.`,
      { failedAt: 'your network' },
    );
  return finish(
    'your-dns',
    `${url.hostname} does not resolve from here (${system.error}${others.length ? `; nor from ${others.map((o) => o.resolver).join(', ')}` : ''}). Check the address for a typo, or your DNS settings.`,
    { failedAt: 'DNS' },
  );
}

async function transportVerdict(
  url: URL,
  errors: string[],
  opts: DoctorOptions,
  networkOk: boolean,
  finish: Finish,
): Promise<DoctorReport> {
  if (opts.control) {
    const dispatcher = dispatcherFor(proxyFor(opts.control, opts.env ?? process.env).proxy, opts.timeoutMs);
    const control = await fetchOnce(opts.control, dispatcher).finally(() => dispatcher.close());
    if (!control.ok)
      return finish(
        'your-network',
        `Neither ${url.host} (${errors.join(', ')}) nor the control ${opts.control.host} (${control.error}) can be reached: the trouble is your network.`,
        { failedAt: 'your network' },
      );
    return finish(
      'service-side',
      `${url.host} cannot be reached (${errors.join(', ')}) while the control ${opts.control.host} answers ${control.status}: the service is down or unreachable.`,
      { failedAt: `the service's address ${url.host}` },
    );
  }
  if (errors.length > 0 && errors.every((e) => e === 'ECONNREFUSED')) {
    return finish(
      'service-side',
      `${url.host} refused the connection: the machine answered but nothing accepts connections on port ${url.port || (url.protocol === 'https:' ? 443 : 80)}. The service is down or restarting.`,
      { failedAt: `the service's address ${url.host}` },
    );
  }
  if (!networkOk)
    return finish(
      'your-network',
      `${url.host} cannot be reached (${errors.join(', ')}) and this machine has no working network.`,
      { failedAt: 'your network' },
    );
  return finish(
    'unknown',
    `${url.host} cannot be reached (${errors.join(', ')}). Run again with --control URL (a site you trust) to tell your network from the service.`,
  );
}
