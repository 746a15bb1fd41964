/**
 * The composition root: builds the gateway's shared parts (log, metrics, maintenance, the
 * event-loop guard), the runtime of the configuration in force, the client and admin
 * listeners; swaps runtimes on reload (one path for the library, SIGHUP, --watch and the
 * admin API); and shuts down gracefully (stop accepting, let in-flight requests finish
 * within the drain timeout, then cut what is left).
 */
import type { Server } from 'node:http';
import { AcmeCertificates, type AcmeSettings } from './acme/certificates.js';
import { ChallengeAnswers } from './acme/challenges.js';
import { AcmeFleet } from './acme/fleet.js';
import { type AcmeStorage, DirectoryStorage } from './acme/storage.js';
import { StoreStorage } from './acme/store-storage.js';
import { createAdminServer } from './admin/server.js';
import type { StatusSources } from './admin/status-model.js';
import { EventLoopGuard } from './admission/event-loop-guard.js';
import { Maintenance } from './admission/maintenance.js';
import { ConfigError, loadConfigFile, validateConfig } from './config/load.js';
import type { GatewayConfig, GatewayConfigInput, ListenerConfig } from './config/schema.js';
import { formatAddress, type Address } from './config/units.js';
import { listenOn } from './listen/bind.js';
import { createListener, type Listener, type TlsCertificate } from './listen/listener.js';
import type { LineDestination } from './observe/log-sink.js';
import { createLog, externalLog, type GatewayLog, type Logger } from './observe/logger.js';
import type { GateState } from './admission/concurrency-gate.js';
import { GatewayMetrics, type HostState, type MetricSources } from './observe/metrics.js';
import type { TimelineView } from './observe/timeline.js';
import { BodyBudget } from './proxy/request-body.js';
import { FleetState, storeFromConfig } from './state/fleet-state.js';
import type { StateStore } from './state/store.js';
import { Runtime, type GatewayShared } from './runtime.js';
import { VERSION } from './version.js';
import { applyChange } from './admin/changes.js';
import type { WorkerLink } from './workers/link.js';
import type { WorkerReport } from './workers/protocol.js';

export interface GatewayOptions {
  /** Use this logger instead of one built from the config's `log` section. */
  logger?: Logger;
  /** Write JSON log lines here instead of standard output (each call receives one line). */
  logDestination?: LineDestination;
  /** Collect Node process metrics (default true; off lets several gateways share a process quietly). */
  processMetrics?: boolean;
  /** The configuration's file, which `reload()` without arguments (SIGHUP, --watch, POST /api/reload) reads again. */
  configFile?: string;
  /**
   * How `reload()` without arguments reads the configuration again, when reading `configFile`
   * is not the whole story (the demo puts its chosen ports into the example file each time).
   */
  loadConfig?: () => GatewayConfig;
  /** The status page's time step (default 5 s); tests shorten it. */
  statusStepMs?: number;
  /**
   * Share state through this store, whatever the configuration's `store` says: a worker is given
   * a SupervisorStore (src/state/supervisor.ts) talking to its supervisor. The caller closes it.
   */
  store?: StateStore;
  /**
   * This gateway is one of several worker processes sharing the listeners (`workers` > 1):
   * its log lines carry `worker`, and its admin API and status page speak for the machine.
   */
  worker?: WorkerLink;
}

export interface Gateway {
  /**
   * Starts the listeners; resolves with the addresses actually bound: `proxy` is the first
   * client listener's, `listeners` every client listener's in the configured order.
   */
  listen(): Promise<{ proxy: Address; listeners: Address[]; admin: Address | undefined }>;
  /**
   * Validates and applies a configuration — the given one, or else the configuration file
   * read again. Resolves once it is in force; requests under way finish on the old one. An
   * invalid configuration is logged and refused with a ConfigError, and the running one stays.
   */
  reload(config?: GatewayConfigInput | GatewayConfig): Promise<void>;
  /** Graceful shutdown: resolves when every in-flight request has finished or the drain timeout cut it. */
  close(): Promise<void>;
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** Every host's rotation state and every pool's concurrency gate, as they are now. */
  inspect(): { hosts: HostState[]; gates: GateState[] };
  /** Writes out buffered log lines now (e.g. before the process exits). */
  flushLog(): void;
}

