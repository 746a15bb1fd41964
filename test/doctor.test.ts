/**
 * `gangway doctor URL`, run as a person runs it (the CLI, --json), against real local
 * scenarios: a healthy gateway, an upstream that refuses, maintenance, shedding, a name
 * that does not resolve (with a DNS server of the tests' own), nothing resolving at all, a
 * dead HTTP proxy, a service that fails and then recovers, and HTTPS with an untrusted and a
 * trusted certificate. And what new users ran into: a plain-HTTP server given without a
 * scheme, a SOCKS proxy, proxy variables in the wrong case, a silent wait, a stream that never
 * ends, a 404 and the request id's sentence.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createConnection, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { main } from '../src/cli/main.js';
import { tunnelThrough } from '../src/doctor/connect.js';
import { VERDICTS } from '../src/doctor/verdict.js';
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
  until?: string;
  url: string;
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

test(
  'maintenance: service-maintenance with the end of the window in local time, ' +
    'the message once, without waiting it out',
  async () => {
    const up = await httpUpstream((_req, res) => res.end('ok'));
    const end = new Date(Date.now() + 45 * 60_000);
    const gw = await startGateway(
      {
        upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
        // Three routes, as in the demo: the status page lists the window under each of them.
        routes: [
          { match: { path: '/api' }, upstream: 'music' },
          { match: { path: '/audio' }, upstream: 'music' },
          { match: { path: '/' }, upstream: 'music' },
        ],
        status: { path: '/status' },
        maintenance: {
          windows: [
            {
              start: new Date(Date.now() - 1000).toISOString(),
              end: end.toISOString(),
              message: 'Upgrading the catalogue',
            },
          ],
        },
      },
      { statusStepMs: 100 },
    );
    cleanups.push(
      () => gw.close(),
      () => up.close(),
    );
    const started = Date.now();
    const { code, report } = await doctor([`${gw.url}/api/tracks`]);
    assert.equal(report.verdict, 'service-maintenance');
    assert.equal(code, 21);
    assert.match(report.summary, /until about \d\d:\d\d \S+ \(in 4[45] min\)\./, report.summary);
    assert.doesNotMatch(report.summary, /\d{4}-\d\d-\d\dT/, 'no ISO stamp for people');
    assert.ok(Math.abs(Date.parse(report.until!) - end.getTime()) < 5000, `until ${report.until}`);
    assert.ok(Date.now() - started < 10_000, 'it did not wait for the window to end');
    const human = await cli(['doctor', `${gw.url}/api/tracks`], environment({}));
    assert.equal(human.stdout.split('Upgrading the catalogue').length - 1, 1, human.stdout);
    assert.match(human.stdout, /status page .*: maintenance; \/api, \/audio, \/ maintenance\n/);
  },
);

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

test(
  'proxy variables as curl reads them: http_proxy in lowercase only, the others ' + 'in either case, named as read',
  async () => {
    const up = await httpUpstream((_req, res) => res.end('ok'));
    cleanups.push(() => up.close());
    const dead = `http://127.0.0.1:${await closedPort()}`;

    // http_proxy: the lowercase one is used, and found dead before anything else is tried.
    const lower = await doctor([`http://${up.address}/`], { http_proxy: dead });
    assert.equal(lower.report.verdict, 'your-proxy-or-vpn');
    assert.equal(lower.code, 32);
    assert.match(
      stepNamed(lower.report, 'proxy/vpn')!.detail,
      /^http_proxy=http:\/\/127\.0\.0\.1:\d+ applies to this URL: not reachable \(ECONNREFUSED\)/,
    );
    assert.match(lower.report.summary, /\(from http_proxy\)/);
    assert.equal(stepNamed(lower.report, 'http'), undefined);

    // HTTP_PROXY: curl does not read it (httpoxy); neither does doctor, and it says so.
    const upper = await doctor([`http://${up.address}/`], { HTTP_PROXY: dead });
    assert.equal(upper.report.verdict, 'ok');
    assert.match(stepNamed(upper.report, 'proxy/vpn')!.detail, /no proxy applies; HTTP_PROXY is set but not read/);

    // HTTPS_PROXY counts in uppercase; with both, the lowercase one wins.
    const https = `https://${up.address}/`;
    const httpsUpper = await doctor([https], { HTTPS_PROXY: dead });
    assert.match(stepNamed(httpsUpper.report, 'proxy/vpn')!.detail, /^HTTPS_PROXY=/);
    assert.equal(httpsUpper.report.verdict, 'your-proxy-or-vpn');
    const both = await doctor([https], { https_proxy: dead, HTTPS_PROXY: 'http://127.0.0.1:1' });
    assert.match(
      stepNamed(both.report, 'proxy/vpn')!.detail,
      new RegExp(`^https_proxy=${dead.replaceAll('.', '\\.')} `),
    );

    // all_proxy and NO_PROXY, named by the case they were read in.
    const all = await doctor([`http://${up.address}/`], { all_proxy: dead, NO_PROXY: 'localhost,127.0.0.1' });
    assert.equal(all.report.verdict, 'ok');
    assert.match(
      stepNamed(all.report, 'proxy/vpn')!.detail,
      /^all_proxy set, but NO_PROXY \(127\.0\.0\.1\) exempts this URL/,
    );
  },
);

test('an HTTP proxy that wants credentials: your-proxy-or-vpn, naming the proxy and the 407', async () => {
  const guard = await httpUpstream((_req, res) =>
    res.writeHead(407, { 'proxy-authenticate': 'Basic realm="office"' }).end(),
  );
  cleanups.push(() => guard.close());
  const { code, report } = await doctor([`http://127.0.0.1:${await closedPort()}/`], {
    http_proxy: `http://user:secret@${guard.address}`,
  });
  assert.equal(report.verdict, 'your-proxy-or-vpn');
  assert.equal(code, 32);
  assert.match(report.summary, /^The proxy http:\/\/127\.0\.0\.1:\d+ wants credentials \(407/);
  assert.doesNotMatch(JSON.stringify(report), /secret/);
});

test('a SOCKS proxy in ALL_PROXY is named, checked for a connection, and the service is checked directly', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  // Something that accepts connections where the SOCKS proxy should be; doctor never speaks SOCKS to it.
  const accepted: Socket[] = [];
  const socks = createNetServer((s) => accepted.push(s));
  await new Promise<void>((r) => socks.listen(0, '127.0.0.1', r));
  const socksUrl = `socks5h://user:secret@127.0.0.1:${(socks.address() as AddressInfo).port}`;
  cleanups.push(
    () => up.close(),
    () =>
      new Promise((r) => {
        for (const s of accepted) s.destroy();
        socks.close(r);
      }),
  );

  const alive = await doctor([`http://${up.address}/`], { ALL_PROXY: socksUrl });
  const detail = stepNamed(alive.report, 'proxy/vpn')!.detail;
  assert.match(detail, /^ALL_PROXY=socks5h:\/\/127\.0\.0\.1:\d+ \(a SOCKS proxy\) applies to this URL: reachable/);
  assert.match(detail, /doctor cannot send requests through SOCKS/);
  assert.doesNotMatch(JSON.stringify(alive.report), /null \(|=null|secret/);
  assert.equal(alive.report.verdict, 'ok');
  assert.equal(stepNamed(alive.report, 'http')!.ok, true);
  assert.match(
    alive.report.summary,
    /checked directly, not through the SOCKS proxy socks5h:\/\/127\.0\.0\.1:\d+ \(from ALL_PROXY\)/,
  );

  // Reachable proxy, unreachable service: the direct path failing says nothing certain.
  const gone = await doctor([`http://127.0.0.1:${await closedPort()}/`], { ALL_PROXY: socksUrl });
  assert.equal(gone.report.verdict, 'unknown');
  assert.match(gone.report.summary, /when tried directly, but your programs reach it through the SOCKS proxy/);

  const dead = await doctor([`http://${up.address}/`], { ALL_PROXY: `socks5://127.0.0.1:${await closedPort()}` });
  assert.equal(dead.report.verdict, 'your-proxy-or-vpn');
  assert.match(
    dead.report.summary,
    /^The proxy socks5:\/\/127\.0\.0\.1:\d+ \(from ALL_PROXY\) .* does not accept connections/,
  );
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
  assert.match(stepNamed(trusted.report, 'tls')!.detail, /^TLSv1\.3, HTTP\/1\.1 certificate for localhost/);
});

test(
  'a plain-HTTP server given without a scheme: https is tried, then http, ' + 'and no certificate is blamed',
  async () => {
    const up = await httpUpstream((_req, res) => res.end('ok'));
    cleanups.push(() => up.close());

    const bare = await doctor([`${up.address}/path`]);
    assert.equal(bare.report.verdict, 'ok');
    assert.equal(bare.code, 0);
    assert.equal(bare.report.url, `http://${up.address}/path`);
    const tls = stepNamed(bare.report, 'tls')!;
    assert.equal(tls.ok, null);
    assert.match(tls.detail, /answers in plain HTTP .*goes on with http:\/\/127\.0\.0\.1:\d+\/path/);
    assert.equal(stepNamed(bare.report, 'http')!.ok, true);
    assert.match(bare.report.summary, /It answers in plain HTTP \(http:\/\/127\.0\.0\.1:\d+\/path\), not HTTPS\./);
    assert.doesNotMatch(JSON.stringify(bare.report), /certificate/i);

    // Asked for https:// outright: doctor keeps to it, and says what the server speaks instead.
    const explicit = await doctor([`https://${up.address}/path`]);
    assert.equal(explicit.report.verdict, 'service-side');
    assert.match(explicit.report.summary, /does not speak TLS: it answers in plain HTTP/);
    assert.doesNotMatch(explicit.report.summary, /certificate is not valid/);
    assert.match(explicit.report.advice.join(' '), /gangway doctor http:\/\/127\.0\.0\.1:\d+\/path/);
  },
);

/** `gangway doctor ARGS` for a person (no --json), each write stamped with when it happened. */
async function doctorWatched(args: string[]): Promise<{ code: number; lines: Array<{ at: number; text: string }> }> {
  const lines: Array<{ at: number; text: string }> = [];
  const stdout = new (class extends Writable {
    override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
      lines.push({ at: Date.now(), text: chunk.toString() });
      done();
    }
  })();
  const code = await main(['doctor', ...args, '--timeout', '2s'], { stdout, stderr: stdout, env: environment({}) });
  return { code, lines };
}

