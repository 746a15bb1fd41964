/**
 * One configuration made live: the router with each route's resolved policy, the upstream
 * pools with their detectors, the reply settings, and the observers a finished request is
 * given to. A reload builds a new Runtime and the gateway swaps it in; requests already under
 * way finish on the one they started with.
 */
import type { EventLoopGuard } from './admission/event-loop-guard.js';
import { describeGate, type GateState } from './admission/concurrency-gate.js';
import type { Maintenance } from './admission/maintenance.js';
import type { RateLimitStores } from './admission/rate-limit.js';
import type { GatewayConfig } from './config/schema.js';
import type { PageSettings } from './explain/page.js';
import { AccessLog } from './observe/access-log.js';
import type { LineDestination } from './observe/log-sink.js';
import type { Logger } from './observe/logger.js';
import type { CacheSize, GatewayMetrics, HostState, MaintenanceState, PoolSize } from './observe/metrics.js';
import type { RequestObserver, RequestRecord } from './observe/record.js';
import type { PathPolicy } from './http/path.js';
import type { BodyBudget } from './proxy/request-body.js';
import { Route, Router } from './route/router.js';
import { certificateFacts, daysLeft, EXPIRY_WARNING_DAYS, type CertificateFacts } from './listen/certificate.js';
import { formatAddress } from './config/units.js';
import { UpstreamPool, type PoolEvents } from './upstream/pool.js';

/** Longest the gateway waits for DNS-discovered pools' first answer before it takes traffic. */
const KNOWN_WITHIN_MS = 3000;

/** What every runtime of one gateway shares: its observers and the state that outlives a reload. */
export interface GatewayShared {
  metrics: GatewayMetrics;
  logger: Logger;
  /** The JSON line destination for the access log's fast path; absent when pino must format (pretty). */
  lines: LineDestination | undefined;
  /** Maintenance windows, the operator's switch and drained hosts. */
  maintenance: Maintenance;
  /** Sheds new requests while the process's event loop is held up. */
  loopGuard: EventLoopGuard;
  /** Request-body bytes held in memory across the gateway. */
  bodies: BodyBudget;
  /** Where rate-limit buckets live when the fleet shares a store; in this process when absent. */
  rateLimitStores?: RateLimitStores;
  /** When the certificate ACME holds for a name expires (none yet: undefined). */
  acmeExpiry?: (name: string) => Date | undefined;
}

/** What the preflight checks a request's target and body against, resolved from `server`. */
export interface RequestLimits {
  maxUriLength: number;
  paths: PathPolicy;
  /** Longest pause between two pieces of a request body. */
  bodyIdleMs: number;
}

/** What the gateway's own answers say of it, resolved from `name` and `errors`. */
export interface ReplySettings {
  proxyName: string;
  page: PageSettings;
  statusPage: string | undefined;
}

export class Runtime implements RequestObserver {
  readonly router: Router;
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly replies: ReplySettings;
  readonly limits: RequestLimits;
  /** Request-body bytes held in memory across the gateway. */
  readonly bodies: BodyBudget;
  /** The certificate files of the HTTPS listeners, read once per configuration. */
  private readonly certificateFiles: readonly CertificateFacts[];
  private readonly acmeExpiry: ((name: string) => Date | undefined) | undefined;
  /** Names the admin API answers to besides IP addresses and localhost. */
  readonly adminHosts: ReadonlySet<string>;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly maintenance: Maintenance;
  readonly loopGuard: EventLoopGuard;
  /** True once shutdown began: answers close their connections. */
  draining = false;
  /** Requests that started on this runtime and have not finished. */
  private inFlight = 0;
  /** Called when the last request of a retired runtime finishes. */
  private whenIdle: (() => void) | undefined = undefined;
  private readonly trustedClients: ReadonlySet<string>;
  private readonly exposeDetails: boolean;
  private readonly accessLog: AccessLog;

