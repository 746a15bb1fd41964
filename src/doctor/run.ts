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
import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import { answersPlainHttp, connectTo, type TlsResult, tlsHandshake, tunnelThrough } from './connect.js';
import { resolverLookup, systemLookup, type Lookup } from './dns.js';
import { inspectNetwork, proxyFor, proxyName } from './environment.js';
import { describeAttempt, describeLookups, describeStatusPage, operatorMessage } from './evidence.js';
import {
  dispatcherFor,
  fetchOnce,
  readStatusPage,
  troubledServices,
  type HttpAttempt,
  type Hop,
  type StatusPageSummary,
} from './http.js';
import { describeAnswer, failedHop, isMaintenance, isOverload, VERDICTS, type Verdict } from './verdict.js';
import { durationInWords, whenInWords } from './when.js';

export interface DoctorOptions {
  resolvers: string[];
  control?: URL;
  attempts: number;
  timeoutMs: number;
  /** Longest pause between attempts, whatever Retry-After asks. */
  maxBackoffMs: number;
  env?: NodeJS.ProcessEnv;
  /** The URL was given without a scheme: https was assumed, and http is tried if the server speaks only that. */
  schemeAssumed?: boolean;
}

export interface Step {
  name: string;
  ok: boolean | null;
  ms?: number;
  detail: string;
}

/** What a person watching the ladder is told as it happens. */
export interface DoctorProgress {
  step?(s: Step): void;
  /** Said before a pause, so a silent terminal is never a mystery. */
  waiting?(text: string): void;
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
  /** When a maintenance window is expected to end (ISO 8601, to the second). */
  until?: string;
  exitCode: number;
}