test('a wait is announced before it starts, with how long and why', async () => {
  const requests: number[] = [];
  const up = await httpUpstream((_req, res) => {
    requests.push(Date.now());
    res.writeHead(503, { 'retry-after': '30' }).end('busy');
  });
  cleanups.push(() => up.close());
  const { lines } = await doctorWatched([`http://${up.address}/`, '--attempts', '2']);
  const waiting = lines.find((l) => l.text.startsWith('… waiting'));
  assert.ok(waiting, lines.map((l) => l.text).join(''));
  assert.equal(
    waiting.text,
    '… waiting     5 s before attempt 2 of 2: the service asked to wait 30 s (Retry-After); doctor waits at most 5 s\n',
  );
  assert.equal(requests.length, 2);
  assert.ok(requests[1]! - waiting.at >= 4500, 'said before the 5 s pause, not after it');
});

// Bounded, so the doctor of old, which downloaded the whole body, fails here instead of hanging the file.
test('a stream that never ends: doctor reads its head, says it is a stream, and finishes in seconds', {
  timeout: 15_000,
}, async () => {
  const streams: ServerResponse[] = [];
  const up = await httpUpstream((req, res) => {
    streams.push(res);
    if (req.url === '/events') {
      // One event, then silence: a live feed between heartbeats.
      res.writeHead(200, { 'content-type': 'text/event-stream' }).write('data: hello\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'audio/mpeg' });
    const timer = setInterval(() => res.write(Buffer.alloc(4096)), 10);
    res.on('close', () => clearInterval(timer));
  });
  cleanups.push(() => {
    for (const r of streams) r.destroy();
    return up.close();
  });
  for (const [path, type] of [
    ['/radio', 'audio/mpeg'],
    ['/events', 'text/event-stream'],
  ] as const) {
    const started = Date.now();
    const { code, report } = await doctor([`http://${up.address}${path}`]);
    assert.ok(Date.now() - started < 4000, `${path} took ${Date.now() - started} ms`);
    assert.equal(code, 0);
    assert.match(
      stepNamed(report, 'http')!.detail,
      new RegExp(`^200 in \\d+ ms; the body is a stream \\(${type.replace('/', '\\/')}\\): doctor stopped after`),
    );
  }
});

test('a 404 is the service answering: ok, the page does not exist, no private window', async () => {
  const up = await httpUpstream((_req, res) => res.writeHead(404).end('no such page'));
  cleanups.push(() => up.close());
  const { code, report } = await doctor([`http://${up.address}/nope`]);
  assert.equal(report.verdict, 'ok');
  assert.equal(code, 0);
  assert.match(report.summary, /answered 404 Not Found in \d+ ms: the service is up, but this page does not exist\./);
  assert.doesNotMatch(report.advice.join(' '), /private window/);
  assert.match(report.advice.join(' '), /nothing at this address/);
});

test('the request id sentence: the advice quotes the id when there is one, and leaves it out when not', async () => {
  const up = await httpUpstream((req, res) => {
    if (req.url === '/with-id') res.setHeader('x-request-id', 'req-4711');
    res.writeHead(502).end('bad gateway');
  });
  cleanups.push(() => up.close());

  const withId = await cli(['doctor', `http://${up.address}/with-id`, '--attempts', '1'], environment({}));
  assert.equal(withId.code, 20);
  assert.match(withId.stdout, /Request id \(quote it to support\): req-4711\n/);
  assert.match(withId.stdout, /report it to the service, quoting the request id\.\n/);
  assert.doesNotMatch(withId.stdout, /below/);

  const without = await cli(['doctor', `http://${up.address}/`, '--attempts', '1'], environment({}));
  assert.equal(without.code, 20);
  assert.doesNotMatch(without.stdout, /request id/i);
  assert.match(without.stdout, /report it to the service, saying when it happened\.\n/);
});

test('the verdicts and exit codes are in `gangway help doctor`, as the README says', async () => {
  const { stdout } = await cli(['help', 'doctor']);
  for (const [verdict, { exit }] of Object.entries(VERDICTS))
    assert.match(stdout, new RegExp(`\\b${verdict} ${exit}\\b`));
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### `gangway doctor URL`'), readme.indexOf('## How it compares'));
  assert.match(section, /`npx gangway help doctor` lists/);
  for (const [verdict, { exit }] of Object.entries(VERDICTS))
    assert.match(section, new RegExp(`\`${verdict}\` ${exit}\\b`));
  for (const command of section.match(/^\$ .*/gm) ?? []) assert.match(command, /^\$ npx gangway /);
  assert.doesNotMatch(section, /\/_status/);
});

test('the TLS rung names the protocol the server chose by ALPN: HTTP/2 from a server that speaks it', async () => {
  const { createSecureServer } = await import('node:http2');
  const tlsDir = join(import.meta.dirname, 'support', 'tls');
  const server = createSecureServer(
    {
      key: readFileSync(join(tlsDir, 'localhost-key.pem')),
      cert: readFileSync(join(tlsDir, 'localhost-cert.pem')),
      allowHTTP1: true,
    },
    (_req, res) => res.end('ok'),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const url = `https://localhost:${(server.address() as AddressInfo).port}/`;
  const { report } = await doctor([url]);
  assert.match(stepNamed(report, 'tls')!.detail, /^TLSv1\.3, HTTP\/2 certificate for localhost/);
});

/** A CONNECT proxy that opens each tunnel to `to(authority)`; or refuses CONNECT with `refuse`. */
async function connectProxy(to: (authority: string) => number, refuse?: number): Promise<string> {
  const proxy = createServer((_req, res) => res.writeHead(400).end());
  proxy.on('connect', (req, client: Socket, head: Buffer) => {
    if (refuse !== undefined) {
      client.end(`HTTP/1.1 ${refuse} No\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: to(req.url ?? '') }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        proxy.closeAllConnections();
        proxy.close(r);
      }),
  );
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

/** An h2 + HTTP/1.1 HTTPS server on loopback with one of the tests' certificates. */
async function httpsServer(certificate: 'localhost' | 'rotated'): Promise<number> {
  const { createSecureServer } = await import('node:http2');
  const tlsDir = join(import.meta.dirname, 'support', 'tls');
  const server = createSecureServer(
    {
      key: readFileSync(join(tlsDir, `${certificate}-key.pem`)),
      cert: readFileSync(join(tlsDir, `${certificate}-cert.pem`)),
      allowHTTP1: true,
    },
    (_req, res) => res.end('ok'),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

test(
  'behind an HTTP proxy the TLS rung shakes hands inside a CONNECT tunnel, names the ALPN protocol, ' +
    'and tells an intercepting proxy from a bad certificate',
  async () => {
    const trust = { NODE_EXTRA_CA_CERTS: join(import.meta.dirname, 'support', 'tls', 'localhost-cert.pem') };
    const service = await httpsServer('localhost');
    const url = `https://localhost:${service}/`;

    // A plain tunnelling proxy: the service's own certificate, over HTTP/2, and the verdict ok.
    const tunnel = await connectProxy(() => service);
    const through = await doctorProcess([url], { ...trust, https_proxy: tunnel });
    const tls = stepNamed(through.report, 'tls')!;
    assert.equal(tls.ok, true, tls.detail);
    assert.match(
      tls.detail,
      /^through the proxy http:\/\/127\.0\.0\.1:\d+: TLSv1\.3, HTTP\/2 certificate for localhost/,
    );
    assert.equal(through.report.verdict, 'ok');

    // An inspecting proxy presents its own certificate (here: the rotated one, not trusted).
    const inspector = await httpsServer('rotated');
    const intercepting = await connectProxy(() => inspector);
    const caught = await doctorProcess([url], { ...trust, https_proxy: intercepting });
    assert.equal(stepNamed(caught.report, 'tls')!.ok, false);
    assert.equal(caught.report.verdict, 'your-proxy-or-vpn');
    assert.match(caught.report.summary, /the proxy intercepts TLS/);
    assert.match(caught.report.summary, /certificate from Gangway tests \(rotated\)/);

    // A service whose certificate is untrusted everywhere: the service's fault, proxy or not.
    const untrusted = await doctorProcess([url], { https_proxy: tunnel });
    assert.equal(untrusted.report.verdict, 'service-side');
    assert.match(untrusted.report.summary, /TLS certificate is not valid for localhost/);

    // A proxy that refuses the tunnel: the TLS rung says so, and the proxy's answer is the verdict.
    const refusing = await connectProxy(() => service, 403);
    const refused = await doctorProcess([url], { ...trust, https_proxy: refusing });
    assert.match(stepNamed(refused.report, 'tls')!.detail, /no tunnel \(the proxy answered 403\)/);
    assert.equal(refused.report.verdict, 'your-proxy-or-vpn');
    assert.match(refused.report.summary, /refuses to pass requests to localhost:\d+ on \(it answered 403 Forbidden\)/);
    assert.equal(stepNamed(refused.report, 'repeat'), undefined, 'a rule of the proxy is not asked again');
  },
);

test('a proxy password that is not valid percent-encoding goes to the proxy as typed, not as a crash', async () => {
  // A proxy that answers every CONNECT 403 and keeps the credentials it was sent.
  let sent: string | undefined;
  const proxy = createServer();
  proxy.on('connect', (req, socket: Socket) => {
    sent = req.headers['proxy-authorization'];
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => proxy.close(r)));
  const { port } = proxy.address() as AddressInfo;
  const tunnel = await tunnelThrough(new URL(`http://ops:p%zz%41@127.0.0.1:${port}`), 'music.test', 443, 5000);
  assert.equal(tunnel.ok, false);
  assert.equal(tunnel.status, 403);
  assert.equal(sent, `Basic ${Buffer.from('ops:p%zz%41').toString('base64')}`);
});
