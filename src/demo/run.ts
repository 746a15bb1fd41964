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
import type { GatewayConfigInput } from '../config/schema.js';
import { formatAddress } from '../config/units.js';
import { createGateway, type Gateway } from '../gateway.js';
import { runUntilSignalled } from '../cli/signals.js';
import { startConsole } from './console.js';
import { ReplicaFleet } from './fleet.js';

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/gangway.yaml', import.meta.url));
const CONSOLE_PORT = 9902;

export interface DemoOptions {
  /** Overrides of the example configuration's addresses (tests use free ports). */
  listen?: string;
  admin?: string;
  replicaPorts?: number[];
  consolePort?: number;
  /** Log to this destination instead of standard output. */
  quiet?: boolean;
}

export interface RunningDemo {
  gateway: Gateway;
  fleet: ReplicaFleet;
  urls: { player: string; console: string; status: string | undefined; metrics: string | undefined };
  close(): Promise<void>;
}

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  // The example file as written, with the caller's addresses put in, validated as any file is.
  const raw = parse(readFileSync(DEMO_CONFIG, 'utf8')) as GatewayConfigInput & {
    upstreams: Record<string, { hosts: string[] }>;
  };
  const ports = options.replicaPorts ?? raw.upstreams.music!.hosts.map((h) => Number(h.split(':').pop()));
  raw.upstreams.music!.hosts = ports.map((p) => `127.0.0.1:${p}`);
  if (options.listen) raw.listen = options.listen;
  if (options.admin) raw.admin = options.admin;
  if (options.quiet) raw.log = { level: 'warn', access: false };
  const config = validateConfig(raw, DEMO_CONFIG);
  const fleet = new ReplicaFleet(ports);
  const stopFleet = (): void => fleet.stopAll();
  process.once('exit', stopFleet);
  try {
    await fleet.startAll();
  } catch (err) {
    fleet.stopAll();
    throw err;
  }
  let gateway: Gateway | undefined;
  let addresses: Awaited<ReturnType<Gateway['listen']>>;
  try {
    gateway = createGateway(config, { configFile: DEMO_CONFIG });
    addresses = await gateway.listen();
  } catch (err) {
    fleet.stopAll();
    await gateway?.close();
    throw err;
  }
  const proxyOrigin = `http://${formatAddress(addresses.proxy)}`;
  const adminOrigin = addresses.admin ? `http://${formatAddress(addresses.admin)}` : undefined;
  const console = await startConsole({ fleet, gateway, proxyOrigin, adminOrigin }, options.consolePort ?? CONSOLE_PORT);
  return {
    gateway,
    fleet,
    urls: {
      player: `${proxyOrigin}/`,
      console: console.url,
      status: config.status.path ? `${proxyOrigin}${config.status.path}` : undefined,
      metrics: adminOrigin && `${adminOrigin}/metrics`,
    },
    async close() {
      await console.close();
      await gateway.close();
      fleet.stopAll();
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
  if (!raw) return {};
  const p = raw.split(',').map(Number);
  if (p.length !== 6 || p.some((n) => !Number.isInteger(n) || n < 1 || n > 65535))
    throw new Error('GANGWAY_DEMO_PORTS is six ports: gateway,admin,console,replica1,replica2,replica3');
  return { listen: `127.0.0.1:${p[0]}`, admin: `127.0.0.1:${p[1]}`, consolePort: p[2], replicaPorts: p.slice(3) };
}

export async function runDemo(): Promise<number> {
  let demo: RunningDemo;
  try {
    demo = await startDemo(portsFromEnvironment());
  } catch (err) {
    process.stderr.write(`gangway demo: ${(err as Error).message}\n`);
    return 1;
  }
  const { urls } = demo;
  process.stdout.write(
    `\nGangway demo is running:\n` +
      `  player        ${urls.player}\n` +
      `  console       ${urls.console}   (break the replicas here)\n` +
      (urls.status ? `  status page   ${urls.status}\n` : '') +
      (urls.metrics ? `  metrics       ${urls.metrics}\n` : '') +
      `Press Ctrl-C to stop.\n\n`,
  );
  const code = await runUntilSignalled(demo.gateway);
  await demo.close();
  return code;
}