  /**
   * `previous` hands over what the running configuration learned: each pool's concurrency
   * limit, and each unchanged rate limit's buckets (so a reload is not a way around a quota).
   */
  constructor(
    readonly config: GatewayConfig,
    shared: GatewayShared,
    previous?: Runtime,
  ) {
    const { metrics, logger, maintenance } = shared;
    this.metrics = metrics;
    this.logger = logger;
    this.maintenance = maintenance;
    this.loopGuard = shared.loopGuard;
    const events = poolEvents(metrics, logger, maintenance);
    const pools = new Map<string, UpstreamPool>();
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const pool = new UpstreamPool(name, upstream, events, config.files, previous?.pools.get(name));
      const before = previous?.pools.get(name)?.gate;
      if (before !== undefined && pool.gate !== undefined) pool.gate.limit.inheritFrom(before.limit);
      pools.set(name, pool);
    }
    this.pools = pools;
    this.applyDrains();
    this.router = buildRouter(config, pools, previous, shared.rateLimitStores);
    const page = config.errors.page;
    this.replies = {
      proxyName: config.name,
      page: {
        brand: page.brand,
        texts: page.texts,
        autoRetry: page.autoRetry,
        template: page.template === undefined ? undefined : config.files.get(page.template),
      },
      statusPage: config.errors.statusPage ?? config.status.path,
    };
    const server = config.server;
    this.limits = { maxUriLength: server.maxUriLength, paths: server.paths, bodyIdleMs: server.bodyTimeout };
    this.bodies = shared.bodies;
    this.adminHosts = new Set(config.adminHosts);
    this.acmeExpiry = shared.acmeExpiry;
    this.certificateFiles = config.listen.flatMap((l) =>
      l.tls === undefined
        ? []
        : [...(l.tls.cert === undefined ? [] : [l.tls.cert]), ...(l.tls.sni ?? []).map((p) => p.cert)].map((cert) =>
            certificateFacts(formatAddress(l.address), config.files.get(cert)!),
          ),
    );
    this.trustedClients = new Set(config.errors.trustedClients);
    this.exposeDetails = config.errors.exposeDetails;
    this.accessLog = new AccessLog(config.log.access, logger, shared.lines);
    if (previous !== undefined) this.draining = previous.draining;
  }

  /** Takes the hosts an operator drained (here or, with a shared store, anywhere in the fleet) out of rotation. */
  applyDrains(): void {
    for (const pool of this.pools.values())
      for (const h of pool.hosts) h.draining = this.maintenance.drained.has(`${pool.name}/${h.label}`);
  }

  /** Whether this client may see failing host addresses and raw error text. */
  revealsDetails(clientAddress: string): boolean {
    return this.exposeDetails || this.trustedClients.has(clientAddress);
  }

  /** A request started on this runtime: it finishes on it, retries and resumes included. */
  requestStarted(): void {
    this.inFlight++;
  }

  requestFinished(record: RequestRecord): void {
    this.metrics.requestFinished(record);
    this.accessLog.requestFinished(record);
    if (--this.inFlight === 0) this.whenIdle?.();
  }

  /** Starts the background work (health checks, DNS discovery). */
  start(): void {
    for (const pool of this.pools.values()) pool.start();
  }

  /**
   * Settles when every pool knows its hosts — those found by DNS have had their first answer
   * or failure — or after `withinMs`: the gateway waits for it before it takes traffic on this
   * runtime, so the first requests are not answered "no hosts" while a resolver is asked.
   * `awaitsHosts()` says whether there is anything to wait for.
   */
  awaitsHosts(): boolean {
    for (const pool of this.pools.values()) if (pool.discovery?.answeredYet === false) return true;
    return false;
  }

  async known(withinMs = KNOWN_WITHIN_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, withinMs).unref();
    });
    await Promise.race([Promise.all([...this.pools.values()].map((p) => p.known())), deadline]);
    clearTimeout(timer);
  }

  /**
   * A reload replaced this runtime: its health checks stop now, and its pools close once the
   * requests that started on it have finished — a retry, hedge or resume of such a request
   * still needs them.
   */
  async retire(): Promise<void> {
    for (const pool of this.pools.values()) pool.stopChecks();
    if (this.inFlight > 0)
      await new Promise<void>((resolve) => {
        this.whenIdle = resolve;
      });
    await this.close();
  }

  /** Stops the background work and closes the pools (they finish the exchanges they carry). */
  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }

  /** Every host's rotation state, for the metrics. */
  hostStates(): HostState[] {
    const now = Date.now();
    const out: HostState[] = [];
    for (const pool of this.pools.values())
      for (const h of pool.hosts) out.push({ upstream: pool.name, host: h.label, inRotation: h.available(now) });
    return out;
  }

  /** How many hosts each pool has (discovered ones change), for the metrics. */
  poolSizes(): PoolSize[] {
    const out: PoolSize[] = [];
    for (const pool of this.pools.values()) out.push({ upstream: pool.name, hosts: pool.hosts.length });
    return out;
  }

  /** Every pool's concurrency gate, for the metrics. */
  gateStates(): GateState[] {
    const out: GateState[] = [];
    for (const pool of this.pools.values()) if (pool.gate) out.push(describeGate(pool.name, pool.gate));
    return out;
  }

  /**
   * The HTTPS listeners' certificates — files, and those ACME holds now: the names they cover
   * and when they expire.
   */
  get certificates(): readonly CertificateFacts[] {
    const expiry = this.acmeExpiry;
    if (expiry === undefined) return this.certificateFiles;
    const automatic: CertificateFacts[] = [];
    for (const l of this.config.listen)
      for (const name of l.tls?.acme ?? []) {
        const notAfter = expiry(name);
        if (notAfter !== undefined) automatic.push({ listener: formatAddress(l.address), names: [name], notAfter });
      }
    return automatic.length === 0 ? this.certificateFiles : [...this.certificateFiles, ...automatic];
  }

  /** Says in the log which certificates expire soon (at start, on reload, and twice a day). */
  warnOfExpiringCertificates(now = Date.now()): void {
    for (const c of this.certificates) {
      const days = daysLeft(c, now);
      if (days < EXPIRY_WARNING_DAYS)
        this.logger.warn(
          { listener: c.listener, names: c.names, not_after: c.notAfter.toISOString(), days_left: days },
          days < 0 ? 'certificate expired' : 'certificate expires soon: renew it',
        );
    }
  }

  /** Each cached route's store, for the metrics. */
  cacheStates(): CacheSize[] {
    const out: CacheSize[] = [];
    for (const r of this.router.routes) {
      if (r.cache === undefined) continue;
      const s = r.cache.store.stats();
      out.push({ route: r.name, bytes: s.bytes, entries: s.entries });
    }
    return out;
  }

  /** Which routes are in maintenance, for the metrics. */
  maintenanceStates(): MaintenanceState[] {
    return this.router.routes.map((r) => ({
      route: r.name,
      active: this.maintenance.activeFor(this.config, r.name) !== undefined,
    }));
  }
}