export async function runDoctor(given: URL, opts: DoctorOptions, progress: DoctorProgress = {}): Promise<DoctorReport> {
  /** The URL being checked: the one given, or its http:// twin when the server speaks only plain HTTP. */
  let url = given;
  const steps: Step[] = [];
  const step = (s: Step): Step => {
    steps.push(s);
    progress.step?.(s);
    return s;
  };
  /** Said at the end of every verdict, whatever it is: the scheme that was switched, the proxy not tested. */
  const notes: string[] = [];
  const finish = (verdict: Verdict, summary: string, extra: Partial<DoctorReport> = {}): DoctorReport => ({
    url: url.href,
    verdict,
    summary: [summary, ...notes].join(' '),
    steps,
    hops: [],
    advice: [...VERDICTS[verdict].advice({ requestId: extra.requestId })],
    exitCode: VERDICTS[verdict].exit,
    ...extra,
  });
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
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
  const ignored = proxy.ignored
    ? `; ${proxy.ignored} is set but not read (like curl, only the lowercase http_proxy counts)`
    : '';
  if (proxy.unusable !== undefined) {
    const shown = proxy.unusable.replace(/\/\/[^/@]*@/, '//'); // never print the credentials it may carry
    step({
      name: 'proxy/vpn',
      ok: false,
      detail: `${proxy.variable}="${shown}" applies to this URL but is not a proxy address${ignored}${vpn}`,
    });
    return finish(
      'your-proxy-or-vpn',
      `${proxy.variable} is set to "${shown}", which is not a proxy address (http://, ` +
        `https://, socks4://, socks4a://, socks5:// or socks5h://): curl refuses ` +
        `it, and so do programs that read it the same way.`,
      { failedAt: `the ${proxy.variable} variable` },
    );
  }
  /** A SOCKS proxy is reached, but the doctor cannot send requests through one: it checks the direct path. */
  const untestedSocks = proxy.kind === 'socks' ? proxy : undefined;
  /** The HTTP proxy the requests go through, if any. */
  let via = proxy.kind === 'http' ? proxy.proxy : undefined;
  if (proxy.proxy !== undefined) {
    const p = proxy.proxy;
    const name = proxyName(p);
    const reach = await connectTo(p.hostname.replace(/^\[|\]$/g, ''), Number(p.port || 443), opts.timeoutMs);
    step({
      name: 'proxy/vpn',
      ok: reach.ok,
      ms: reach.ms,
      detail:
        `${proxy.variable}=${name}${proxy.kind === 'socks' ? ' (a SOCKS proxy)' : ''} ` +
        `applies to this URL: ${reach.ok ? 'reachable' : `not reachable (${reach.error})`}` +
        (reach.ok && untestedSocks
          ? '; doctor cannot send requests through SOCKS, so it checks the service directly'
          : '') +
        `${ignored}${vpn}`,
    });
    if (!reach.ok)
      return finish(
        'your-proxy-or-vpn',
        `The proxy ${name} (from ${proxy.variable}) that this URL goes through does ` +
          `not accept connections (${reach.error}); the request never reaches the ` +
          `service.`,
        { failedAt: `proxy ${name}` },
      );
    if (untestedSocks)
      notes.push(
        `This was checked directly, not through the SOCKS proxy ${name} (from ${proxy.variable}) ` +
          `that curl would use: that proxy accepts connections, but the way through ` +
          `it was not tested.`,
      );
  } else {
    step({
      name: 'proxy/vpn',
      ok: true,
      detail: `${proxy.bypassedBy ? `${proxy.variable} set, but ${proxy.bypassVariable} (${proxy.bypassedBy}) exempts this URL` : 'no proxy applies'}${ignored}${vpn}`,
    });
  }
  /** What failed on the direct path says little when the user's programs take a SOCKS proxy instead. */
  const socksVerdict = (failure: string, failedAt: string): DoctorReport | undefined =>
    untestedSocks &&
    finish(
      'unknown',
      `${failure} when tried directly, but your programs reach it through the ` +
        `SOCKS proxy ${proxyName(untestedSocks.proxy!)} (from ${untestedSocks.variable}), ` +
        `which doctor cannot test through.`,
      {
        failedAt,
        advice: [
          `Try the way through the proxy with curl, which reads ${untestedSocks.variable} too: curl -v ${url.href}`,
          `Or run doctor again with ${untestedSocks.variable} unset, if this machine ` +
            `should reach the service without it.`,
        ],
      },
    );

  // 3–5: the client's own path, unless an HTTP proxy makes the connection for it.
  if (proxy.kind !== 'http') {
    let addresses: string[] = [host];
    if (isIP(host) === 0) {
      const system = await systemLookup(host, opts.timeoutMs);
      const others = await Promise.all(opts.resolvers.map((r) => resolverLookup(host, r, opts.timeoutMs)));
      step({ name: 'dns', ok: system.ok, ms: system.ms, detail: describeLookups(system, others) });
      if (!system.ok)
        return (
          socksVerdict(`${url.hostname} does not resolve (${system.error})`, 'DNS') ??
          dnsVerdict(url, system, others, opts, networkOk, finish)
        );
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
    if (reached === undefined) {
      const errors = tcp.map((c) => c.error ?? '');
      return (
        socksVerdict(`${url.host} cannot be reached (${errors.join(', ')})`, `the service's address ${url.host}`) ??
        transportVerdict(url, errors, opts, networkOk, finish)
      );
    }
    if (url.protocol === 'https:') {
      const tls = await tlsHandshake(reached.address, port, host, opts.timeoutMs);
      // No certificate came back: before blaming TLS, see whether the server speaks plain HTTP.
      const plain =
        !tls.ok &&
        tls.subject === undefined &&
        (await answersPlainHttp(reached.address, port, url.host, opts.timeoutMs));
      if (plain && opts.schemeAssumed) {
        const http = new URL(url.href);
        http.protocol = 'http:';
        http.port = String(port);
        step({
          name: 'tls',
          ok: null,
          detail:
            `not spoken: ${url.host} answers in plain HTTP (the TLS handshake got ${tls.error}); ` +
            `no scheme was given, so doctor goes on with ${http.href}`,
        });
        notes.push(`It answers in plain HTTP (${http.href}), not HTTPS.`);
        url = http;
        port = Number(url.port || 80);
        // The proxy variables are read per scheme: an http_proxy may apply to the http:// twin.
        const plainProxy = proxyFor(url, opts.env ?? process.env);
        if (plainProxy.kind === 'http') {
          via = plainProxy.proxy;
          notes.push(`It was asked through the proxy ${proxyName(via!)} (from ${plainProxy.variable}).`);
        }
      } else if (plain) {
        step({
          name: 'tls',
          ok: false,
          ms: tls.ms,
          detail: `${tls.error}: ${url.host} answers in plain HTTP, not TLS`,
        });
        const http = new URL(url.href);
        http.protocol = 'http:';
        http.port = String(port);
        return finish(
          'service-side',
          `${url.host} does not speak TLS: it answers in plain HTTP, so an https:// ` +
            `address cannot work there (browsers say "SSL protocol error"). No certificate ` +
            `is involved.`,
          {
            failedAt: `TLS: ${url.host} speaks plain HTTP`,
            advice: [
              `If you typed the address, try it with http://: gangway doctor ${http.href}`,
              'If the https:// link came from the service, its TLS is set up wrong, and ' +
                'the service has to fix it; your side is fine.',
            ],
          },
        );
      } else {
        step({
          name: 'tls',
          ok: tls.ok,
          ms: tls.ms,
          detail: describeTls(tls),
        });
        if (!tls.ok) {
          const intercepted = net.vpnInterfaces.length > 0 && /SELF_SIGNED|UNABLE_TO_GET_ISSUER/.test(tls.error ?? '');
          if (intercepted)
            return finish(
              'your-proxy-or-vpn',
              `The TLS certificate presented for ${host} is not trusted (${tls.error}) and a VPN is active: something on your side may be intercepting the connection.`,
              { failedAt: 'TLS between you and the service' },
            );
          if (tls.subject === undefined)
            return finish(
              'service-side',
              `The TLS handshake with ${url.host} failed before any certificate was shown ` +
                `(${tls.error}): the service's TLS is broken, or it does not speak TLS on ` +
                `port ${port}.`,
              { failedAt: `the TLS handshake with ${url.host}` },
            );
          return finish(
            'service-side',
            `The service's TLS certificate is not valid for ${host} (${tls.nameMismatch ?? tls.error}).`,
            { failedAt: `the TLS certificate of ${host}` },
          );
        }
      }
    } else {
      step({ name: 'tls', ok: null, detail: 'skipped: plain http' });
    }
  } else if (url.protocol === 'https:' && via !== undefined) {
    const verdict = await tlsThroughProxy(url, via, host, port, opts.timeoutMs, step, finish);
    if (verdict !== undefined) return verdict;
  }

  // 6. HTTP
  const dispatcher = dispatcherFor(via, opts.timeoutMs);
  try {
    const first = await fetchOnce(url, dispatcher, opts.timeoutMs);
    step({ name: 'http', ok: answeredWell(first), ms: first.ms, detail: describeAttempt(first) });
    let last = first;

    // 7. repeat
    // Neither a maintenance window nor a proxy that wants credentials passes in a few seconds.
    const lasting =
      isMaintenance(first.hops, first.problemType) || first.proxyStatus === 407 || proxyRefuses(first.proxyStatus);
    if (!answeredWell(first) && opts.attempts > 1 && !lasting) {
      let good: HttpAttempt | undefined;
      let failed = 1;
      for (let i = 1; i < opts.attempts && good === undefined; i++) {
        const backoff = 500 * 2 ** (i - 1);
        const asked = last.retryAfter;
        const pause = Math.min(opts.maxBackoffMs, asked !== undefined ? asked * 1000 : backoff);
        progress.waiting?.(
          `${durationInWords(pause / 1000)} before attempt ${i + 1} of ${opts.attempts}: ${
            asked === undefined
              ? 'a pause, in case the fault passes'
              : `the service asked to wait ${durationInWords(asked)} (Retry-After)${asked * 1000 > pause ? `; doctor waits at most ${durationInWords(pause / 1000)}` : ''}`
          }`,
        );
        await new Promise((r) => setTimeout(r, pause));
        const next = await fetchOnce(url, dispatcher, opts.timeoutMs);
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
    let page: StatusPageSummary | undefined;
    if (advertised !== undefined) {
      page = await readStatusPage(advertised, url, dispatcher, opts.timeoutMs);
      const troubled = page ? troubledServices(page) : [];
      step({
        name: 'status page',
        ok: page !== undefined,
        detail: page
          ? `${new URL(advertised, url).href}: ${page.overall}${troubled.length ? `; ${troubled.map((t) => `${t.names.join(', ')} ${t.state}`).join('; ')}` : ''}`
          : `${advertised}: could not be read`,
      });
    }

    if (last.proxyStatus === 407 && via !== undefined)
      return finish(
        'your-proxy-or-vpn',
        `The proxy ${proxyName(via)} wants credentials (407 Proxy Authentication ` +
          `Required) before it passes the request on; the request never reaches the ` +
          `service.`,
        { failedAt: `proxy ${proxyName(via)}` },
      );
    if (proxyRefuses(last.proxyStatus) && via !== undefined)
      return finish(
        'your-proxy-or-vpn',
        `The proxy ${proxyName(via)} refuses to pass requests to ${url.host} on (it answered ` +
          `${last.proxyStatus}${STATUS_CODES[last.proxyStatus!] ? ` ${STATUS_CODES[last.proxyStatus!]}` : ''}): ` +
          `its rules block the way; the request never reaches the service.`,
        {
          failedAt: `proxy ${proxyName(via)}`,
          advice: [
            'Ask whoever runs the proxy whether it blocks this service, or reach the service without it if ' +
              'your network allows it.',
            'The service itself was not reached, so nothing is known to be wrong with it.',
          ],
        },
      );
    if (!last.ok) {
      if (untestedSocks)
        return socksVerdict(`${url.host} gives no answer (${last.error})`, `the service's address ${url.host}`)!;
      return transportVerdict(url, [last.error ?? ''], opts, networkOk, finish);
    }
    if (answeredWell(last)) {
      const answer = describeAnswer(last.status!, last.location);
      return finish(
        'ok',
        `${url.host} answered ${last.status}${STATUS_CODES[last.status!] ? ` ${STATUS_CODES[last.status!]}` : ''} ` +
          `in ${last.ms.toFixed(0)} ms${answer.meaning ? `: ${answer.meaning}` : ''}.`,
        { hops: last.hops, requestId: last.requestId, ...(answer.advice ? { advice: answer.advice } : {}) },
      );
    }
    const hop = failedHop(last.hops);
    const where = hop ? `${hop.proxy}${hop.details ? ` (${hop.details})` : ''}` : "the service's own server";
    const what = hop?.error ?? (hop?.status ? `received ${hop.status}` : `status ${last.status}`);
    const extra = { hops: last.hops, requestId: last.requestId, retryAfter: last.retryAfter, failedAt: where };
    if (isMaintenance(last.hops, last.problemType)) {
      const end = last.retryAfter !== undefined ? new Date(Date.now() + last.retryAfter * 1000) : undefined;
      const message = operatorMessage(page);
      return finish(
        'service-maintenance',
        `${url.host} is down for planned maintenance${end ? ` until about ${whenInWords(end)}` : ''}.${message ? ` The service says: "${message}".` : ''}`,
        { ...extra, until: end?.toISOString().replace(/\.\d+Z$/, 'Z') },
      );
    }
    const statusNote = describeStatusPage(page);
    if (isOverload(last.status, last.hops)) {
      return finish(
        'service-overloaded',
        `${url.host} is turning requests away (${last.status}, ${what} at ${where})${last.retryAfter !== undefined ? `; it asks to come back in ${durationInWords(last.retryAfter)}` : ''}.${statusNote}`,
        extra,
      );
    }
    return finish(
      'service-side',
      hop
        ? `${url.host} answered ${last.status}: ${what} at ${where}. Your side is ` +
            `fine; the fault is behind the service's gateway.${statusNote}`
        : `${url.host} answered ${last.status}${STATUS_CODES[last.status!] ? ` ${STATUS_CODES[last.status!]}` : ''}, ` +
            `and no gateway on the way names a failing hop. Your side is fine; the fault ` +
            `is on the service's side.${statusNote}`,
      extra,
    );
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

function answeredWell(a: HttpAttempt): boolean {
  return a.ok && a.status !== undefined && a.status < 500 && a.status !== 429;
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
    const control = await fetchOnce(opts.control, dispatcher, opts.timeoutMs).finally(() => dispatcher.close());
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

/**
 * A proxy's own 4xx to the request or its tunnel (407 is answered apart): a rule of the
 * proxy's, which no repetition changes. Its 5xx say it could not reach the service, which
 * is the service's or the network's story, not the proxy's.
 */
function proxyRefuses(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status < 500 && status !== 407;
}

/** The TLS rung's line: protocol, what ALPN chose, and what the certificate says. */
function describeTls(tls: TlsResult): string {
  if (tls.error && !tls.subject) return tls.error;
  const alpn = tls.alpn ? `, ${tls.alpn === 'h2' ? 'HTTP/2' : tls.alpn.toUpperCase()}` : '';
  const mismatch = tls.nameMismatch ? `; ${tls.nameMismatch}` : '';
  return (
    `${tls.protocol ?? ''}${alpn} certificate for ${tls.subject ?? '?'} from ${tls.issuer ?? '?'}, ` +
    `valid until ${tls.validTo ?? '?'} (${tls.daysLeft ?? '?'} days)${mismatch}${tls.error ? `; ${tls.error}` : ''}`
  );
}

/**
 * The TLS rung behind an HTTP proxy: the handshake inside a CONNECT tunnel, as the user's
 * programs make it. A refused tunnel is left to the HTTP rung, which names the proxy's answer.
 * An untrusted certificate is told apart by a direct handshake where this machine can make
 * one: a different certificate than the service's own means the proxy intercepts TLS (a
 * corporate inspection proxy whose root is not trusted here); the same one means the
 * service's certificate is at fault.
 */
async function tlsThroughProxy(
  url: URL,
  proxy: URL,
  host: string,
  port: number,
  timeoutMs: number,
  step: (s: Step) => Step,
  finish: (verdict: Verdict, summary: string, extra?: Partial<DoctorReport>) => DoctorReport,
): Promise<DoctorReport | undefined> {
  const name = proxyName(proxy);
  const tunnel = await tunnelThrough(proxy, host, port, timeoutMs);
  if (tunnel.socket === undefined) {
    step({ name: 'tls', ok: false, ms: tunnel.ms, detail: `through the proxy ${name}: no tunnel (${tunnel.error})` });
    return undefined;
  }
  const tls = await tlsHandshake(host, port, host, timeoutMs, tunnel.socket);
  tunnel.socket.destroy();
  step({ name: 'tls', ok: tls.ok, ms: tls.ms, detail: `through the proxy ${name}: ${describeTls(tls)}` });
  if (tls.ok) return undefined;
  if (tls.subject === undefined)
    return finish(
      'service-side',
      `The TLS handshake with ${url.host}, through the proxy ${name}, failed before any certificate was ` +
        `shown (${tls.error}): the service's TLS is broken, or it does not speak TLS on port ${port}.`,
      { failedAt: `the TLS handshake with ${url.host}` },
    );
  const direct = await connectTo(host, port, timeoutMs);
  const own = direct.ok ? await tlsHandshake(host, port, host, timeoutMs) : undefined;
  if (own?.fingerprint !== undefined && own.fingerprint !== tls.fingerprint)
    return finish(
      'your-proxy-or-vpn',
      `Through the proxy ${name}, ${host} presents a certificate from ${tls.issuer ?? 'an unknown issuer'} ` +
        `that is not trusted here (${tls.nameMismatch ?? tls.error}), while the service's own certificate ` +
        `is from ${own.issuer ?? 'another issuer'}: the proxy intercepts TLS, and this machine does not ` +
        `trust its certificates.`,
      {
        failedAt: `proxy ${name} (TLS interception)`,
        advice: [
          'Ask whoever runs the proxy for its root certificate and install it, or reach the service ' +
            'without the proxy if your network allows it.',
          'The service itself is not at fault.',
        ],
      },
    );
  return finish(
    'service-side',
    `The service's TLS certificate is not valid for ${host} (${tls.nameMismatch ?? tls.error})` +
      `${own === undefined ? `; seen through the proxy ${name}, which could also be the one presenting it` : ''}.`,
    { failedAt: `the TLS certificate of ${host}` },
  );
}
