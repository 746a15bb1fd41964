/**
 * `gangway doctor URL`, run as a person runs it (the CLI, --json), against real local
 * scenarios: a healthy gateway, an upstream that refuses, maintenance, shedding, a name
 * that does not resolve (with a DNS server of the tests' own), nothing resolving at all, a
 * dead HTTP proxy, a service that fails and then recovers, and HTTPS with an untrusted and a
 * trusted certificate.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cli } from './support/cli.js';
import { dnsServer } from './support/dns-server.js';
import { closedPort, httpUpstream, startGateway } from './support/harness.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Report {
  verdict: string;
  summary: string;
  failed_at?: string;
  exit_code: number;
  request_id?: string;
  steps: Array<{ name: string; ok: boolean | null; ms?: number; detail: string }>;
  hops: Array<{ proxy: string; error?: string; details?: string; status?: number }>;
  advice: string[];
}

const PROXY_VARIABLES = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'ALL_PROXY',
  'all_proxy',
  'NO_PROXY',
  'no_proxy',
];

/** The environment without this machine's proxy settings, plus the test's own. */
function environment(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean = { ...process.env };
  for (const k of PROXY_VARIABLES) delete clean[k];
  return { ...clean, ...extra };
}

/** `gangway doctor ARGS --json`, run in this process. */
async function doctor(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; report: Report; stderr: string }> {
  const { code, stdout, stderr } = await cli(['doctor', ...args, '--json', '--timeout', '2s'], environment(env));
  return { code, report: JSON.parse(stdout || '{}') as Report, stderr };
}

/**
 * The same as a process of its own: Node reads NODE_EXTRA_CA_CERTS (the trust store) only
 * when a process starts.
 */
function doctorProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; report: Report }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'doctor', ...args, '--json', '--timeout', '2s'], {
    env: environment(env),
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ code, report: JSON.parse(out || '{}') as Report })),
  );
}

const stepNamed = (r: Report, name: string) => r.steps.find((s) => s.name === name);

test('a healthy service: ok, exit 0, every rung passed', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway({
    upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
  });
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const { code, report } = await doctor([`${gw.url}/tracks`]);
  assert.equal(report.verdict, 'ok');
  assert.equal(code, 0);
  assert.deepEqual(
    report.steps.map((s) => [s.name, s.ok]),
    [
      ['network', true],
      ['proxy/vpn', true],
      ['dns', null],
      ['tcp', true],
      ['tls', null],
      ['http', true],
    ],
  );
  assert.match(report.request_id!, /^[0-9a-f-]{36}$/);
});

test("an upstream that refuses: service-side, naming connection_refused at the gateway, with the status page's word", async () => {
  const dead = await closedPort();
  const gw = await startGateway(
    {
      upstreams: { music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } } },
      routes: [{ name: 'music', upstream: 'music' }],
      status: { path: '/_status' },
    },
    { statusStepMs: 100 },
  );
  cleanups.push(() => gw.close());
  const { code, report } = await doctor([`${gw.url}/tracks`, '--attempts', '2']);
  assert.equal(report.verdict, 'service-side');
  assert.equal(code, 20);
  assert.deepEqual(report.hops, [{ proxy: 'gangway', error: 'connection_refused', details: 'upstream music' }]);
  assert.equal(report.failed_at, 'gangway (upstream music)');
  assert.match(report.summary, /answered 502: connection_refused at gangway \(upstream music\)/);
  assert.match(report.summary, /status page says: (partial_outage|major_outage)/);
  assert.equal(stepNamed(report, 'repeat')!.ok, false);
  assert.match(report.advice.join(' '), /changing DNS or turning off your VPN will not help/);
});

test('maintenance: service-maintenance with the end of the window, without waiting it out', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const end = new Date(Date.now() + 45 * 60_000);
  const gw = await startGateway({
    upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
    maintenance: {
      windows: [{ start: new Date(Date.now() - 1000).toISOString(), end: end.toISOString(), message: 'Upgrading' }],
    },
  });
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const started = Date.now();
  const { code, report } = await doctor([`${gw.url}/tracks`]);
  assert.equal(report.verdict, 'service-maintenance');
  assert.equal(code, 21);
  const until = /until about (\S+?)\.( |$)/.exec(report.summary)?.[1];
  assert.ok(until && Math.abs(Date.parse(until) - end.getTime()) < 5000, `end time ${until} in "${report.summary}"`);
  assert.ok(Date.now() - started < 10_000, 'it did not wait for the window to end');
});

test('shedding: service-overloaded with the time it asks to wait', async () => {
  const held: Array<() => void> = [];
  const up = await httpUpstream((_req, res) => {
    held.push(() => res.end('ok'));
  });
  const gw = await startGateway({
    upstreams: {
      music: {
        hosts: [up.address],
        healthCheck: { enabled: false },
        concurrency: { min: 1, max: 1, maxWait: '1ms', queueSize: 0 },
      },
    },
    routes: [{ upstream: 'music' }],
  });
  cleanups.push(
    () => gw.close(),
    () => up.close(),
    () => {
      for (const f of held) f();
    },
  );
  const hog = fetch(`${gw.url}/slow`).catch(() => undefined); // holds the only slot
  await new Promise((r) => setTimeout(r, 100));
  const { code, report } = await doctor([`${gw.url}/tracks`, '--attempts', '2']);
  for (const f of held) f();
  await hog;
  assert.equal(report.verdict, 'service-overloaded');
  assert.equal(code, 22);
  assert.equal(report.hops[0]!.error, 'connection_limit_reached');
  assert.match(report.summary, /come back in 1 s/);
});