/**
 * What the pools tell the gateway. Built apart from the Runtime's constructor on purpose: a
 * closure made there would share its scope — the previous runtime's routes among it — and the
 * pools' timers would keep every earlier runtime alive, one more per reload.
 */
function poolEvents(metrics: GatewayMetrics, logger: Logger, maintenance: Maintenance): PoolEvents {
  return {
    hostsChanged(pool, added, removed) {
      // An operator's drain names the host by address: it holds for a host that comes and goes.
      for (const h of added) h.draining = maintenance.drained.has(`${pool.name}/${h.label}`);
      logger.info(
        {
          upstream: pool.name,
          name: pool.config.dns?.name,
          added: added.map((h) => h.label),
          removed: removed.map((h) => h.label),
          // Requests under way on the removed hosts: they finish there, then the connections close.
          finishing: removed.reduce((n, h) => n + h.outstanding, 0),
          hosts: pool.hosts.length,
        },
        'upstream hosts changed (dns)',
      );
    },
    hostClosed(pool, host) {
      // Unless the same address is in the pool again (a record back under another host object).
      if (!pool.hosts.some((h) => h.label === host.label)) metrics.forgetHost(pool.name, host.label);
    },
    resolved(pool, result, error, failures) {
      metrics.discoveryResolutions.with(pool.name, result).inc();
      // Once when resolution starts failing and once when it recovers, not on every retry.
      if (result !== 'ok' && failures === 1)
        logger.warn(
          { upstream: pool.name, name: pool.config.dns?.name, result, error, hosts: pool.hosts.length },
          pool.hosts.length > 0
            ? 'dns discovery failed: keeping the last good hosts'
            : 'dns discovery failed: no hosts yet, retrying',
        );
      else if (result === 'ok' && failures > 0)
        logger.info(
          { upstream: pool.name, name: pool.config.dns?.name, hosts: pool.hosts.length, failures },
          'dns discovery recovered',
        );
    },
    ejected(pool, host, reason, ms) {
      metrics.ejections.with(pool.name, host.label, reason).inc();
      logger.warn({ upstream: pool.name, host: host.label, reason, ms }, 'host ejected');
    },
    healthChanged(pool, host, healthy) {
      metrics.healthTransitions.with(pool.name, host.label, healthy ? 'healthy' : 'unhealthy').inc();
      logger.warn(
        { upstream: pool.name, host: host.label, healthy },
        healthy ? 'host healthy again' : 'host failed its health checks',
      );
    },
  };
}

/** The routes, each inheriting what its namesake in the previous configuration learned (rate-limit buckets). */
function buildRouter(
  config: GatewayConfig,
  pools: ReadonlyMap<string, UpstreamPool>,
  previous: Runtime | undefined,
  rateLimitStores: RateLimitStores | undefined,
): Router {
  const oldRoutes = new Map(previous?.router.routes.map((r) => [r.name, r]));
  return new Router(
    config.routes.map(
      (r) =>
        new Route(
          r,
          pools.get(r.upstream)!,
          config.server.requestBuffer,
          oldRoutes.get(r.name ?? r.match.path),
          config.name,
          rateLimitStores,
        ),
    ),
  );
}
