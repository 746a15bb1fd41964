/**
 * Reaching upstreams and clients beyond plain IPv4 HTTP: an https:// upstream (trusted
 * through the operator's CA bundle, NODE_EXTRA_CA_CERTS, and untrusted), and IPv6 on both
 * sides — a listener on [::1] whose clients are named correctly upstream, and an upstream
 * host at an IPv6 address.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, loadConfigFile } from '../src/index.js';
import { startChildGateway } from './support/child-gateway.js';
import { fetchRaw, httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const TLS_DIR = join(import.meta.dirname, 'support', 'tls');
const CERT = join(TLS_DIR, 'localhost-cert.pem');

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  encrypted: boolean;
}

/** An HTTPS upstream on loopback with the tests' self-signed certificate (valid for localhost and 127.0.0.1). */
async function httpsUpstream() {
  const seen: Seen[] = [];
  let handshakes = 0;
  const server = createHttpsServer(
    { key: readFileSync(join(TLS_DIR, 'localhost-key.pem')), cert: readFileSync(CERT) },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          headers: req.headers,
          encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
        });
        res.setHeader('content-type', 'text/plain');
        res.end('secure hello');
      });
    },
  );
  server.on('secureConnection', () => {
    handshakes++;
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  );
  return { origin: `https://127.0.0.1:${port}`, seen, handshakes: () => handshakes };
}

test('an https:// upstream whose CA the operator trusts (NODE_EXTRA_CA_CERTS) is proxied to over TLS', async () => {
  const up = await httpsUpstream();
  const previous = process.env.NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = CERT;
  let gw: Awaited<ReturnType<typeof startChildGateway>>;
  try {
    gw = await startChildGateway(up.origin);
  } finally {
    if (previous === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = previous;
  }
  cleanups.push(async () => {
    if (gw.child.exitCode === null) {
      gw.child.kill('SIGKILL');
      await gw.exited;
    }
  });
  const res = await fetchRaw(`${gw.url}/tracks?page=1`, { timeoutMs: 10_000 });
  assert.equal(res.status, 200, `the gateway answers 200 (Proxy-Status: ${res.headers['proxy-status']})`);
  assert.equal(res.body.toString(), 'secure hello', "the body is the HTTPS upstream's");
  assert.equal(up.seen.length, 1, 'the upstream received the request');
  assert.equal(up.seen[0]!.encrypted, true, 'over TLS');
  assert.ok(up.handshakes() >= 1, 'a TLS handshake completed');
  assert.equal(up.seen[0]!.url, '/tracks?page=1', 'with the path and query unchanged');
  assert.equal(
    up.seen[0]!.headers['x-forwarded-proto'],
    'http',
    'X-Forwarded-Proto names how the client reached the gateway, not how the gateway reached the upstream',
  );
});

test('an https:// upstream with a certificate nobody trusts: 502, no request reaches it, and the log names the certificate error', async () => {
  const up = await httpsUpstream();
  const gw = await startGateway(minimalConfig([up.origin]));
  cleanups.push(() => gw.close());
  const res = await fetchRaw(`${gw.url}/tracks`, { headers: { accept: 'application/json' }, timeoutMs: 10_000 });
  assert.equal(res.status, 502, 'the client gets a 502');
  assert.equal(up.seen.length, 0, 'no request reached the upstream');
  const deadline = Date.now() + 5000;
  while (!gw.logs.some((l) => l.msg === 'request') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  const line = gw.logs.find((l) => l.msg === 'request');
  assert.match(
    String(line?.cause),
    /self[- ]signed|SELF_SIGNED|certificate/i,
    'the access log has the certificate error as its cause',
  );
});

test(
  'a TLS certificate failure is its own kind of the taxonomy: Proxy-Status ' + 'error=tls_certificate_error',
  async () => {
    const up = await httpsUpstream();
    const gw = await startGateway(minimalConfig([up.origin]));
    cleanups.push(() => gw.close());
    const res = await fetchRaw(`${gw.url}/tracks`, { timeoutMs: 10_000 });
    assert.equal(res.status, 502, 'the client gets a 502');
    assert.equal(
      res.headers['proxy-status'],
      'gangway; error=tls_certificate_error; details="upstream music"',
      'Proxy-Status says the upstream certificate failed',
    );
  },
);

test('a TLS certificate failure on one host is retried on another host (nothing was sent)', async () => {
  const bad = await httpsUpstream();
  const good = await httpUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('plain hello'));
  });
  cleanups.push(() => good.close());
  const gw = await startGateway(minimalConfig([bad.origin, good.address], { upstream: { balance: 'round-robin' } }));
  cleanups.push(() => gw.close());
  const res = await fetchRaw(`${gw.url}/orders`, { method: 'POST', body: 'order', timeoutMs: 10_000 });
  assert.equal(res.status, 200, 'the POST is answered by the other host: the TLS failure sent nothing');
  assert.equal(res.body.toString(), 'plain hello', "the other host's answer");
});

