/**
 * A gateway instance: the client listener, the admin listener, and the runtime built from
 * the configuration. It starts, reloads (swapping in a new runtime without dropping a
 * request) and shuts down gracefully (stop accepting, let in-flight requests finish within
 * the drain timeout, then cut what is left).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventLoopGuard } from './admission/event-loop-guard.js';
import { Maintenance } from './admission/maintenance.js';
import { loadConfigFile, validateConfig } from './config/load.js';
import type { GatewayConfig, GatewayConfigInput } from './config/schema.js';
import { formatAddress, type Address } from './config/units.js';
import { createAdminServer } from './admin/server.js';
import type { LineDestination } from './observe/log-sink.js';
import { createLog, externalLog, type GatewayLog, type Logger } from './observe/logger.js';
import { GatewayMetrics } from './observe/metrics.js';
import { buildRuntime, closeRuntime, startRuntime, type Runtime } from './proxy/runtime.js';
import type { StatusSources } from './admin/status-model.js';
import { createListener, type Listener } from './server/listener.js';
import { VERSION } from './version.js';

export interface GatewayOptions {
  /** Use this logger instead of one built from the config's `log` section. */
  logger?: Logger;
  /** Write JSON log lines here instead of standard output (each call receives one line). */
  logDestination?: LineDestination;
  /** Collect Node process metrics (default true; off lets several gateways share a process quietly). */
  processMetrics?: boolean;
  /** The file the configuration came from, which POST /api/reload reads again. */
  configFile?: string;
  /** The status page's time step (default 5 s); tests shorten it. */
  statusStepMs?: number;
}

export interface Gateway {
  /** Starts both listeners; resolves with the addresses actually bound. */
  listen(): Promise<{ proxy: Address; admin: Address | undefined }>;
  /** Validates and applies a new configuration; in-flight requests finish on the old one. */
  reload(config: GatewayConfigInput | GatewayConfig): Promise<void>;
  /** Graceful shutdown: resolves when every in-flight request has finished or the drain timeout cut it. */
  close(): Promise<void>;
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** Writes out buffered log lines now (e.g. before the process exits). */
  flushLog(): void;
}

export function createGateway(input: GatewayConfigInput | GatewayConfig, options: GatewayOptions = {}): Gateway {
  const initial = validateConfig(input);
  const log: GatewayLog = options.logger ? externalLog(options.logger) : createLog(initial.log, options.logDestination);
  const logger = log.logger;
  const metrics = new GatewayMetrics(options.processMetrics ?? true, options.statusStepMs);
  metrics.onIncident = (i, opened) => {
    if (opened) logger.warn({ route: i.route, cause: i.cause, errors: i.errors, requests: i.requests }, 'incident: elevated error rate');
    else logger.info({ route: i.route, cause: i.cause, errors: i.errors, requests: i.requests, minutes: Math.round((i.end! - i.start) / 60_000) }, 'incident over');
  };
  const maintenance = new Maintenance();
  const loopGuard = new EventLoopGuard(initial.server.maxEventLoopDelay, (overloaded, maxMs) => {
    if (overloaded) logger.warn({ eventLoopDelayMs: Math.round(maxMs) }, 'event loop held up: shedding new requests');
    else logger.info({ eventLoopDelayMs: Math.round(maxMs) }, 'event loop recovered: admitting requests');
  });
  let runtime: Runtime = buildRuntime(initial, metrics, logger, log.lines, maintenance, loopGuard);
  startRuntime(runtime);
  const current = (): Runtime => runtime;
  const startedAt = Date.now();
  const statusSources = (): StatusSources => ({ runtime, timeline: metrics.timeline, incidents: metrics.incidents, version: VERSION, startedAt });
  const listener: Listener = createListener(initial, current, statusSources);
  // Without a token the schema only accepts a loopback admin listener.
  const token = process.env.GANGWAY_ADMIN_TOKEN || initial.adminToken;
  let closing: Promise<void> | undefined;

  /** Swaps in a new runtime at once and returns the old one, which finishes its requests. */
  const swap = (next: GatewayConfigInput | GatewayConfig): Runtime => {
    const config = validateConfig(next);
    const old = runtime;
    if (formatAddress(config.listen) !== formatAddress(old.config.listen) || JSON.stringify(config.admin) !== JSON.stringify(old.config.admin)) {
      logger.warn('listen and admin addresses change only on restart; the rest of the new configuration is applied');
    }
    runtime = buildRuntime(config, metrics, logger, log.lines, maintenance, loopGuard, old);
    runtime.draining = old.draining;
    startRuntime(runtime);
    logger.info({ routes: config.routes.length, upstreams: Object.keys(config.upstreams).length }, 'configuration reloaded');
    return old;
  };
  const file = options.configFile;
  const admin: Server | undefined = initial.admin === false ? undefined
    : createAdminServer({
      current, version: VERSION, startedAt, token, status: statusSources,
      reloadFromFile: file === undefined ? undefined : () => { void closeRuntime(swap(loadConfigFile(file))); },
    });

  return {
    get config() { return runtime.config; },
    logger,
    metrics,
    flushLog: () => log.flush(),

    async listen() {
      const proxy = await listenOn(listener.server, initial.listen);
      loopGuard.start();
      metrics.timeline.start();
      const adminAddress = admin && initial.admin !== false ? await listenOn(admin, initial.admin) : undefined;
      logger.info({ listen: formatAddress(proxy), admin: adminAddress && formatAddress(adminAddress), version: VERSION }, 'gangway listening');
      return { proxy, admin: adminAddress };
    },

    async reload(next) {
      // Old pools finish the requests they carry, then close.
      await closeRuntime(swap(next));
    },

    close() {
      loopGuard.stop();
      metrics.timeline.stop();
      closing ??= shutdown(listener, admin, current, initial.server.drainTimeout, log);
      return closing;
    },
  };
}

async function shutdown(listener: Listener, admin: Server | undefined, current: () => Runtime, drainTimeout: number, log: GatewayLog): Promise<void> {
  const runtime = current();
  runtime.draining = true;
  const { server } = listener;
  const stopped = new Promise<void>((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
  });
  // Keep-alive connections between requests are closed as they go idle; each answer sent
  // while draining carries `Connection: close`.
  server.closeIdleConnections();
  const sweeper = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), drainTimeout); });
  const outcome = await Promise.race([stopped.then(() => 'drained' as const), deadline]);
  clearInterval(sweeper);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    runtime.logger.warn({ drainTimeoutMs: drainTimeout }, 'drain timeout reached; closing the remaining connections');
    server.closeAllConnections();
    for (const t of listener.tunnels) t.destroy();
    await stopped;
  }
  if (admin?.listening) {
    await new Promise<void>((resolve) => { admin.close(() => resolve()); admin.closeAllConnections(); });
  }
  await closeRuntime(current());
  runtime.logger.info('gangway stopped');
  log.flush();
}

function listenOn(server: Server, address: Address): Promise<Address> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}