test('a name the system resolver cannot resolve but another resolver can: your-dns', async () => {
  const dns = await dnsServer({ 'music.gangway-test.invalid': '127.0.0.1' });
  cleanups.push(() => dns.close());
  const { code, report } = await doctor(['http://music.gangway-test.invalid:8080/', '--resolver', dns.address]);
  assert.equal(report.verdict, 'your-dns');
  assert.equal(code, 31);
  assert.match(stepNamed(report, 'dns')!.detail, new RegExp(`system: ENOTFOUND .*; ${dns.address}: 127\\.0\\.0\\.1`));
  assert.match(report.summary, new RegExp(`but ${dns.address} can \\(127\\.0\\.0\\.1\\)`));
});

test('nothing resolves, not even the control: your-network', async () => {
  const dns = await dnsServer({});
  cleanups.push(() => dns.close());
  const { code, report } = await doctor([
    'http://music.gangway-test.invalid/',
    '--resolver',
    dns.address,
    '--control',
    'http://control.gangway-test.invalid/',
  ]);
  assert.equal(report.verdict, 'your-network');
  assert.equal(code, 30);
  assert.match(stepNamed(report, 'dns')!.detail, new RegExp(`${dns.address}: ENOTFOUND`));
});

test('HTTP_PROXY pointing to a dead port: your-proxy-or-vpn, found before anything else is tried', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  cleanups.push(() => up.close());
  const dead = await closedPort();
  const { code, report } = await doctor([`http://${up.address}/`], { HTTP_PROXY: `http://127.0.0.1:${dead}` });
  assert.equal(report.verdict, 'your-proxy-or-vpn');
  assert.equal(code, 32);
  assert.match(
    stepNamed(report, 'proxy/vpn')!.detail,
    /HTTP_PROXY=http:\/\/127\.0\.0\.1:\d+ applies to this URL: not reachable \(ECONNREFUSED\)/,
  );
  assert.equal(stepNamed(report, 'http'), undefined);
  // NO_PROXY exempts it: then the service answers.
  const exempt = await doctor([`http://${up.address}/`], {
    HTTP_PROXY: `http://127.0.0.1:${dead}`,
    NO_PROXY: 'localhost,127.0.0.1',
  });
  assert.equal(exempt.report.verdict, 'ok');
});

test('a service that fails and then recovers: transient', async () => {
  const port = await closedPort();
  const gw = await startGateway({
    upstreams: { music: { hosts: [`127.0.0.1:${port}`], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
  });
  const up = createServer((_req, res) => res.end('ok'));
  cleanups.push(
    () => gw.close(),
    () =>
      new Promise((r) => {
        up.closeAllConnections();
        up.close(r);
      }),
  );
  setTimeout(() => up.listen(port, '127.0.0.1'), 1500);
  const { code, report } = await doctor([`${gw.url}/tracks`, '--attempts', '4']);
  assert.equal(report.verdict, 'transient');
  assert.equal(code, 10);
  assert.match(stepNamed(report, 'repeat')!.detail, /failed \d times?, then answered 200/);
});

test('bad arguments get one clear line and exit 2', async () => {
  const { code, stderr } = await cli(['doctor', 'ftp://example.com/']);
  assert.equal(code, 2);
  assert.match(stderr, /^gangway doctor: only http:\/\/ and https:\/\/ URLs can be checked, not ftp:/);
});

test("TLS: an untrusted certificate is the service's fault; a trusted one passes and the certificate is described", async () => {
  const tlsDir = join(import.meta.dirname, 'support', 'tls');
  const server = createHttpsServer(
    { key: readFileSync(join(tlsDir, 'localhost-key.pem')), cert: readFileSync(join(tlsDir, 'localhost-cert.pem')) },
    (_req, res) => res.end('ok'),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
  );
  const url = `https://localhost:${(server.address() as AddressInfo).port}/`;
  const untrusted = await doctor([url]);
  assert.equal(untrusted.report.verdict, 'service-side');
  assert.equal(untrusted.code, 20);
  const tls = stepNamed(untrusted.report, 'tls')!;
  assert.equal(tls.ok, false);
  assert.match(tls.detail, /certificate for localhost from Gangway tests, valid until .* \(\d+ days\).*SELF_SIGNED/);
  assert.match(untrusted.report.summary, /TLS certificate is not valid for localhost/);

  const trusted = await doctorProcess([url], { NODE_EXTRA_CA_CERTS: join(tlsDir, 'localhost-cert.pem') });
  assert.equal(trusted.report.verdict, 'ok');
  assert.equal(stepNamed(trusted.report, 'tls')!.ok, true);
  assert.match(stepNamed(trusted.report, 'tls')!.detail, /^TLSv1\.3 certificate for localhost/);
});