/** The store's deadline when the configuration names none (an injected store). */
const DEFAULT_STORE_DEADLINE_MS = 5;

/** How often a running gateway looks again at its certificates' expiry. */
const CERTIFICATE_CHECK_MS = 12 * 3_600_000;

export function createGateway(input: GatewayConfigInput | GatewayConfig, options: GatewayOptions = {}): Gateway {
  const initial = validateConfig(input);
  const log: GatewayLog = options.logger ? externalLog(options.logger) : createLog(initial.log, options.logDestination);
  if (options.worker !== undefined) log.logger = log.logger.child({ worker: options.worker.id });
  const logger = log.logger;
  let runtime: Runtime;
  // The gauges read whichever runtime is in force when /metrics is scraped.
  const sources: MetricSources = {
    hostStates: () => runtime.hostStates(),
    poolSizes: () => runtime.poolSizes(),
    gateStates: () => runtime.gateStates(),
    maintenanceStates: () => runtime.maintenanceStates(),
    cacheStates: () => runtime.cacheStates(),
    certificates: () => runtime.certificates,
    store: () => fleet?.health(),
  };
  const metrics = new GatewayMetrics(sources, {
    processMetrics: options.processMetrics ?? true,
    statusStepMs: options.statusStepMs ?? 5000,
    onIncident(i, opened) {
      fleet?.incidentChanged(i);
      if (opened)
        logger.warn(
          { route: i.route, cause: i.cause, errors: i.errors, requests: i.requests },
          'incident: elevated error rate',
        );
      else
        logger.info(
          {
            route: i.route,
            cause: i.cause,
            errors: i.errors,
            requests: i.requests,
            minutes: Math.round((i.end! - i.start) / 60_000),
          },
          'incident over',
        );
    },
  });
  const maintenance = new Maintenance();
  // With a store, the maintenance switch, drains, rate limits, incidents and timeline are the fleet's.
  const store = options.store ?? storeFromConfig(initial);
  const worker = options.worker;
  const fleet: FleetState | undefined =
    store === undefined
      ? undefined
      : new FleetState({
          store,
          deadlineMs: initial.store?.redis?.deadline ?? DEFAULT_STORE_DEADLINE_MS,
          maintenance,
          incidents: metrics.incidents,
          timeline: metrics.timeline,
          timelineSource: worker?.timelineSource,
          logger,
          failed: (op) => metrics.storeErrors.with(op).inc(),
          drainsChanged: () => runtime.applyDrains(),
        });
  // ACME: the challenge answers every listener serves, and the certificates it obtains (made
  // when a configuration first lists names, at start or on a reload). With a shared store
  // (workers, a fleet) the challenges and the news of certificates go through it, since the
  // CA's look may land on any process; the certificates stay in the directory, which the
  // workers of a machine share, unless the store is Redis (a fleet of machines).
  const challenges = new ChallengeAnswers();
  let acme: AcmeCertificates | undefined;
  let acmeFleet: AcmeFleet | undefined;
  const acmeFor = (config: GatewayConfig): AcmeCertificates | undefined => {
    if (acme !== undefined || acmeNames(config).length === 0) return acme;
    if (fleet !== undefined) {
      acmeFleet = new AcmeFleet(fleet.link, challenges, logger);
      acmeFleet.onInstalled((name) => acme?.storedElsewhere(name));
      void acmeFleet.start();
    }
    const storage: AcmeStorage =
      store !== undefined && config.store?.redis !== undefined
        ? new StoreStorage(store, config.acme.directory, config.acme.lockTimeout, (name, reason) =>
            logger.warn({ name, reason }, 'acme: could not extend the issuance lock while ordering'),
          )
        : new DirectoryStorage(config.acme.storage, config.acme.directory);
    acme = new AcmeCertificates(acmeSettings(config), storage, acmeFleet ?? challenges, logger, {
      installed: (name) => presentAcmeCertificate(name),
      outcome: (name, outcome) => metrics.acme.with(name, outcome).inc(),
      stored: (name) => acmeFleet?.announceInstalled(name),
    });
    return acme;
  };
  const shared: GatewayShared = {
    acmeExpiry: (name) => acme?.certificateOf(name)?.notAfter,
    metrics,
    logger,
    lines: log.lines,
    maintenance,
    rateLimitStores: fleet?.rateLimitStores,
    bodies: new BodyBudget(initial.server.requestBufferTotal),
    loopGuard: new EventLoopGuard(initial.server.maxEventLoopDelay, (overloaded, maxMs) => {
      if (overloaded) logger.warn({ eventLoopDelayMs: Math.round(maxMs) }, 'event loop held up: shedding new requests');
      else logger.info({ eventLoopDelayMs: Math.round(maxMs) }, 'event loop recovered: admitting requests');
    }),
  };
  runtime = new Runtime(initial, shared);
  runtime.start();
  const current = (): Runtime => runtime;
  const startedAt = Date.now();
  // The status page draws the fleet's traffic: this process's steps and those of every other
  // process sharing the store; a worker has its machine's others' over IPC too, store or not.
  const timeline: TimelineView = fleet?.timeline ?? metrics.timeline;
  if (worker !== undefined && fleet !== undefined)
    worker.relaySteps(metrics.timeline, (source, points) => fleet.timeline.relayed(source, points));
  const statusSources = (): StatusSources => ({
    runtime,
    timeline,
    incidents: metrics.incidents,
    version: VERSION,
    startedAt,
    store: () => fleet?.health(),
  });
  // A redirecting listener sends clients to the first HTTPS listener's port, as bound.
  const httpsIndex = initial.listen.findIndex((l) => l.tls !== undefined);
  const httpsPort = (): number => {
    const server = listeners[httpsIndex]?.server;
    const bound = server?.listening ? (server.address() as { port: number }).port : undefined;
    return bound ?? initial.listen[httpsIndex]?.address.port ?? 443;
  };
  const acmeContexts = { contextFor: (name: string) => acme?.contextFor(name) };
  const listeners: Listener[] = initial.listen.map((l) =>
    createListener(initial, current, statusSources, {
      tls: certificateOf(initial, l, acme),
      hsts: l.tls?.hsts,
      h2c: l.h2c,
      redirectToHttpsPort: l.redirectToHttps ? httpsPort : undefined,
      challenges,
      acme: l.tls?.acme === undefined ? undefined : acmeContexts,
    }),
  );
  /**
   * A listener whose certificates all come from ACME presents its first name's to clients
   * that name none (or a name it does not hold), once it has one.
   */
  const presentAcmeCertificate = (name: string): void => {
    runtime.config.listen.forEach((l, i) => {
      if (l.tls?.cert === undefined && l.tls?.acme?.[0] === name)
        listeners[i]?.setCertificate?.(certificateOf(runtime.config, l, acme)!);
    });
  };
  let certificateCheck: NodeJS.Timeout | undefined;
  /** Listening: ACME may order (the CA's look needs the listeners up). */
  let started = false;
  /** Runtimes replaced by a reload, still finishing their requests. */
  const retiring = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  const file = options.configFile;
  const loadAgain = options.loadConfig ?? (file === undefined ? undefined : () => loadConfigFile(file));
  /** Reloads begun: one that waited for DNS while a later one began is not put in force after it. */
  let reloads = 0;
  const reload = async (next?: GatewayConfigInput | GatewayConfig): Promise<void> => {
    const generation = ++reloads;
    let config: GatewayConfig;
    try {
      if (next !== undefined) config = validateConfig(next);
      else if (loadAgain !== undefined) config = loadAgain();
      else throw new Error('this gateway was not started from a configuration file: give reload() a configuration');
    } catch (err) {
      logger.error(
        {
          file: next === undefined ? file : undefined,
          problems: err instanceof ConfigError ? err.problems : String(err),
        },
        'configuration refused; the running configuration stays',
      );
      throw err;
    }
    const old = runtime;
    if (
      JSON.stringify(config.listen.map((l) => [formatAddress(l.address), l.tls !== undefined])) !==
        JSON.stringify(old.config.listen.map((l) => [formatAddress(l.address), l.tls !== undefined])) ||
      JSON.stringify(config.admin) !== JSON.stringify(old.config.admin)
    ) {
      logger.warn('listen and admin addresses change only on restart; the rest of the new configuration is applied');
    }
    if (JSON.stringify(config.store ?? null) !== JSON.stringify(old.config.store ?? null))
      logger.warn('the state store changes only on restart; the rest of the new configuration is applied');
    if (JSON.stringify(acmeSettings(config)) !== JSON.stringify(acmeSettings(old.config)) && acme !== undefined)
      logger.warn('the acme section (other than the names listeners list) changes only on restart');
    // A replaced certificate is presented from the next handshake on; open connections carry on.
    config.listen.forEach((l, i) => {
      const certificate = certificateOf(config, l, acme);
      if (certificate !== undefined) listeners[i]?.setCertificate?.(certificate);
    });
    const fresh = new Runtime(config, shared, old);
    fresh.start();
    // Requests stay on the running configuration until a newly named DNS upstream has hosts.
    if (fresh.awaitsHosts()) await fresh.known();
    if (generation !== reloads || closing !== undefined) {
      // A later reload began meanwhile (its configuration is the newer, and its certificates are
      // already presented), or the gateway is closing: this runtime never takes traffic.
      logger.info('configuration reload superseded by a later one while it waited for DNS');
      const dropped = fresh.retire().finally(() => retiring.delete(dropped));
      retiring.add(dropped);
      return;
    }
    // Whichever runtime is in force now is the one replaced (another reload may have swapped meanwhile).
    const replaced = runtime;
    runtime = fresh;
    runtime.warnOfExpiringCertificates();
    // New names are ordered (or found in storage), held ones kept, names no longer listed let go.
    if (started) acmeFor(config)?.manage(acmeNames(config));
    logger.info(
      { routes: config.routes.length, upstreams: Object.keys(config.upstreams).length },
      'configuration reloaded',
    );
    // The old pools finish the requests that started on them (retries and resumes too), then close.
    const retired = replaced.retire().finally(() => retiring.delete(retired));
    retiring.add(retired);
  };

  const admin: Server | undefined =
    initial.admin === false
      ? undefined
      : createAdminServer({
          current,
          version: VERSION,
          startedAt,
          token: initial.adminToken,
          status: statusSources,
          // A worker's reload is the machine's: the supervisor checks the file once, then every worker applies it.
          reload: worker !== undefined ? () => worker.reloadMachine() : file === undefined ? undefined : () => reload(),
          machine: worker,
        });
  worker?.attach({
    applyChange: (change) => applyChange(runtime, change),
    report: async () => ({
      metrics: (await metrics.registry.getMetricsAsJSON()) as unknown as WorkerReport['metrics'],
      requests: metrics.requestsAnswered(),
      inFlight: metrics.inFlight,
      rssBytes: process.memoryUsage.rss(),
      draining: runtime.draining,
    }),
  });

  return {
    get config() {
      return runtime.config;
    },
    logger,
    metrics,
    flushLog: () => log.flush(),
    inspect: () => ({ hosts: runtime.hostStates(), gates: runtime.gateStates() }),
    reload,

    async listen() {
      // The fleet's maintenance state is known before the first request is admitted.
      await fleet?.start();
      // Traffic only once the pools discovered by DNS have their first answer (bounded).
      if (runtime.awaitsHosts()) await runtime.known();
      const bound: Address[] = [];
      for (const [i, l] of listeners.entries())
        bound.push(await listenOn(l.server, initial.listen[i]!.address, 'listen', { reusePort: worker?.reusePort }));
      const proxy = bound[0]!;
      started = true;
      acmeFor(runtime.config)?.manage(acmeNames(runtime.config));
      shared.loopGuard.start();
      metrics.timeline.start();
      runtime.warnOfExpiringCertificates();
      certificateCheck = setInterval(() => runtime.warnOfExpiringCertificates(), CERTIFICATE_CHECK_MS).unref();
      const adminAddress =
        admin && initial.admin !== false
          ? await listenOn(admin, initial.admin, 'admin', { reusePort: worker?.reusePort })
          : undefined;
      logger.info(
        {
          listen: bound.map((a, i) => `${initial.listen[i]!.tls ? 'https' : 'http'}://${formatAddress(a)}`),
          admin: adminAddress && formatAddress(adminAddress),
          version: VERSION,
          node: process.version,
        },
        worker === undefined ? 'gangway listening' : 'worker listening',
      );
      return { proxy, listeners: bound, admin: adminAddress };
    },

    close() {
      shared.loopGuard.stop();
      metrics.timeline.stop();
      clearInterval(certificateCheck);
      void acme?.close();
      closing ??= shutdown(listeners, admin, current, retiring, initial.server.drainTimeout, log).then(() =>
        fleet?.stop(options.store === undefined),
      );
      return closing;
    },
  };
}

