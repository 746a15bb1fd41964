/**
 * One upstream host: its address, its undici connection pool, and the live facts the
 * balancer and the detectors read: requests outstanding, a latency average, and whether it
 * is in rotation (active health, passive ejection, an upstream's own Retry-After).
 */
import { buildConnector, Pool } from 'undici';
import type { UpstreamConfig, UpstreamHostAddress } from '../config/schema.js';

/** The latency a failure counts as: far slower than any healthy answer, gone in a few seconds of fading. */
const FAILURE_PENALTY_MS = 1000;

/** Weight of a new sample in the latency average (about the last 10 samples count). */
const EWMA_ALPHA = 0.1;
/**
 * Without new samples a host's latency fades by e every DECAY_MS, so a host that was slow
 * (or down) is probed again after a while instead of being starved of the traffic that
 * would show it has recovered.
 */
const DECAY_MS = 1000;

export class UpstreamHost {
  readonly origin: string;
  readonly label: string;
  readonly dispatcher: Pool;
  /** The protocol spoken to this host (the pool's `protocol`). */
  readonly protocol: UpstreamConfig['protocol'];
  /** For an https:// host, the TLS name its requests are sent under (one for all: see the connector). */
  readonly servername: string | undefined;
  /** Requests sent to this host and not yet finished. */
  outstanding = 0;
  /** Exponentially weighted average time to response headers, in ms (0 until measured). */
  latencyMs = 0;
  /** When latencyMs was last updated (performance.now()). */
  private latencyAt = 0;
  /** Passing active health checks (true until checks say otherwise). */
  healthy = true;
  /** Out of rotation until this time (ms since epoch): ejected, or asked us to wait. */
  ejectedUntil = 0;
  /** Times this host has been ejected; ejections grow longer with each. */
  ejections = 0;
  consecutiveFailures = 0;
  /** Drained by an operator: no new requests, while those under way finish. */
  draining = false;
  /** Relative share of traffic (an SRV record's weight); 1 for every listed host. */
  weight = 1;
  /** When the host last came back into rotation by a health check (ms since epoch). */
  returnedAt = 0;
  private readonly slowStartMs: number;

  /** `files`: the configuration's referenced files by path (the TLS CA bundle, client certificate and key). */
  constructor(address: UpstreamHostAddress, config: UpstreamConfig, files: ReadonlyMap<string, string> = new Map()) {
    this.origin = address.origin;
    this.label = address.label;
    this.slowStartMs = config.slowStart;
    this.protocol = config.protocol;
    const https = address.origin.startsWith('https:');
    // The name the host's certificate must carry: the pool's tls.servername, else the DNS name a
    // discovered address stands for, else (undefined here) the host's own name or address.
    const servername = config.tls?.servername ?? address.servername;
    this.servername = https ? (servername ?? new URL(address.origin).hostname) : undefined;
    // undici takes the TLS server name from each request's Host field, and drops its connection
    // whenever that name changes. A gateway passes on its clients' Host: the name checked must be
    // the host's own (or the one above), as configured, and one connection serves every Host. So
    // the connector is ours, its name fixed, and requests carry that same name.
    const connector = buildConnector({
      timeout: config.timeouts.connect,
      allowH2: this.protocol !== 'http1',
      useH2c: this.protocol === 'h2c',
      ...tlsOptions(config, files),
    } as buildConnector.BuildOptions);
    // useH2c is read by undici's Pool at the top level too (its typings list it only under
    // h2Options, where the Pool would not see it).
    this.dispatcher = new Pool(address.origin, {
      connections: config.keepAlive.connections,
      pipelining: 1,
      // A server's `Keep-Alive: timeout=N` hint may shorten our idle time but never lengthen it,
      // and we give up on an idle socket a second before the server would, so a request is
      // rarely written on a connection the server is in the middle of closing (and when it is,
      // the retry policy sends it again: the server cannot have processed it).
      keepAliveTimeout: config.keepAlive.idle,
      keepAliveMaxTimeout: config.keepAlive.idle,
      keepAliveTimeoutThreshold: 1000,
      connect: (options, callback) => connector({ ...options, servername }, callback),
      // undici 8 offers h2 over TLS unless told not to; upstream requests stay HTTP/1.1 until a
      // pool asks for HTTP/2 (the keep-alive-race rule is HTTP/1.1's). For h2, ALPN offers `h2`
      // first (undici always adds http/1.1 after it: a host that only speaks HTTP/1.1 is still
      // served, though a gRPC call to it fails). h2c is HTTP/2 with prior knowledge over
      // cleartext (undici's useH2c: the connection preface goes out at once, no Upgrade dance).
      allowH2: this.protocol !== 'http1',
      useH2c: this.protocol === 'h2c',
      headersTimeout: config.timeouts.response,
      bodyTimeout: config.timeouts.idle,
      // The gateway's own limits apply downstream; upstream answers may be as large as needed.
      maxResponseSize: -1,
    } as Pool.Options);
  }

