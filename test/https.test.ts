/**
 * HTTPS listeners: `listen` entries with a certificate serve TLS 1.2/1.3 beside cleartext ones,
 * a reload makes new handshakes present a replaced certificate while open connections carry
 * on, and a certificate that cannot be served (unreadable, expired, a key of another) is
 * refused with its file, line and field.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as http2Constants, connect as http2Connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { ConfigError, createGateway, loadConfigFile } from '../src/index.js';
import { certificateFacts, daysLeft } from '../src/listen/certificate.js';
import type { StatusReport } from '../src/admin/status-model.js';
import { renderSections } from '../src/admin/status-view.js';
import { h2Ask } from './support/h2-client.js';
import { spawnCli } from './support/spawn-cli.js';
import { closedPort, httpUpstream, websocketTranscript } from './support/harness.js';
import { websocketEchoServer, WsClient } from './support/websocket.js';

const TLS = join(import.meta.dirname, 'support', 'tls');
const CA = readFileSync(join(TLS, 'localhost-cert.pem'), 'utf8');
const ROTATED = readFileSync(join(TLS, 'rotated-cert.pem'), 'utf8');
const MUSIC = readFileSync(join(TLS, 'music-cert.pem'), 'utf8');
const WILDCARD = readFileSync(join(TLS, 'wildcard-cert.pem'), 'utf8');

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An upstream that answers "hello PATH" and says which X-Forwarded-Proto it heard. */
async function helloUpstream() {
  const up = await httpUpstream((req, res) => {
    req.resume();
    res.setHeader('x-seen-proto', String(req.headers['x-forwarded-proto']));
    res.end(`hello ${req.url}`);
  });
  cleanups.push(() => up.close());
  return up.address;
}

/**
 * A directory with the certificate files and a configuration naming them relatively, routing to
 * `host` (a hello upstream by default).
 */
async function setUp(listen: string, host?: string) {
  const upstream = host ?? (await helloUpstream());
  const dir = mkdtempSync(join(tmpdir(), 'gangway-https-'));
  copyFileSync(join(TLS, 'localhost-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(TLS, 'localhost-key.pem'), join(dir, 'key.pem'));
  const file = join(dir, 'gangway.yaml');
  writeFileSync(
    file,
    `listen: ${listen}
admin: false
upstreams:
  music: { hosts: ["${upstream}"], healthCheck: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: music }
`,
  );
  return { dir, file };
}

const SECURE = `{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }`;

async function start(file: string) {
  const gw = createGateway(loadConfigFile(file), {
    configFile: file,
    logDestination: { write() {} },
    processMetrics: false,
  });
  const addresses = await gw.listen();
  cleanups.push(() => gw.close());
  return { gw, ...addresses };
}

/** The subject's O= of the certificate a new TLS handshake to `port` is shown (for `servername`). */
function presented(port: number, servername = 'localhost'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      { host: '127.0.0.1', port, ca: [CA, ROTATED, MUSIC, WILDCARD], servername, rejectUnauthorized: false },
      () => {
        const org = s.getPeerCertificate().subject.O;
        s.end();
        resolve(String(org));
      },
    );
    s.once('error', reject);
  });
}

test(
  'an HTTPS listener beside a cleartext one: both proxy, TLS 1.2 or newer, ' +
    'the certificate files relative to the configuration',
  async () => {
    const { file } = await setUp(
      `["127.0.0.1:0", { address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }]`,
    );
    const { listeners } = await start(file);
    const [plain, secure] = listeners;
    assert.ok(plain && secure);
    const clear = await request(`http://127.0.0.1:${plain.port}/a`);
    assert.equal(await clear.body.text(), 'hello /a');
    const agent = new Agent({ connect: { ca: CA, servername: 'localhost' } });
    cleanups.push(() => agent.close());
    const tls = await request(`https://127.0.0.1:${secure.port}/b`, { dispatcher: agent });
    assert.equal(tls.statusCode, 200);
    assert.equal(await tls.body.text(), 'hello /b');
    assert.equal(tls.headers['x-seen-proto'], 'https', 'the upstream hears the client came over TLS');
    assert.equal(clear.headers['x-seen-proto'], 'http');
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tlsConnect(
          { host: '127.0.0.1', port: secure.port, ca: CA, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' },
          () => resolve(s.getProtocol()),
        );
        s.once('error', reject);
      }),
      'TLS 1.1 is refused',
    );
  },
);

