/**
 * `gangway demo` (and `npm start`): three replicas of the demo streaming service as child
 * processes, Gangway in front of them on examples/gangway.yaml, and the operator console.
 * Prints the URLs; Ctrl-C stops every process it started (replicas also exit when this
 * process goes away, however it goes), and nothing is left listening.
 */
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { validateConfig } from '../config/load.js';
import type { GatewayConfig, GatewayConfigInput } from '../config/schema.js';
import { formatAddress } from '../config/units.js';
import { createGateway, type Gateway } from '../gateway.js';
import { runUntilSignalled } from '../cli/signals.js';
import { startConsole } from './console.js';
import { DemoLog } from './log.js';
import { ReplicaFleet } from './fleet.js';
import { type DemoCertificate, makeDemoCertificate } from './certificate.js';

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/gangway.yaml', import.meta.url));
const CONSOLE_PORT = 9902;

export interface DemoOptions {
  /** Overrides of the example configuration's addresses (tests use free ports). */
  listen?: string;
  /**
   * An HTTPS listener (HTTP/2 and HTTP/1.1) beside the cleartext one, with a certificate made
   * for this run; none when absent. `gangway demo` opens one on 127.0.0.1:8443.
   */
  https?: string;
  admin?: string;
  replicaPorts?: number[];
  consolePort?: number;
  /** Log warnings only, and no access log (tests). */
  quiet?: boolean;
  /** Where the log goes (default: gangway-demo.log in the temporary directory). */
  logFile?: string;
}

export interface RunningDemo {
  gateway: Gateway;
  fleet: ReplicaFleet;
  urls: {
    player: string;
    /** The player over HTTPS (self-signed), when the demo has an HTTPS listener. */
    https: string | undefined;
    console: string;
    status: string | undefined;
    metrics: string | undefined;
  };
  /** The log file (none for a quiet demo). */
  log: string | undefined;
  close(): Promise<void>;
}

/**
 * The example file as written, with the demo's addresses put in, validated as any file is —
 * read again on every reload, so a reload never sends traffic somewhere the demo did not choose.
 */
function demoConfig(options: DemoOptions, ports: readonly number[], tls?: DemoCertificate): GatewayConfig {
  const raw = parse(readFileSync(DEMO_CONFIG, 'utf8')) as GatewayConfigInput & {
    upstreams: Record<string, { hosts: string[] }>;
  };
  raw.upstreams.music!.hosts = ports.map((p) => `127.0.0.1:${p}`);
  if (options.listen) raw.listen = options.listen;
  if (options.https && tls)
    raw.listen = [raw.listen as string, { address: options.https, tls: { cert: tls.cert, key: tls.key } }];
  if (options.admin) raw.admin = options.admin;
  if (options.quiet) raw.log = { level: 'warn', access: false };
  return validateConfig(raw, DEMO_CONFIG);
}