test(
  "a pool's tls.ca (relative to the configuration file) verifies its https:// " +
    'hosts; servername picks the name checked; verify: false is refused by nothing ' +
    'but trusts anything',
  async () => {
    const up = await httpsUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'gangway-tls-'));
    copyFileSync(CERT, join(dir, 'ca.pem'));
    const write = (name: string, tls: string) => {
      const file = join(dir, name);
      writeFileSync(
        file,
        `listen: "127.0.0.1:0"\nadmin: false\nupstreams:\n  music:\n    hosts: ["${up.origin}"]\n ` +
          `   healthCheck: { enabled: false }\n    tls: ${tls}\nroutes:\n  - { match: ` +
          `{ path: "/" }, upstream: music }\n`,
      );
      return loadConfigFile(file);
    };
    for (const [tls, expected] of [
      ['{ ca: "ca.pem" }', 200],
      ['{ ca: "ca.pem", servername: "localhost" }', 200],
      ['{ ca: "ca.pem", servername: "music.example" }', 502],
      ['{ verify: false }', 200],
    ] as const) {
      const gw = createGateway(write('gangway.yaml', tls), { logDestination: { write() {} }, processMetrics: false });
      const { proxy } = await gw.listen();
      const res = await fetchRaw(`http://127.0.0.1:${proxy.port}/tracks`, {
        headers: { accept: 'application/json' },
        timeoutMs: 10_000,
      });
      await gw.close();
      assert.equal(res.status, expected, tls);
      if (expected === 502) assert.match(String(res.headers['proxy-status']), /error=tls_certificate_error/);
    }
    assert.throws(() => write('missing.yaml', '{ ca: "absent.pem" }'), /upstreams\.music\.tls\.ca: cannot read/);
    assert.throws(() => write('half.yaml', '{ cert: "ca.pem" }'), /a client certificate needs both cert and key/);
  },
);

/** An HTTP upstream that records every request it receives, on the given loopback address. */
async function echoOn(host: string) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, encrypted: false });
      res.end(`hello from ${req.socket.localAddress}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { port, seen };
}

test('a listener on [::1]: an IPv6 client reaches the upstream, which sees it as ::1 in X-Forwarded-For and Forwarded', async () => {
  const up = await echoOn('127.0.0.1');
  const gw = await startGateway({ ...minimalConfig([`127.0.0.1:${up.port}`]), listen: '[::1]:0' });
  cleanups.push(() => gw.close());
  const port = new URL(gw.url).port;
  const res = await fetchRaw(`http://[::1]:${port}/tracks`, { timeoutMs: 10_000 });
  assert.equal(res.status, 200, 'the request through the IPv6 listener is answered');
  assert.equal(res.body.toString(), 'hello from 127.0.0.1', "the body is the upstream's");
  assert.equal(up.seen.length, 1, 'the upstream received the request');
  const h = up.seen[0]!.headers;
  assert.equal(h['x-forwarded-for'], '::1', 'X-Forwarded-For names the IPv6 client');
  assert.equal(
    h.forwarded,
    `for="[::1]";proto=http;host=[::1]:${port}`,
    'Forwarded quotes and brackets the IPv6 client (RFC 7239 §6)',
  );
  assert.equal(h.host, `[::1]:${port}`, 'the Host header, an IPv6 literal, is passed on');
  const deadline = Date.now() + 5000;
  while (!gw.logs.some((l) => l.msg === 'request') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(gw.logs.find((l) => l.msg === 'request')?.client, '::1', 'the access log names the IPv6 client');
});

test('an upstream host at an IPv6 address ([::1]:port) is reached', async () => {
  const up = await echoOn('::1');
  const gw = await startGateway(minimalConfig([`[::1]:${up.port}`]));
  cleanups.push(() => gw.close());
  const res = await fetchRaw(`${gw.url}/tracks`, { timeoutMs: 10_000 });
  assert.equal(res.status, 200, `answered 200 (Proxy-Status: ${res.headers['proxy-status']})`);
  assert.equal(res.body.toString(), 'hello from ::1', 'by the upstream listening on ::1');
  assert.equal(up.seen[0]?.headers['x-forwarded-for'], '127.0.0.1', 'the IPv4 client is named as such');
});

test('an https:// upstream is spoken to in HTTP/1.1, even though it offers h2', async () => {
  const { createSecureServer } = await import('node:http2');
  const versions: string[] = [];
  const server = createSecureServer(
    { key: readFileSync(join(TLS_DIR, 'localhost-key.pem')), cert: readFileSync(CERT), allowHTTP1: true },
    (req, res) => {
      versions.push(req.httpVersion);
      res.end('ok');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const gw = await startGateway(
    minimalConfig([`https://127.0.0.1:${port}`], {
      upstream: { tls: { verify: false }, healthCheck: { enabled: false } },
    }),
  );
  cleanups.push(() => gw.close());
  const res = await fetchRaw(`${gw.url}/x`);
  assert.equal(res.status, 200);
  assert.deepEqual(versions, ['1.1']);
});