test(
  'a replaced certificate is presented from the next handshake after a reload; ' +
    'a connection already open carries on',
  async () => {
    const { dir, file } = await setUp(`{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }`);
    const { gw, proxy } = await start(file);
    assert.equal(await presented(proxy.port), 'Gangway tests');
    const agent = new Agent({ connect: { ca: [CA, ROTATED], servername: 'localhost' }, connections: 1 });
    cleanups.push(() => agent.close());
    const before = await request(`https://127.0.0.1:${proxy.port}/one`, { dispatcher: agent });
    assert.equal(await before.body.text(), 'hello /one');
    copyFileSync(join(TLS, 'rotated-cert.pem'), join(dir, 'cert.pem'));
    copyFileSync(join(TLS, 'rotated-key.pem'), join(dir, 'key.pem'));
    await gw.reload();
    assert.equal(await presented(proxy.port), 'Gangway tests (rotated)', 'new handshakes get the new certificate');
    const kept = await request(`https://127.0.0.1:${proxy.port}/two`, { dispatcher: agent });
    assert.equal(
      await kept.body.text(),
      'hello /two',
      'the keep-alive connection opened before the reload still works',
    );
  },
);

test(
  'a certificate that cannot be served is refused with file, line and field: ' +
    'unreadable, expired, a key of another; a running gateway keeps its own',
  async () => {
    const { dir, file } = await setUp(`{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }`);
    const refusal = (cert: string, key: string): string => {
      const bad = join(dir, 'bad.yaml');
      writeFileSync(
        bad,
        readFileSync(file, 'utf8').replace('cert: "cert.pem", key: "key.pem"', `cert: "${cert}", key: "${key}"`),
      );
      try {
        loadConfigFile(bad);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message;
      }
      return 'accepted';
    };
    assert.match(refusal('absent.pem', 'key.pem'), /bad\.yaml:1:\d+ listen\[0\]\.tls\.cert: cannot read .*absent\.pem/);
    copyFileSync(join(TLS, 'expired-cert.pem'), join(dir, 'expired.pem'));
    copyFileSync(join(TLS, 'expired-key.pem'), join(dir, 'expired-key.pem'));
    assert.match(
      refusal('expired.pem', 'expired-key.pem'),
      /listen\[0\]\.tls\.cert: the certificate expired on 2020-01-02/,
    );
    copyFileSync(join(TLS, 'rotated-key.pem'), join(dir, 'other-key.pem'));
    assert.match(
      refusal('cert.pem', 'other-key.pem'),
      /listen\[0\]\.tls\.key: this key does not belong to the certificate/,
    );
    assert.match(refusal('key.pem', 'key.pem'), /listen\[0\]\.tls\.cert: not a PEM certificate/);

    const { gw, proxy } = await start(file);
    copyFileSync(join(TLS, 'expired-cert.pem'), join(dir, 'cert.pem'));
    copyFileSync(join(TLS, 'expired-key.pem'), join(dir, 'key.pem'));
    await assert.rejects(gw.reload(), ConfigError);
    assert.equal(await presented(proxy.port), 'Gangway tests', 'the refused reload left the certificate in use');
  },
);

test('gangway start --watch presents a renewed certificate once its files are replaced', async () => {
  const { dir, file } = await setUp(`{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }`);
  const port = await closedPort();
  writeFileSync(file, readFileSync(file, 'utf8').replace('127.0.0.1:0', `127.0.0.1:${port}`));
  const gw = spawnCli(['start', '-c', file, '--watch']);
  const { child } = gw;
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await gw.until('gangway listening', 15_000);
  assert.equal(await presented(port), 'Gangway tests');
  // A renewer writes the key, then the certificate: the reload waits for the pair to settle.
  copyFileSync(join(TLS, 'rotated-key.pem'), join(dir, 'key.pem'));
  copyFileSync(join(TLS, 'rotated-cert.pem'), join(dir, 'cert.pem'));
  let org = '';
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    org = await presented(port);
    if (org === 'Gangway tests (rotated)') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(org, 'Gangway tests (rotated)');
  child.kill('SIGTERM');
});