async function shutdown(
  listeners: readonly Listener[],
  admin: Server | undefined,
  current: () => Runtime,
  retiring: Set<Promise<void>>,
  drainTimeout: number,
  log: GatewayLog,
): Promise<void> {
  const runtime = current();
  runtime.draining = true;
  const stopped = Promise.all(
    listeners.map(
      ({ server }) =>
        new Promise<void>((resolve) => {
          if (!server.listening) {
            resolve();
            return;
          }
          server.close(() => resolve());
        }),
    ),
  );
  // Keep-alive connections between requests are closed as they go idle; each answer sent
  // while draining carries `Connection: close`.
  const closeIdle = (): void => {
    for (const { server } of listeners) server.closeIdleConnections();
  };
  // HTTP/2 sessions are told to go away: no new streams, the open ones finish.
  for (const l of listeners) for (const session of l.sessions) session.close();
  closeIdle();
  const sweeper = setInterval(closeIdle, 50);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), drainTimeout);
  });
  const outcome = await Promise.race([stopped.then(() => 'drained' as const), deadline]);
  clearInterval(sweeper);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    runtime.logger.warn({ drainTimeoutMs: drainTimeout }, 'drain timeout reached; closing the remaining connections');
    for (const l of listeners) {
      l.server.closeAllConnections?.();
      for (const session of l.sessions) session.destroy();
      for (const socket of l.sockets) socket.destroy();
      for (const t of l.tunnels) t.destroy();
    }
    await stopped;
  }
  if (admin?.listening) {
    await new Promise<void>((resolve) => {
      admin.close(() => resolve());
      admin.closeAllConnections();
    });
  }
  await Promise.all([current().close(), ...retiring]);
  runtime.logger.info('gangway stopped');
  log.flush();
}

