/**
 * A gateway in its own process, started through the CLI as an operator would, so tests
 * can signal it and read its memory from /proc.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from './harness.js';
import { spawnCli } from './spawn-cli.js';

export interface ChildGateway {
  child: ChildProcess;
  url: string;
  adminUrl: string;
  output: () => string;
  exited: Promise<number | null>;
  /** The configuration file the gateway was started with. */
  file: string;
}

/**
 * A gateway process routing everything to one upstream host; `extraYaml` is appended to its
 * config file, `extraArgs` to `gangway start`; `h2c`: its listener speaks HTTP/2 in cleartext.
 */
export async function startChildGateway(
  upstreamAddress: string,
  extraYaml = '',
  extraArgs: string[] = [],
  {
    h2c = false,
    startWithinMs = 15_000,
    upstreamYaml = '',
    routeYaml = '',
    nodeFlags = [],
  }: {
    h2c?: boolean;
    startWithinMs?: number;
    /** More settings of the upstream "music", e.g. `concurrency: { enabled: false }`. */
    upstreamYaml?: string;
    /** More settings of the one route, e.g. `rateLimit: { requests: 20, window: 60s }`. */
    routeYaml?: string;
    /** Flags for node itself, e.g. --trace-gc. */
    nodeFlags?: readonly string[];
  } = {},
): Promise<ChildGateway> {
  const listen = await closedPort();
  const admin = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'gangway-child-'));
  const file = join(dir, 'gangway.yaml');
  writeFileSync(
    file,
    `listen: ${h2c ? `{ address: "127.0.0.1:${listen}", h2c: true }` : `"127.0.0.1:${listen}"`}
admin: "127.0.0.1:${admin}"
upstreams:
  music: { hosts: ["${upstreamAddress}"], healthCheck: { enabled: false }${upstreamYaml ? `, ${upstreamYaml}` : ''} }
routes:
  - { match: { path: "/" }, upstream: music${routeYaml ? `, ${routeYaml}` : ''} }
${extraYaml}`,
  );
  const gw = spawnCli(['start', '-c', file, ...extraArgs], process.env, nodeFlags);
  const { child } = gw;
  if (!(await gw.until('gangway listening', startWithinMs))) throw new Error(`gateway did not start:\n${gw.output()}`);
  return {
    child,
    url: `http://127.0.0.1:${listen}`,
    adminUrl: `http://127.0.0.1:${admin}`,
    output: gw.output,
    exited: gw.exited,
    file,
  };
}

/** Resident set size, and its peak, of a process, in bytes (Linux). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}