test(
  'HTTP/2 on the TLS listener (ALPN h2, HTTP/1.1 beside it): answers, bodies ' +
    'both ways, explained errors, the protocol in the access log',
  async () => {
    const { file } = await setUp(`{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }`);
    const lines: Array<Record<string, unknown>> = [];
    const gw = createGateway(loadConfigFile(file), {
      logDestination: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
      processMetrics: false,
    });
    const { proxy } = await gw.listen();
    cleanups.push(() => gw.close());
    const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
    cleanups.push(() => session.close());
    const ask = (headers: Record<string, string>, body?: string) => h2Ask(session, headers, body);
    const get = await ask({ ':path': '/over-h2', 'accept-encoding': 'identity', cookie: 'a=1' });
    assert.equal(get.status, 200);
    assert.equal(get.body, 'hello /over-h2');
    assert.equal(get.headers.connection, undefined, 'no connection-specific field over HTTP/2');
    const post = await ask(
      { ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain' },
      'x'.repeat(100_000),
    );
    assert.equal(post.status, 200);
    const line = lines.find((l) => l.msg === 'request' && l.path === '/over-h2');
    assert.equal(line?.protocol, 'HTTP/2.0');
    assert.equal(line?.bytes_in, 0);
    assert.equal(lines.find((l) => l.path === '/upload')?.bytes_in, 100_000, 'the request body went up whole');
    // HTTP/1.1 on the same port still works (a client that does not offer h2).
    const agent = new Agent({ connect: { ca: CA, servername: 'localhost' }, allowH2: false });
    cleanups.push(() => agent.close());
    const h1 = await request(`https://127.0.0.1:${proxy.port}/h1`, { dispatcher: agent });
    assert.equal(await h1.body.text(), 'hello /h1');
    const logged = Date.now() + 2000;
    while (!lines.some((l) => l.path === '/h1') && Date.now() < logged) await new Promise((r) => setTimeout(r, 10));
    assert.equal(lines.find((l) => l.msg === 'request' && l.path === '/h1')?.protocol, 'HTTP/1.1');
    const metrics = await gw.metrics.registry.metrics();
    // By route and protocol: the one route's requests split into h2 and http/1.1, durations too.
    assert.match(metrics, /gangway_requests_by_protocol_total\{route="\/",protocol="h2"\} 2/);
    assert.match(metrics, /gangway_requests_by_protocol_total\{route="\/",protocol="http\/1.1"\} 1/);
    assert.match(metrics, /gangway_request_duration_seconds_count\{route="\/",protocol="h2"\} 2/);
    assert.match(metrics, /gangway_request_duration_seconds_count\{route="\/",protocol="http\/1.1"\} 1/);
  },
);

test('HTTP/2: a gateway-made error is explained the same way (problem+json, Proxy-Status, Retry-After)', async () => {
  const { file } = await setUp(SECURE, '127.0.0.1:1');
  const { proxy } = await start(file);
  const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
  cleanups.push(() => session.close());
  const answer = await h2Ask(session, { ':path': '/tracks', accept: 'application/json' });
  assert.equal(answer.headers[':status'], 502);
  assert.equal(answer.headers['content-type'], 'application/problem+json');
  assert.match(String(answer.headers['proxy-status']), /error=connection_refused/);
  assert.ok(Number(answer.headers['retry-after']) > 0);
  assert.equal((JSON.parse(answer.body) as { status: number }).status, 502);
});

test('a WebSocket upgrade over HTTPS (HTTP/1.1 on the TLS listener) is tunnelled both ways', async () => {
  const up = await httpUpstream((_req, res) => res.end('not an upgrade'));
  up.server.on('upgrade', (req, socket) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-seen-proto: ` +
        `${req.headers['x-forwarded-proto']}\r\n\r\n`,
    );
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  cleanups.push(() => up.close());
  const { file } = await setUp(SECURE, up.address);
  const { proxy } = await start(file);
  const socket = tlsConnect({
    host: '127.0.0.1',
    port: proxy.port,
    ca: CA,
    servername: 'localhost',
    ALPNProtocols: ['http/1.1'],
  });
  const transcript = await websocketTranscript(socket, 'localhost');
  assert.match(transcript, /^HTTP\/1.1 101 Switching Protocols/);
  assert.match(transcript, /x-seen-proto: https/);
  assert.match(transcript, /echo:ping$/);
});

test('a WebSocket over HTTP/2 on the TLS listener (RFC 8441 extended CONNECT) is tunnelled both ways', async () => {
  const echo = await websocketEchoServer();
  cleanups.push(() => echo.close());
  const { file } = await setUp(SECURE, echo.address);
  const { proxy } = await start(file);
  const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
  cleanups.push(() => session.destroy());
  await new Promise((r) => session.once('remoteSettings', r));
  const stream = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/ws',
      ':authority': 'localhost',
      'sec-websocket-version': '13',
    },
    { endStream: false },
  );
  const headers = await new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve));
  assert.equal(headers[':status'], 200);
  assert.equal(echo.handshakes[0]?.['x-forwarded-proto'], 'https');
  const ws = new WsClient(stream);
  ws.send('over tls');
  assert.ok(await ws.until(() => ws.texts().length === 1));
  assert.deepEqual(ws.texts(), ['echo:over tls']);
});

test('a drain lets an HTTP/2 stream in flight finish (GOAWAY), then the gateway stops', async () => {
  const up = await httpUpstream((req, res) => {
    req.resume();
    setTimeout(() => res.end('slow answer'), 300);
  });
  cleanups.push(() => up.close());
  const { file } = await setUp(SECURE, up.address);
  const gw = createGateway(loadConfigFile(file), { logDestination: { write() {} }, processMetrics: false });
  const { proxy } = await gw.listen();
  const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
  const answer = h2Ask(session, { ':path': '/slow' }).then((r) => r.body);
  await new Promise((r) => setTimeout(r, 100));
  const closed = gw.close();
  assert.equal(await answer, 'slow answer', 'the stream under way finished');
  await closed;
  session.destroy();
});

test(
  'a reload lets an HTTP/2 stream in flight finish on the old configuration; the next stream on ' +
    'the same connection uses the new one (no GOAWAY needed: the listener stays)',
  async () => {
    const old = await httpUpstream((req, res) => {
      req.resume();
      setTimeout(() => res.end('old upstream, slowly'), 400);
    });
    cleanups.push(() => old.close());
    const fresh = await helloUpstream();
    const { file } = await setUp(SECURE, old.address);
    const { gw, proxy } = await start(file);
    const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
    cleanups.push(() => session.close());
    let goaway = false;
    session.on('goaway', () => {
      goaway = true;
    });
    const inFlight = h2Ask(session, { ':path': '/during' });
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(file, readFileSync(file, 'utf8').replace(old.address, fresh));
    await gw.reload();
    assert.equal((await inFlight).body, 'old upstream, slowly', 'the stream under way finished');
    assert.equal((await h2Ask(session, { ':path': '/next' })).body, 'hello /next', 'the new configuration');
    assert.equal(goaway, false);
  },
);

test(
  "each certificate's names and expiry are in /api/status and a metric; an " + 'expired one reads as negative days',
  async () => {
    const { file } = await setUp(`{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem" } }`);
    writeFileSync(file, readFileSync(file, 'utf8').replace('admin: false', `admin: "127.0.0.1:${await closedPort()}"`));
    const gw = createGateway(loadConfigFile(file), { logDestination: { write() {} }, processMetrics: false });
    const { admin } = await gw.listen();
    cleanups.push(() => gw.close());
    const status = (await (await fetch(`http://127.0.0.1:${admin!.port}/api/status`)).json()) as {
      certificates: Array<{ names: string[]; not_after: string; days_left: number; expires_soon: boolean }>;
    };
    const [cert] = status.certificates;
    assert.deepEqual(cert?.names, ['localhost', '127.0.0.1']);
    assert.ok(cert!.days_left > 3000, `valid until ${cert!.not_after}`);
    assert.equal(cert!.expires_soon, false);
    // The operator's status page lists it; one close to its end is marked for renewal, an expired one says so.
    const page = await (
      await fetch(`http://127.0.0.1:${admin!.port}/status`, { headers: { accept: 'text/html' } })
    ).text();
    assert.match(page, /<h2 id="crt">Certificates<\/h2>/);
    assert.match(page, /<strong>localhost, 127\.0\.0\.1<\/strong> · listener 127\.0\.0\.1:0/);
    assert.match(page, /valid until <time datetime="20\d\d-[^"]+">[^<]+<\/time> · \d,\d{3} days left/);
    assert.doesNotMatch(page, /Renew it/);
    const soon = { listener: '127.0.0.1:8443', names: ['music.example'], not_after: '2030-01-10T00:00:00.000Z' };
    const sections = renderSections(
      {
        ...(status as unknown as StatusReport),
        certificates: [
          { ...soon, days_left: 9, expires_soon: true },
          { ...soon, names: ['old.example'], days_left: -3, expires_soon: true },
        ],
      },
      'en',
      {},
    );
    assert.match(sections.certificates!, /<li class="soon"><strong>music\.example<\/strong>.* 9 days left/s);
    assert.match(sections.certificates!, /Renew it: fewer than 14 days left/);
    assert.match(sections.certificates!, /<li class="expired"><strong>old\.example.*expired on <time/s);
    assert.equal(sections.certificates!.match(/Renew it/g)?.length, 1, 'an expired one is past renewing soon');
    const publicView = renderSections({ ...(status as unknown as StatusReport), certificates: undefined }, 'en', {});
    assert.equal(publicView.certificates, undefined, 'the public view has no certificates');
    const metrics = await (await fetch(`http://127.0.0.1:${admin!.port}/metrics`)).text();
    assert.match(metrics, /gangway_certificate_expiry_seconds\{listener="127\.0\.0\.1:0",name="localhost"\} \d{8,}/);
    const expired = certificateFacts('test', readFileSync(join(TLS, 'expired-cert.pem'), 'utf8'));
    assert.equal(expired.notAfter.toISOString(), '2020-01-02T00:00:00.000Z');
    assert.ok(daysLeft(expired) < 0);
    assert.equal(daysLeft(expired, Date.parse('2019-12-30T00:00:00Z')), 3);
  },
);

test(
  'HSTS on the HTTPS listener; a cleartext listener redirects to it (308, ' + 'the ACME challenge path excepted)',
  async () => {
    const { file } = await setUp(
      `[{ address: "127.0.0.1:0", redirectToHttps: true }, { address: "127.0.0.1:0", ` +
        `tls: { cert: "cert.pem", key: "key.pem", hsts: "365d" } }]`,
    );
    const { listeners } = await start(file);
    const [plain, secure] = listeners;
    assert.ok(plain && secure);
    const redirected = await request(`http://127.0.0.1:${plain.port}/api/tracks?x=1`, {
      headers: { host: 'music.example' },
    });
    await redirected.body.dump();
    assert.equal(redirected.statusCode, 308);
    assert.equal(redirected.headers.location, `https://music.example:${secure.port}/api/tracks?x=1`);
    const challenge = await request(`http://127.0.0.1:${plain.port}/.well-known/acme-challenge/token`);
    await challenge.body.dump();
    assert.equal(challenge.statusCode, 404, 'the challenge path is not redirected');
    const agent = new Agent({ connect: { ca: CA, servername: 'localhost' } });
    cleanups.push(() => agent.close());
    const answer = await request(`https://127.0.0.1:${secure.port}/x`, { dispatcher: agent });
    await answer.body.dump();
    assert.equal(answer.headers['strict-transport-security'], 'max-age=31536000');
    assert.throws(() => {
      const bad = file.replace('gangway.yaml', 'redirect-only.yaml');
      writeFileSync(
        bad,
        readFileSync(file, 'utf8').replace(/listen: .*/, 'listen: { address: "127.0.0.1:0", redirectToHttps: true }'),
      );
      loadConfigFile(bad);
    }, /redirectToHttps needs an HTTPS listener/);
  },
);

test(
  'several certificates on one listener, chosen by SNI: exact names, a wildcard ' +
    'one label deep, the default for the rest',
  async () => {
    const { dir, file } = await setUp(
      `{ address: "127.0.0.1:0", tls: { cert: "cert.pem", key: "key.pem", sni: ` +
        `[{ cert: "music.pem", key: "music-key.pem" }, { cert: "wild.pem", key: ` +
        `"wild-key.pem" }] } }`,
    );
    copyFileSync(join(TLS, 'music-cert.pem'), join(dir, 'music.pem'));
    copyFileSync(join(TLS, 'music-key.pem'), join(dir, 'music-key.pem'));
    copyFileSync(join(TLS, 'wildcard-cert.pem'), join(dir, 'wild.pem'));
    copyFileSync(join(TLS, 'wildcard-key.pem'), join(dir, 'wild-key.pem'));
    const { proxy } = await start(file);
    assert.equal(await presented(proxy.port, 'music.example'), 'Gangway tests (music)');
    assert.equal(await presented(proxy.port, 'MUSIC.example'), 'Gangway tests (music)', 'names compare without case');
    assert.equal(await presented(proxy.port, 'daily.podcasts.example'), 'Gangway tests (wildcard)');
    assert.equal(
      await presented(proxy.port, 'a.b.podcasts.example'),
      'Gangway tests',
      'a wildcard covers one label only',
    );
    assert.equal(await presented(proxy.port, 'localhost'), 'Gangway tests');
    // A request through the SNI certificate is proxied like any other.
    const agent = new Agent({ connect: { ca: MUSIC, servername: 'music.example' } });
    cleanups.push(() => agent.close());
    const r = await request(`https://127.0.0.1:${proxy.port}/sni`, {
      dispatcher: agent,
      headers: { host: 'music.example' },
    });
    assert.equal(await r.body.text(), 'hello /sni');
    copyFileSync(join(TLS, 'localhost-key.pem'), join(dir, 'music-key.pem'));
    assert.throws(() => loadConfigFile(file), /listen\[0\]\.tls\.sni\[0\]\.key: this key does not belong/);
  },
);

test('an h2c listener speaks HTTP/2 with prior knowledge in cleartext (for a load balancer in front)', async () => {
  const { file } = await setUp(`{ address: "127.0.0.1:0", h2c: true }`);
  const { gw, proxy } = await start(file);
  const session = http2Connect(`http://127.0.0.1:${proxy.port}`);
  cleanups.push(() => session.close());
  const answer = await h2Ask(session, { ':path': '/plain-h2' });
  assert.deepEqual(
    { status: answer.status, proto: answer.headers['x-seen-proto'], body: answer.body },
    { status: 200, proto: 'http', body: 'hello /plain-h2' },
  );
  const metrics = await gw.metrics.registry.metrics();
  assert.match(metrics, /gangway_requests_by_protocol_total\{route="\/",protocol="h2c"\} 1/, 'h2c, told from h2');
  assert.throws(() => {
    writeFileSync(file, readFileSync(file, 'utf8').replace('h2c: true', 'h2c: true, redirectToHttps: true'));
    loadConfigFile(file);
  }, /h2c is HTTP\/2 in cleartext/);
});

test(
  'HTTP/2 under a rapid-reset flood (streams opened and cancelled at once): the gateway keeps ' +
    'serving others (http2-attacks.test.ts sends the frames by hand and checks the GOAWAY)',
  async () => {
    const { file } = await setUp(SECURE);
    const { proxy } = await start(file);
    const attacker = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
    attacker.on('error', () => {});
    await new Promise<void>((r) => attacker.once('connect', () => r()));
    for (let i = 0; i < 2000 && !attacker.destroyed && !attacker.closed; i++) {
      try {
        const s = attacker.request({ ':path': `/flood/${i}` });
        s.on('error', () => {});
        s.close(http2Constants.NGHTTP2_CANCEL);
      } catch {
        break; // the gateway ended the session: what it should do to such a peer
      }
      // The gateway shares this event loop: let it read between bursts, as between network reads.
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    attacker.destroy();
    const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
    cleanups.push(() => session.close());
    assert.equal((await h2Ask(session, { ':path': '/after' })).body, 'hello /after');
  },
);

test('the status page and its live updates are served over HTTP/2', async () => {
  const { file } = await setUp(SECURE);
  writeFileSync(file, `${readFileSync(file, 'utf8')}status: { path: "/status" }\n`);
  const { proxy } = await start(file);
  const session = http2Connect(`https://localhost:${proxy.port}`, { ca: CA });
  // Destroyed, not closed: a graceful client close after a reset event stream keeps its socket
  // (the gateway then cuts it at its drain timeout).
  cleanups.push(() => session.destroy());
  const page = await h2Ask(session, { ':path': '/status', accept: 'text/html' });
  assert.equal(page.status, 200);
  assert.match(page.body, /<html/);
  const events = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const stream = session.request({ ':path': '/status/events', accept: 'text/event-stream' });
    stream.on('response', (h) => {
      stream.close();
      resolve(h);
    });
    stream.on('error', reject);
    stream.end();
  });
  assert.equal(events[':status'], 200);
  assert.match(String(events['content-type']), /text\/event-stream/);
});