  /** In rotation: healthy and not ejected. */
  available(now: number): boolean {
    return this.healthy && !this.draining && now >= this.ejectedUntil;
  }

  /**
   * A peak-sensitive average (as Linkerd's PeakEwma): a slower sample is taken at once, so a
   * host that turns slow loses its traffic immediately; faster samples pull it down gradually.
   */
  observeLatency(ms: number, now = performance.now()): void {
    const current = this.latency(now);
    this.latencyMs = ms > current ? ms : current + EWMA_ALPHA * (ms - current);
    this.latencyAt = now;
  }

  /**
   * The host is back in service (its health checks pass again): it starts unmeasured —
   * priced as the slowest measured host, its share ramped by slow start — rather than
   * carrying the failure penalties of its outage.
   */
  returned(now = Date.now()): void {
    this.returnedAt = now;
    this.consecutiveFailures = 0;
    this.latencyMs = 0;
  }

  /**
   * A failed attempt or a 5xx answer counts as a very slow one: a host that fails fast would
   * otherwise look like the fastest of the pool and draw ever more traffic (the "black hole"
   * of latency-aware balancing). The penalty fades like any latency, so the host is tried
   * again after a few seconds.
   */
  observeFailure(now = performance.now()): void {
    this.observeLatency(FAILURE_PENALTY_MS, now);
  }

  /** The latency average as it stands now, faded for the time since the last sample; 0 when never measured. */
  latency(now: number): number {
    if (this.latencyMs === 0) return 0;
    const idle = now - this.latencyAt;
    return idle < 50 ? this.latencyMs : this.latencyMs * Math.exp(-idle / DECAY_MS);
  }

  /**
   * The share of its normal traffic a host should take now: 1, or less while it ramps up
   * after coming back (from 10% to 100% over the slow-start window), so a host that just
   * restarted, with cold caches and a fresh JIT, is not handed a full share at once.
   */
  warmth(now: number): number {
    if (this.slowStartMs <= 0) return 1;
    const back = Math.max(this.returnedAt, this.ejectedUntil);
    if (back === 0 || now < back || now - back >= this.slowStartMs) return 1;
    return Math.max(0.1, (now - back) / this.slowStartMs);
  }

  /** The state shown on /api/status. */
  state(now: number): 'in_rotation' | 'unhealthy' | 'ejected' | 'draining' {
    if (this.draining) return 'draining';
    if (!this.healthy) return 'unhealthy';
    return now < this.ejectedUntil ? 'ejected' : 'in_rotation';
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

/** undici's TLS connect options from a pool's `tls` settings and protocol (none for a plain HTTP/1.1 pool). */
function tlsOptions(config: UpstreamConfig, files: ReadonlyMap<string, string>): Record<string, unknown> {
  const tls = config.tls;
  const alpn = config.protocol === 'h2' ? { preferH2: true } : {};
  if (tls === undefined) return alpn;
  return {
    ...alpn,
    ca: tls.ca === undefined ? undefined : files.get(tls.ca),
    cert: tls.cert === undefined ? undefined : files.get(tls.cert),
    key: tls.key === undefined ? undefined : files.get(tls.key),
    rejectUnauthorized: tls.verify,
  };
}