/** The replica ports the example file names (7001–7003). */
function examplePorts(): number[] {
  const raw = parse(readFileSync(DEMO_CONFIG, 'utf8')) as { upstreams: Record<string, { hosts: string[] }> };
  return raw.upstreams.music!.hosts.map((h) => Number(h.split(':').pop()));
}

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const ports = options.replicaPorts ?? examplePorts();
  const tls = options.https ? makeDemoCertificate() : undefined;
  let config: GatewayConfig;
  try {
    config = demoConfig(options, ports, tls);
  } catch (err) {
    // A bad address in the options: the key made for this run does not stay behind in /tmp.
    tls?.remove();
    throw err;
  }
  // A quiet demo (tests) logs its warnings to standard output and leaves the shared log file alone.
  const log = options.quiet && options.logFile === undefined ? undefined : new DemoLog(options.logFile);
  const fleet = new ReplicaFleet(ports);
  // A process that ends without close() (an uncaught error) still stops the replicas and
  // removes the certificate's key.
  const stopFleet = (): void => {
    fleet.stopAll();
    tls?.remove();
  };
  process.once('exit', stopFleet);
  let gateway: Gateway | undefined;
  /** A part did not start: everything started so far stops, and the reason goes to the caller. */
  const giveUp = async (err: unknown): Promise<never> => {
    await gateway?.close();
    fleet.stopAll();
    log?.close();
    tls?.remove();
    process.off('exit', stopFleet);
    throw err;
  };
  await fleet.startAll().catch(giveUp);
  let addresses: Awaited<ReturnType<Gateway['listen']>>;
  try {
    gateway = createGateway(config, {
      configFile: DEMO_CONFIG,
      loadConfig: () => demoConfig(options, ports, tls),
      logDestination: log,
    });
    addresses = await gateway.listen();
  } catch (err) {
    return giveUp(err);
  }
  const proxyOrigin = `http://${formatAddress(addresses.proxy)}`;
  const secure = tls && addresses.listeners[1];
  const adminOrigin = addresses.admin ? `http://${formatAddress(addresses.admin)}` : undefined;
  const consolePort = options.consolePort ?? CONSOLE_PORT;
  let console: Awaited<ReturnType<typeof startConsole>>;
  try {
    console = await startConsole({ fleet, gateway, proxyOrigin, adminOrigin }, consolePort);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return giveUp(
      new Error(
        `the console cannot listen on 127.0.0.1:${consolePort}: ` +
          (code === 'EADDRINUSE' ? 'the port is in use by another program' : (err as Error).message),
      ),
    );
  }
  return {
    gateway,
    fleet,
    urls: {
      player: `${proxyOrigin}/`,
      https: secure && `https://localhost:${secure.port}/`,
      console: console.url,
      status: config.status.path ? `${proxyOrigin}${config.status.path}` : undefined,
      metrics: adminOrigin && `${adminOrigin}/metrics`,
    },
    log: log?.path,
    async close() {
      await console.close();
      await gateway.close();
      fleet.stopAll();
      log?.close();
      tls?.remove();
      process.off('exit', stopFleet);
    },
  };
}

/**
 * Ports from GANGWAY_DEMO_PORTS ("gateway,admin,console,replica1,replica2,replica3"), for
 * machines where the defaults (8080, 9901, 9902, 7001–7003) are taken.
 */
function portsFromEnvironment(): DemoOptions {
  const raw = process.env.GANGWAY_DEMO_PORTS;
  if (!raw) return { https: `127.0.0.1:${HTTPS_PORT}` };
  const p = raw.split(',').map(Number);
  if (p.length < 6 || p.length > 7 || p.some((n) => !Number.isInteger(n) || n < 1 || n > 65535))
    throw new Error(
      'GANGWAY_DEMO_PORTS is six or seven ports: gateway,admin,console,replica1,replica2,replica3[,https]',
    );
  return {
    listen: `127.0.0.1:${p[0]}`,
    admin: `127.0.0.1:${p[1]}`,
    consolePort: p[2],
    replicaPorts: p.slice(3, 6),
    https: `127.0.0.1:${p[6] ?? HTTPS_PORT}`,
  };
}

const HTTPS_PORT = 8443;

const PORTS_HINT =
  'The demo uses ports 8080 (player), 8443 (HTTPS), 9901 (admin), 9902 (console) and 7001-7003 (replicas).\n' +
  'Choose others with GANGWAY_DEMO_PORTS=gateway,admin,console,replica1,replica2,replica3[,https], e.g.\n' +
  '  GANGWAY_DEMO_PORTS=18080,19901,19902,17001,17002,17003,18443 npm start\n';

export async function runDemo(): Promise<number> {
  let demo: RunningDemo;
  try {
    demo = await startDemo(portsFromEnvironment());
  } catch (err) {
    process.stderr.write(`gangway demo: ${(err as Error).message}\n`);
    if (/cannot listen/.test((err as Error).message)) process.stderr.write(PORTS_HINT);
    return 1;
  }
  const { urls } = demo;
  process.stdout.write(
    `\nGangway demo is running:\n` +
      `  player        ${urls.player}\n` +
      (urls.https ? `  over HTTPS    ${urls.https}   (HTTP/2; a certificate made for this run: curl -k)\n` : '') +
      `  console       ${urls.console}   (break the replicas here)\n` +
      (urls.status ? `  status page   ${urls.status}\n` : '') +
      (urls.metrics ? `  metrics       ${urls.metrics}\n` : '') +
      `  log           ${demo.log}   (every request; warnings also show here)\n` +
      `Press Ctrl-C to stop.\n\n`,
  );
  // Closing the terminal ends the demo like Ctrl-C: nothing may stay behind holding its ports.
  const code = await runUntilSignalled(demo.gateway, { hangUp: 'stop' });
  await demo.close();
  return code;
}
