/**
 * What the ACME tests share: Pebble (Let's Encrypt's test CA) started on loopback with the
 * tests' localhost certificate, a wait for a condition, and TLS handshakes that say which
 * certificate a listener presents for a name.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { closedPort } from './harness.js';

export const TLS = join(import.meta.dirname, 'tls');
/** Pebble's own HTTPS (the directory) is served with the tests' localhost certificate. */
export const PEBBLE_CERT = join(TLS, 'localhost-cert.pem');
export const PEBBLE_KEY = join(TLS, 'localhost-key.pem');
export const PEBBLE_TRUST = readFileSync(PEBBLE_CERT, 'utf8');

const PEBBLE = ['/usr/bin/pebble', '/usr/local/bin/pebble'].find((p) => existsSync(p));

/** Pebble is needed; under CI its absence is a failure, elsewhere the test says so and skips. */
export function needPebble(t: TestContext): boolean {
  if (PEBBLE !== undefined) return true;
  if (process.env.CI === 'true')
    assert.fail('pebble is not installed: under CI the ACME tests must run (.ci/run installs it)');
  t.skip('pebble is not installed (apt-get install pebble): the ACME tests are skipped');
  return false;
}

export interface Pebble {
  directory: string;
  port: number;
  /** Pebble's root certificate this run (it makes a new one each start). */
  root(): Promise<string>;
  stop(): Promise<void>;
  output: string[];
}

/** Trusts Pebble's HTTPS (the directory and its management port); lives as long as the test process. */
export const pebbleTrust = new Agent({ connect: { ca: PEBBLE_TRUST } });

/**
 * A Pebble on loopback validating on `httpPort`/`tlsPort`, resolving names through `dns`; its
 * stop is pushed onto `cleanups`.
 */
export async function startPebble(
  cleanups: Array<() => unknown>,
  options: {
    httpPort: number;
    tlsPort: number;
    dns: string;
    port?: number;
    validitySeconds?: number;
    blocklist?: string[];
    env?: Record<string, string>;
  },
): Promise<Pebble> {
  const port = options.port ?? (await closedPort());
  const management = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'gangway-pebble-'));
  const file = join(dir, 'pebble.json');
  writeFileSync(
    file,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${management}`,
        certificate: PEBBLE_CERT,
        privateKey: PEBBLE_KEY,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        domainBlocklist: options.blocklist ?? [],
        ...(options.validitySeconds === undefined ? {} : { certificateValidityPeriod: options.validitySeconds }),
      },
    }),
  );
  const child: ChildProcess = spawn(PEBBLE!, ['-config', file, '-dnsserver', options.dns], {
    // No nonces rejected at random (5% by default): counts of orders in the log stay exact; the
    // retry of a rejected nonce has a test of its own.
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => {
    running = false;
  });
  const stop = async (): Promise<void> => {
    if (running) child.kill('SIGTERM');
    await exited;
  };
  cleanups.push(stop);
  const directory = `https://127.0.0.1:${port}/dir`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (!running) throw new Error(`pebble exited: ${output.join('')}`);
    try {
      const answer = await request(directory, { dispatcher: pebbleTrust });
      await answer.body.dump();
      if (answer.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`pebble did not start: ${output.join('')}`);
    await sleep(100);
  }
  return {
    directory,
    port,
    output,
    stop,
    async root() {
      const answer = await request(`https://127.0.0.1:${management}/roots/0`, { dispatcher: pebbleTrust });
      return answer.body.text();
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it yields something, for at most `ms`. */
export async function eventually<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A TLS handshake with `port` asking for `servername`: the certificate shown, and whether `ca` vouches for it. */
export function handshake(
  port: number,
  servername: string,
  options: { ca?: string; alpn?: string[] } = {},
): Promise<{ cert: X509Certificate; authorized: boolean; socket: TLSSocket } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername,
      ca: options.ca,
      ALPNProtocols: options.alpn ?? ['http/1.1'],
      rejectUnauthorized: false,
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      if (peer === undefined) resolve({ error: 'no certificate' });
      else resolve({ cert: peer, authorized: socket.authorized, socket });
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

/** The certificate a fresh handshake for `name` is shown, once it is one `root` vouches for. */
export async function servedCertificate(
  port: number,
  name: string,
  root: string,
  ms = 30_000,
): Promise<X509Certificate> {
  return eventually(`a certificate for ${name} signed by Pebble`, ms, async () => {
    const seen = await handshake(port, name, { ca: root });
    if ('error' in seen) return undefined;
    seen.socket.destroy();
    return seen.authorized ? seen.cert : undefined;
  });
}