/**
 * A listener's certificate and key as the loader read them, when it speaks HTTPS; for one with
 * ACME names and no files, its first name's certificate once obtained.
 */
function certificateOf(
  config: GatewayConfig,
  listener: ListenerConfig,
  acme: AcmeCertificates | undefined,
): TlsCertificate | undefined {
  const tls = listener.tls;
  if (tls === undefined) return undefined;
  const pem = (path: string): string => config.files.get(path)!;
  const automatic = tls.cert === undefined && tls.acme !== undefined ? acme?.certificateOf(tls.acme[0]!) : undefined;
  return {
    cert: tls.cert === undefined ? automatic?.cert : pem(tls.cert),
    key: tls.key === undefined ? automatic?.key : pem(tls.key),
    sni: tls.sni?.map((p) => ({ cert: pem(p.cert), key: pem(p.key) })),
  };
}

/** Every name the listeners ask ACME for, once each. */
function acmeNames(config: GatewayConfig): string[] {
  return [...new Set(config.listen.flatMap((l) => l.tls?.acme ?? []))];
}

function acmeSettings(config: GatewayConfig): AcmeSettings {
  const a = config.acme;
  return {
    directory: a.directory,
    contact: a.email === undefined ? [] : [`mailto:${a.email}`],
    ca: a.ca === undefined ? undefined : config.files.get(a.ca),
    challenges: a.challenges,
    retryDelay: a.retryDelay,
    maxRetryDelay: a.maxRetryDelay,
  };
}
