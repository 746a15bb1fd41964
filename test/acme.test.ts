/**
 * Automatic certificates, end to end against a real ACME server: Pebble (Let's Encrypt's test
 * CA) started here, validating against the gateway's own listeners through a DNS server of
 * the tests that points the names at loopback. A certificate is obtained by HTTP-01 and by
 * TLS-ALPN-01 and then presented to TLS clients that trust Pebble's root; a restart reuses the
 * stored certificate without an order; a short-lived certificate is renewed and swapped in
 * while an open connection carries on; a CA that is down at start is retried with backoff
 * while the gateway serves; a rejected nonce is retried; a bad `acme` section is refused with
 * file, line and field.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { Agent, request } from 'undici';
import { AcmeClient, AcmeProblem, renewalCertId } from '../src/acme/client.js';
import { AcmeCertificates } from '../src/acme/certificates.js';
import { certificateRequest, newKey, pem, selfSignedCertificate } from '../src/acme/csr.js';
import { renewalAtThird, renewalInWindow, retryDelay } from '../src/acme/schedule.js';
import { ChallengeAnswers } from '../src/acme/challenges.js';
import { caFolder, DirectoryStorage } from '../src/acme/storage.js';
import { validateConfig } from '../src/config/load.js';
import { createListener } from '../src/listen/listener.js';
import type { Runtime } from '../src/runtime.js';
import { ConfigError, createGateway, loadConfigFile, type Gateway } from '../src/index.js';
import { closedPort, httpUpstream, minimalConfig } from './support/harness.js';
import { dnsServer } from './support/dns-server.js';
import {
  eventually,
  handshake,
  needPebble,
  PEBBLE_KEY,
  PEBBLE_TRUST,
  pebbleTrust,
  servedCertificate,
  sleep,
  startPebble,
  TLS,
} from './support/pebble.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
cleanups.push(() => pebbleTrust.close());

/** Log lines collected (parsed) from a gateway's JSON log. */
function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    destination: {
      write(chunk: string) {
        for (const line of chunk.split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
    count: (msg: string, name?: string) =>
      lines.filter((l) => l.msg === msg && (name === undefined || l.name === name)).length,
  };
}

/** An upstream answering "hello PATH". */
async function helloUpstream(): Promise<string> {
  const up = await httpUpstream((req, res) => {
    req.resume();
    res.end(`hello ${req.url}`);
  });
  cleanups.push(() => up.close());
  return up.address;
}

/** A configuration file with a cleartext and an HTTPS listener asking ACME for `names`. */
function writeConfig(
  dir: string,
  s: { httpPort: number; tlsPort: number; directory: string; names: string[]; upstream: string },
  acmeExtra = '',
  redirect = true,
): string {
  writeFileSync(join(dir, 'pebble-ca.pem'), PEBBLE_TRUST);
  const file = join(dir, 'gangway.yaml');
  writeFileSync(
    file,
    `listen:
  - { address: "127.0.0.1:${s.httpPort}", redirectToHttps: ${redirect} }
  - { address: "127.0.0.1:${s.tlsPort}", tls: { acme: [${s.names.join(', ')}] } }
admin: "127.0.0.1:0"
acme:
  directory: "${s.directory}"
  email: ops@music.test
  storage: state/acme
  ca: pebble-ca.pem
  retryDelay: 300ms
  maxRetryDelay: 2s
${acmeExtra}
upstreams:
  music: { hosts: ["${s.upstream}"], healthCheck: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: music }
`,
  );
  return file;
}

async function startFrom(file: string) {
  const log = logSink();
  const gw: Gateway = createGateway(loadConfigFile(file), {
    configFile: file,
    logDestination: log.destination,
    processMetrics: false,
  });
  const addresses = await gw.listen();
  cleanups.push(() => gw.close());
  return { gw, log, ...addresses };
}

const dns = await dnsServer({
  'music.test': '127.0.0.1',
  'podcasts.test': '127.0.0.1',
  'video.test': '127.0.0.1',
  'renew.test': '127.0.0.1',
  'later.test': '127.0.0.1',
  'ari.test': '127.0.0.1',
  'blocked.test': '127.0.0.1',
});
cleanups.push(() => dns.close());

/** State the HTTP-01 test leaves for the restart test: its storage and the certificate served. */
let issued: { dir: string; file: string; serial: string; httpPort: number; tlsPort: number } | undefined;

test('obtains a certificate by HTTP-01, answered on the redirecting listener, and presents it; ' +
  'a reload orders a newly listed name and keeps the held one', { timeout: 90_000 }, async (t) => {
  if (!needPebble(t)) return;
  const httpPort = await closedPort();
  const tlsPort = await closedPort();
  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address });
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-'));
  const upstream = await helloUpstream();
  const s = { httpPort, tlsPort, directory: pebble.directory, names: ['music.test'], upstream };
  const file = writeConfig(dir, s, '  challenges: [http-01]');
  const { gw, log, admin } = await startFrom(file);
  const root = await pebble.root();

  const cert = await servedCertificate(tlsPort, 'music.test', root);
  assert.match(cert.subjectAltName ?? '', /DNS:music\.test/);
  assert.match(cert.issuer, /Pebble Intermediate/);
  const warnings = JSON.stringify(log.lines.filter((l) => l.level === 40));
  assert.equal(log.count('acme: challenge answered', 'music.test'), 1, `one challenge answered; ${warnings}`);
  assert.equal(
    log.lines.find((l) => l.msg === 'acme: challenge answered')?.challenge,
    'http-01',
    'only http-01 was allowed',
  );
  assert.equal(log.count('acme: certificate obtained', 'music.test'), 1, warnings);
  const took = (msg: string) => Number(log.lines.find((l) => l.msg === msg)?.time);
  t.diagnostic(
    `HTTP-01: order placed to certificate obtained in ` +
      `${took('acme: certificate obtained') - took('acme: order placed')} ms`,
  );
  // Scheduled once the CA was asked for its renewal window, a moment after the certificate is presented.
  await eventually('the renewal scheduled', 5000, () =>
    log.count('acme: renewal scheduled', 'music.test') > 0 ? true : undefined,
  );
  assert.equal(log.count('acme: renewal scheduled', 'music.test'), 1, 'the renewal is scheduled once');

  // Requests through the new certificate reach the service; the cleartext listener still redirects.
  const viaTls = await request(`https://music.test:${tlsPort}/songs`, {
    dispatcher: new Agent({
      connect: { ca: root, lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) },
    }),
  });
  assert.equal(viaTls.statusCode, 200);
  assert.equal(await viaTls.body.text(), 'hello /songs');
  const plain = await request(`http://127.0.0.1:${httpPort}/songs`, { headers: { host: 'music.test' } });
  await plain.body.dump();
  assert.equal(plain.statusCode, 308);

  // Kept on disk, 0600, in a folder per CA.
  const folder = join(dir, 'state', 'acme', caFolder(pebble.directory));
  for (const f of ['account.key', 'certificates/music.test/cert.pem', 'certificates/music.test/key.pem'])
    assert.equal(statSync(join(folder, f)).mode & 0o777, 0o600, `${f} is readable by its owner only`);
  const stored = new X509Certificate(readFileSync(join(folder, 'certificates/music.test/cert.pem')));
  assert.equal(stored.serialNumber, cert.serialNumber, 'the stored certificate is the one served');

  // In /api/status and the metrics like a file's certificate.
  const status = (await (await request(`http://127.0.0.1:${admin!.port}/api/status`)).body.json()) as {
    certificates: Array<{ listener: string; names: string[]; days_left: number }>;
  };
  assert.deepEqual(
    status.certificates.map((c) => [c.listener, c.names]),
    [[`127.0.0.1:${tlsPort}`, ['music.test']]],
  );
  const metrics = await gw.metrics.registry.metrics();
  assert.match(metrics, /gangway_acme_certificates_total\{name="music\.test",outcome="obtained"\} 1/);
  assert.match(
    metrics,
    new RegExp(
      `gangway_certificate_expiry_seconds\\{listener="127\\.0\\.0\\.1:${tlsPort}",name="music\\.test"\\} \\d+`,
    ),
  );

  // A reload listing a second name orders it and keeps the first.
  writeConfig(dir, { ...s, names: ['music.test', 'podcasts.test'] }, '  challenges: [http-01]');
  await gw.reload();
  const second = await servedCertificate(tlsPort, 'podcasts.test', root);
  assert.match(second.subjectAltName ?? '', /DNS:podcasts\.test/);
  const first = await servedCertificate(tlsPort, 'music.test', root);
  assert.equal(first.serialNumber, cert.serialNumber, 'the held certificate is kept');
  assert.equal(log.count('acme: order placed', 'music.test'), 1, 'no second order for a held name');
  assert.equal(log.count('acme: order placed', 'podcasts.test'), 1);

  // A client naming no known name gets the listener's first certificate.
  const unnamed = await handshake(tlsPort, 'other.test', { ca: root });
  assert.ok(!('error' in unnamed));
  unnamed.socket.destroy();
  assert.equal(unnamed.cert.serialNumber, cert.serialNumber);

  await gw.close();
  await pebble.stop();
  issued = { dir, file, serial: cert.serialNumber, httpPort, tlsPort };
});

test('a restart presents the stored certificate without placing an order, even with the CA down', {
  timeout: 60_000,
}, async (t) => {
  if (!needPebble(t)) return;
  assert.ok(issued, 'the HTTP-01 test left a stored certificate');
  // The CA of the first run is gone: nothing answers at its directory URL now.
  const { gw, log } = await startFrom(issued.file);
  const seen = await eventually('the stored certificate', 10_000, async () => {
    const h = await handshake(issued!.tlsPort, 'music.test');
    if ('error' in h) return undefined;
    h.socket.destroy();
    return h.cert;
  });
  assert.equal(seen.serialNumber, issued.serial);
  await eventually('the reuse logged', 5000, () =>
    log.count('acme: stored certificate reused') === 2 ? true : undefined,
  );
  assert.equal(log.count('acme: order placed'), 0, 'no order while stored certificates are good');
  assert.match(
    await gw.metrics.registry.metrics(),
    /gangway_acme_certificates_total\{name="music\.test",outcome="reused"\} 1/,
  );
  await gw.close();
});

test('obtains a certificate by TLS-ALPN-01 on the HTTPS listener alone; acme-tls/1 is answered ' +
  'only while a challenge is pending, and a name without a certificate fails the handshake', {
  timeout: 90_000,
}, async (t) => {
  if (!needPebble(t)) return;
  const httpPort = await closedPort(); // nothing listens there: HTTP-01 could not succeed
  const tlsPort = await closedPort();
  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address });
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-'));
  const upstream = await helloUpstream();
  writeFileSync(join(dir, 'pebble-ca.pem'), PEBBLE_TRUST);
  const file = join(dir, 'gangway.yaml');
  writeFileSync(
    file,
    `listen: { address: "127.0.0.1:${tlsPort}", tls: { acme: [video.test, nowhere.test] } }
admin: false
acme: { directory: "${pebble.directory}", storage: acme, ca: pebble-ca.pem, challenges: [tls-alpn-01], retryDelay: 5s }
upstreams: { music: { hosts: ["${upstream}"], healthCheck: { enabled: false } } }
routes: [{ match: { path: "/" }, upstream: music }]
`,
  );
  const { log } = await startFrom(file);
  const root = await pebble.root();
  const cert = await servedCertificate(tlsPort, 'video.test', root);
  assert.match(cert.subjectAltName ?? '', /DNS:video\.test/);
  assert.equal(log.lines.find((l) => l.msg === 'acme: challenge answered')?.challenge, 'tls-alpn-01');
  const took = (msg: string) => Number(log.lines.find((l) => l.msg === msg && l.name === 'video.test')?.time);
  t.diagnostic(
    `TLS-ALPN-01: order placed to certificate obtained in ` +
      `${took('acme: certificate obtained') - took('acme: order placed')} ms`,
  );

  // nowhere.test does not resolve for the CA: no certificate, and its handshakes fail
  // rather than presenting another name's certificate.
  await eventually('the failure for nowhere.test', 30_000, () =>
    log.count('acme: could not obtain a certificate; retrying later', 'nowhere.test') > 0 ? true : undefined,
  );
  const failure = log.lines.find((l) => l.name === 'nowhere.test' && l.level === 40);
  assert.ok(failure, 'the failure is a warning');
  assert.match(String(failure.detail), /nowhere\.test/, "the CA's problem detail is in the log");
  assert.ok(typeof failure.retryAt === 'string');
  const none = await handshake(tlsPort, 'nowhere.test');
  assert.ok('error' in none, 'a listed name without its certificate fails the handshake');
  assert.doesNotMatch(none.error, /certificate/, 'no certificate was presented');

  // A client offering acme-tls/1 with no challenge pending gets no certificate at all.
  const probe = await handshake(tlsPort, 'video.test', { alpn: ['acme-tls/1'] });
  assert.ok('error' in probe, 'no challenge pending: the acme-tls/1 handshake fails');
  // Ordinary clients still speak h2 and http/1.1 by ALPN.
  const h2 = await handshake(tlsPort, 'video.test', { ca: root, alpn: ['h2', 'http/1.1'] });
  assert.ok(!('error' in h2));
  assert.equal(h2.socket.alpnProtocol, 'h2');
  h2.socket.destroy();
});

test('renews a certificate when a third of its lifetime remains and presents the new one to new ' +
  'handshakes while an open connection carries on', { timeout: 90_000 }, async (t) => {
  if (!needPebble(t)) return;
  const httpPort = await closedPort();
  const tlsPort = await closedPort();
  // 15-second certificates: renewed 10 s after they begin.
  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address, validitySeconds: 15 });
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-'));
  const upstream = await helloUpstream();
  const file = writeConfig(dir, { httpPort, tlsPort, directory: pebble.directory, names: ['renew.test'], upstream });
  const { gw, log } = await startFrom(file);
  const root = await pebble.root();
  const first = await servedCertificate(tlsPort, 'renew.test', root);
  const scheduled = log.lines.find((l) => l.msg === 'acme: renewal scheduled');
  const lifetime = Date.parse(first.validTo) - Date.parse(first.validFrom);
  const expected = Date.parse(first.validTo) - lifetime / 3;
  assert.ok(
    Math.abs(Date.parse(String(scheduled?.renewAt)) - expected) < 1500,
    `renewal at a third of the lifetime left (${String(scheduled?.renewAt)})`,
  );

  // A connection opened on the first certificate, asking every half second across the swap.
  const open = await handshake(tlsPort, 'renew.test', { ca: root });
  assert.ok(!('error' in open));
  assert.equal(open.cert.serialNumber, first.serialNumber);
  const ask = (path: string) =>
    new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (d: Buffer) => {
        text += d.toString();
        if (text.includes('\r\n\r\n') && text.endsWith(`hello ${path}`)) {
          open.socket.off('data', onData);
          open.socket.off('close', onClose);
          resolve(text);
        }
      };
      const onClose = () => reject(new Error(`the open connection closed before answering ${path}`));
      open.socket.on('data', onData);
      open.socket.once('close', onClose);
      open.socket.write(`GET ${path} HTTP/1.1\r\nhost: renew.test\r\n\r\n`);
    });
  let asked = 0;
  const renewed = await eventually('a renewed certificate', 30_000, async () => {
    assert.match(await ask(`/during/${++asked}`), /^HTTP\/1\.1 200/);
    const c = await servedCertificate(tlsPort, 'renew.test', root);
    if (c.serialNumber === first.serialNumber) await sleep(400);
    return c.serialNumber !== first.serialNumber ? c : undefined;
  });
  assert.ok(Date.parse(renewed.validTo) > Date.parse(first.validTo), 'the new one lasts longer');
  assert.ok(log.count('acme: certificate renewed', 'renew.test') >= 1);
  assert.match(await ask('/after'), /^HTTP\/1\.1 200/, 'the open connection carries on after the swap');
  assert.ok(asked > 3, `the open connection was used across the wait (${asked} requests)`);
  open.socket.destroy();
  const metrics = await gw.metrics.registry.metrics();
  assert.match(metrics, /gangway_acme_certificates_total\{name="renew\.test",outcome="renewed"\} [1-9]/);
  // The expiry gauge follows the certificate in use (renewed at least once, maybe again since).
  const expiry = Number(/gangway_certificate_expiry_seconds\{[^}]*name="renew\.test"\} (-?\d+)/.exec(metrics)?.[1]);
  assert.ok(
    Date.now() + expiry * 1000 >= Date.parse(renewed.validTo) - 2000,
    `the expiry metric shows the renewed certificate (${expiry} s left)`,
  );
});

test('with the CA down at start the gateway serves meanwhile, retries with backoff, and obtains ' +
  'the certificate once the CA is back, without a restart', { timeout: 90_000 }, async (t) => {
  if (!needPebble(t)) return;
  const httpPort = await closedPort();
  const tlsPort = await closedPort();
  const pebblePort = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-'));
  const upstream = await helloUpstream();
  const directory = `https://127.0.0.1:${pebblePort}/dir`;
  const file = writeConfig(dir, { httpPort, tlsPort, directory, names: ['later.test'], upstream }, '', false);
  const { gw, log } = await startFrom(file);

  const failed = 'acme: could not obtain a certificate; retrying later';
  await eventually('three failed attempts', 20_000, () => (log.count(failed) >= 3 ? true : undefined));
  const failures = log.lines.filter((l) => l.msg === failed);
  assert.equal(failures[0]?.problem, 'unreachable');
  assert.equal(failures[0]?.level, 40, 'a warning');
  // Backoff: each wait is longer than half the one before's ceiling (300 ms doubling, 2 s at most).
  const waits = failures.map((l) => Date.parse(String(l.retryAt)) - Number(l.time));
  assert.ok(
    waits.every((w) => w >= 150 && w <= 2100),
    `waits within bounds: ${waits.join(', ')}`,
  );
  // Serving meanwhile, on the cleartext listener.
  const meanwhile = await request(`http://127.0.0.1:${httpPort}/now`);
  assert.equal(await meanwhile.body.text(), 'hello /now');

  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address, port: pebblePort });
  const root = await pebble.root();
  const cert = await servedCertificate(tlsPort, 'later.test', root, 40_000);
  assert.match(cert.subjectAltName ?? '', /DNS:later\.test/);
  assert.equal(log.count('acme: certificate obtained', 'later.test'), 1);
  assert.equal(gw.config.listen.length, 2, 'the same gateway, never restarted');
});

test("renews when the CA's renewal information (ARI) says, naming the certificate by its RFC 9773 " +
  'id, where the CA offers it', { timeout: 90_000 }, async (t) => {
  if (!needPebble(t)) return;
  const httpPort = await closedPort();
  const tlsPort = await closedPort();
  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address });
  // Pebble 2.4 has no ARI: a directory of our own adds renewalInfo, pointing at a window we choose.
  const asked: string[] = [];
  let window = { start: 0, end: 0 };
  const ari = createHttpsServer({ cert: PEBBLE_TRUST, key: readFileSync(PEBBLE_KEY, 'utf8') }, async (req, res) => {
    if (req.url === '/dir') {
      const upstream = await request(pebble.directory, { dispatcher: pebbleTrust });
      const directory = (await upstream.body.json()) as Record<string, unknown>;
      directory.renewalInfo = `https://127.0.0.1:${(ari.address() as AddressInfo).port}/renewal-info`;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(directory));
      return;
    }
    asked.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.setHeader('retry-after', '3600');
    res.end(
      JSON.stringify({
        suggestedWindow: { start: new Date(window.start).toISOString(), end: new Date(window.end).toISOString() },
      }),
    );
  });
  await new Promise<void>((r) => ari.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => ari.close(r)));
  const directory = `https://127.0.0.1:${(ari.address() as AddressInfo).port}/dir`;
  // The first answer asks for a renewal 2-3 s from now (years before a third of the lifetime).
  window = { start: Date.now() + 4000, end: Date.now() + 5000 };
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-'));
  const upstream = await helloUpstream();
  const file = writeConfig(dir, { httpPort, tlsPort, directory, names: ['ari.test'], upstream });
  const { log } = await startFrom(file);
  const root = await pebble.root();
  const first = await servedCertificate(tlsPort, 'ari.test', root);
  const scheduled = await eventually('the renewal scheduled by ARI', 10_000, () =>
    log.lines.find((l) => l.msg === 'acme: renewal scheduled'),
  );
  assert.match(String(scheduled.by), /ARI/);
  const at = Date.parse(String(scheduled.renewAt));
  assert.ok(at >= window.start && at <= window.end, 'a moment inside the suggested window');

  // The id asked for: base64url(AKI keyIdentifier) "." base64url(serial), read here by OpenSSL.
  const text = execFileSync('openssl', ['x509', '-noout', '-serial', '-ext', 'authorityKeyIdentifier'], {
    input: first.toString(),
  }).toString();
  const serialHex = /serial=([0-9A-F]+)/.exec(text)![1]!;
  let serial = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  const aki = Buffer.from(
    /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text)![1]!.replace(/:/g, ''),
    'hex',
  );
  assert.equal(asked[0], `/renewal-info/${aki.toString('base64url')}.${serial.toString('base64url')}`);

  // Later answers put the next renewal far away, so the renewed certificate stays.
  window = { start: Date.now() + 86_400_000, end: Date.now() + 2 * 86_400_000 };
  const renewed = await eventually('the certificate renewed by ARI', 30_000, async () => {
    const c = await servedCertificate(tlsPort, 'ari.test', root);
    return c.serialNumber !== first.serialNumber ? c : undefined;
  });
  assert.match(renewed.subjectAltName ?? '', /DNS:ari\.test/);
  assert.equal(log.count('acme: certificate renewed', 'ari.test'), 1);
  const refused = log.lines.filter((l) => l.msg === 'acme: renewal failed; retrying later');
  t.diagnostic(
    `renewal attempts refused before success: ${refused.map((l) => String(l.detail)).join(' | ') || 'none'}`,
  );
});

test('the ACME client retries a request whose nonce the CA rejects, and turns refusals into ' +
  "errors carrying the CA's problem", { timeout: 60_000 }, async (t) => {
  if (!needPebble(t)) return;
  const pebble = await startPebble(cleanups, {
    httpPort: await closedPort(),
    tlsPort: await closedPort(),
    dns: dns.address,
    blocklist: ['blocked.test'],
    env: { PEBBLE_WFE_NONCEREJECT: '0' },
  });
  const client = new AcmeClient(pebble.directory, newKey(), { ca: PEBBLE_TRUST, contact: ['mailto:ops@music.test'] });
  cleanups.push(() => client.close());
  const account = await client.account();
  assert.match(account, /^https:\/\/127\.0\.0\.1:/);
  // A nonce the CA never issued: refused with badNonce, then retried with the fresh one it sent.
  (client as unknown as { nonce: string }).nonce = 'bm90LWEtcmVhbC1ub25jZQ';
  const { order } = await client.newOrder(['music.test']);
  assert.equal(order.status, 'pending', 'the order went through on the second try');

  await assert.rejects(client.newOrder(['blocked.test']), (err: unknown) => {
    assert.ok(err instanceof AcmeProblem);
    assert.equal(err.type, 'rejectedIdentifier');
    assert.match(err.message, /blocked\.test/);
    return true;
  });
  // An unreachable CA is a problem of its own kind, not a crash.
  const nowhere = new AcmeClient(`https://127.0.0.1:${await closedPort()}/dir`, newKey(), { ca: PEBBLE_TRUST });
  await assert.rejects(nowhere.account(), (err: unknown) => err instanceof AcmeProblem && err.type === 'unreachable');
  await nowhere.close();
});

test(
  'the TLS-ALPN-01 answer: shown only to acme-tls/1 clients, under TLS 1.3 and 1.2 alike, a ' +
    'certificate for the name with the critical acmeIdentifier holding SHA-256 of the key authorization',
  async () => {
    const challenges = new ChallengeAnswers();
    let held: SecureContext | null = null;
    const listener = createListener(
      validateConfig(minimalConfig(['127.0.0.1:1'])),
      () => ({ limits: { maxUriLength: 8192 } }) as unknown as Runtime,
      () => assert.fail('no status'),
      {
        tls: { cert: undefined, key: undefined },
        challenges,
        acme: { contextFor: (name) => (name === 'music.test' ? held : undefined) },
      },
    );
    await new Promise<void>((r) => listener.server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => listener.server.close(() => r(undefined))));
    const port = (listener.server.address() as AddressInfo).port;
    const keyAuthorization = 'token-abc.thumbprint-xyz';
    const withdraw = challenges.offerTlsAlpn('music.test', keyAuthorization);
    const digest = createHash('sha256').update(keyAuthorization).digest('hex').toUpperCase();
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const seen = await new Promise<{ cert: X509Certificate; alpn: string | false | null }>((resolve, reject) => {
        const socket = tlsConnect(
          {
            host: '127.0.0.1',
            port,
            servername: 'music.test',
            ALPNProtocols: ['acme-tls/1'],
            maxVersion,
            rejectUnauthorized: false,
          },
          () => {
            resolve({ cert: socket.getPeerX509Certificate()!, alpn: socket.alpnProtocol });
            socket.destroy();
          },
        );
        socket.once('error', reject);
      });
      assert.equal(seen.alpn, 'acme-tls/1', `${maxVersion}: acme-tls/1 negotiated`);
      assert.equal(seen.cert.subjectAltName, 'DNS:music.test');
      // OpenSSL's own reading: the extension, critical, its value an OCTET STRING (04 20) of the digest.
      const dump = execFileSync('openssl', ['asn1parse'], { input: seen.cert.toString() }).toString();
      assert.match(
        dump,
        new RegExp(
          'OBJECT +:1\\.3\\.6\\.1\\.5\\.5\\.7\\.1\\.31\\s*\\n.*BOOLEAN +:255\\s*\\n' +
            `.*OCTET STRING +\\[HEX DUMP\\]:0420${digest}`,
        ),
        `${maxVersion}: a critical acmeIdentifier holding the digest`,
      );
    }
    // Once the name has its certificate, ordinary clients get it; acme-tls/1 gets the proof (TLS 1.3).
    const real = readFileSync(join(TLS, 'localhost-cert.pem'), 'utf8');
    held = createSecureContext({ cert: real, key: readFileSync(join(TLS, 'localhost-key.pem'), 'utf8') });
    const ordinary = await handshake(port, 'music.test', { alpn: ['h2', 'http/1.1'] });
    assert.ok(!('error' in ordinary));
    ordinary.socket.destroy();
    assert.equal(ordinary.cert.fingerprint256, new X509Certificate(real).fingerprint256);
    const renewing = await handshake(port, 'music.test', { alpn: ['acme-tls/1'] });
    assert.ok(!('error' in renewing));
    renewing.socket.destroy();
    assert.notEqual(renewing.cert.fingerprint256, ordinary.cert.fingerprint256, 'the proof, not the certificate');
    withdraw();
    const late = await handshake(port, 'music.test', { alpn: ['acme-tls/1'] });
    assert.ok('error' in late, 'no challenge pending any more: the acme-tls/1 handshake fails');
  },
);

test("the issuance lock: one holder at a time; a dead process's lock on this machine is taken over", async () => {
  const root = mkdtempSync(join(tmpdir(), 'gangway-lock-'));
  const storage = new DirectoryStorage(root, 'https://ca.example/dir');
  const release = await storage.lock('music.example.com');
  assert.ok(release, 'the first taker holds it');
  assert.equal(await storage.lock('music.example.com'), undefined, 'a second taker waits');
  assert.ok(await storage.lock('podcasts.example.com'), 'other names are not held up');
  await release();
  const again = await storage.lock('music.example.com');
  assert.ok(again, 'released, it can be taken again');
  await again();
  const lockFile = join(storage.location, 'certificates', 'music.example.com', 'lock');
  // A process that no longer exists (the child below has exited) left its lock behind.
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => gone.once('exit', r));
  writeFileSync(lockFile, `${hostname()} ${gone.pid} ${new Date().toISOString()}\n`);
  assert.ok(await storage.lock('music.example.com'), "a dead process's lock is taken over");
  // Another machine's recent lock is respected (its process cannot be checked from here).
  writeFileSync(lockFile, `another-host 1 ${new Date().toISOString()}\n`);
  assert.equal(await storage.lock('music.example.com'), undefined);
  // A holder whose lock was taken over meanwhile (it went stale) leaves the new holder's lock alone.
  rmSync(lockFile);
  const overtaken = await storage.lock('music.example.com');
  assert.ok(overtaken);
  writeFileSync(lockFile, `another-host 1 ${new Date().toISOString()}\n`);
  await overtaken();
  assert.match(readFileSync(lockFile, 'utf8'), /^another-host 1 /);
});

test('keys are written 0600 even over a temporary file a crash left with a looser mode', async () => {
  const storage = new DirectoryStorage(mkdtempSync(join(tmpdir(), 'gangway-acme-mode-')), 'https://ca.example/dir');
  const folder = join(storage.location, 'certificates', 'music.example.com');
  await storage.writeCertificate('music.example.com', { cert: 'old chain', key: 'old key' });
  writeFileSync(join(folder, `.key.pem.${process.pid}.tmp`), 'left by a crash', { mode: 0o644 });
  await storage.writeCertificate('music.example.com', { cert: 'chain', key: 'key' });
  assert.equal(statSync(join(folder, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(readFileSync(join(folder, 'key.pem'), 'utf8'), 'key');
});

/**
 * A storage directory for a CA that is down (nothing listens at its directory URL), holding
 * in `folder` a self-signed certificate for `name` and its key.
 */
async function storageWith(folder: string, name: string) {
  const root = mkdtempSync(join(tmpdir(), 'gangway-acme-stored-'));
  const directory = `https://127.0.0.1:${await closedPort()}/dir`;
  const storage = new DirectoryStorage(root, directory);
  const key = newKey();
  await storage.writeCertificate(folder, {
    cert: pem('CERTIFICATE', selfSignedCertificate([name], key, 30)),
    key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
  });
  return { root, directory, storage };
}

test('a stored certificate that does not name its name is not served: the name waits for an order', async () => {
  // A good certificate and its key, but for another name, in music.example.com's folder.
  const { directory, storage } = await storageWith('music.example.com', 'podcasts.example.com');
  const warnings: string[] = [];
  const logger = {
    info() {},
    debug() {},
    error() {},
    warn(fields: { err?: string }, msg: string) {
      warnings.push(`${msg}: ${fields.err ?? ''}`);
    },
  } as unknown as ConstructorParameters<typeof AcmeCertificates>[3];
  const outcomes: string[] = [];
  const acme = new AcmeCertificates(
    { directory, contact: [], ca: undefined, challenges: ['http-01'], retryDelay: 60_000, maxRetryDelay: 60_000 },
    storage,
    new ChallengeAnswers(),
    logger,
    { installed() {}, outcome: (_name, outcome) => outcomes.push(outcome) },
  );
  acme.manage(['music.example.com']);
  await eventually('the order to fail (the CA is down)', 10_000, () => (outcomes.length > 0 ? true : undefined));
  await acme.close();
  assert.deepEqual(outcomes, ['failed'], 'not reused');
  assert.equal(acme.contextFor('music.example.com'), null, 'nothing presented for the name');
  assert.ok(
    warnings.some((w) => /^acme: the stored certificate is unusable.*does not name music\.example\.com/.test(w)),
    warnings.join('\n'),
  );
});

test('a name no longer listed after a reload is not presented to clients naming it, nor as the default', async () => {
  // The CA is down: names are served from storage or not at all.
  const { directory, root } = await storageWith('old.example.com', 'old.example.com');
  const config = (name: string) =>
    ({
      ...minimalConfig(['127.0.0.1:1']),
      listen: [{ address: '127.0.0.1:0', tls: { acme: [name] } }],
      admin: false,
      acme: { directory, storage: root },
      log: { level: 'fatal', access: false },
    }) as never;
  const gw = createGateway(config('old.example.com'));
  cleanups.push(() => gw.close());
  const { proxy } = await gw.listen();
  const seen = await eventually('the stored certificate', 10_000, async () => {
    const h = await handshake(proxy.port, 'old.example.com');
    if ('error' in h) return undefined;
    h.socket.destroy();
    return h.cert;
  });
  assert.ok(seen.checkHost('old.example.com'));
  await gw.reload(config('new.example.com'));
  for (const name of ['old.example.com', 'unlisted.example.com']) {
    const h = await handshake(proxy.port, name);
    if (!('error' in h)) h.socket.destroy();
    assert.ok('error' in h, `${name}: no certificate shown (${'error' in h ? h.error : h.cert.subject})`);
  }
});

test("the README's three lines for HTTPS with ACME are a valid configuration, Let's Encrypt by default", () => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### HTTPS with automatic certificates (ACME)'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  assert.equal(yaml.trim().split('\n').length, 3, 'three lines');
  const dir = mkdtempSync(join(tmpdir(), 'gangway-readme-'));
  const file = join(dir, 'gangway.yaml');
  writeFileSync(file, `${yaml}upstreams: { music: { hosts: ["127.0.0.1:7001"] } }\nroutes: [{ upstream: music }]\n`);
  const config = loadConfigFile(file);
  assert.deepEqual(config.listen[0]?.tls?.acme, ['music.example.com', 'www.music.example.com']);
  assert.equal(config.listen[1]?.redirectToHttps, true);
  assert.equal(config.acme.directory, 'https://acme-v02.api.letsencrypt.org/directory');
  assert.equal(config.acme.storage, join(dir, 'acme'), 'storage beside the configuration file');
});

test('a bad acme configuration is refused with file, line and field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-'));
  writeFileSync(join(dir, 'a-file'), 'not a directory');
  const refusal = (listen: string, acme = ''): string => {
    const file = join(dir, 'gangway.yaml');
    writeFileSync(
      file,
      `listen:\n  ${listen}\n${acme}upstreams:\n  music: { hosts: ["127.0.0.1:1"] }\n` +
        'routes:\n  - { match: { path: "/" }, upstream: music }\n',
    );
    try {
      loadConfigFile(file);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    return 'accepted';
  };
  const acmeListener = '{ address: ":8443", tls: { acme: [music.example.com] } }';
  assert.match(
    refusal('{ address: ":8443", tls: { acme: ["*.music.example.com"] } }'),
    /gangway\.yaml:2:\d+ listen\.tls\.acme\[0\]: "\*\.music\.example\.com": a wildcard certificate needs the DNS-01/,
  );
  assert.match(
    refusal('{ address: ":8443", tls: { acme: [localhost] } }'),
    /listen\.tls\.acme\[0\]: "localhost" is not a DNS name a CA issues for/,
  );
  assert.match(refusal('{ address: ":8443", tls: { cert: c.pem } }'), /listen\.tls: cert and key go together/);
  assert.match(refusal('{ address: ":8443", tls: { hsts: 1d } }'), /listen\.tls: a certificate is needed/);
  assert.match(refusal(acmeListener, 'acme:\n  directory: not-a-url\n'), /gangway\.yaml:4:\d+ acme\.directory: /);
  assert.match(refusal(acmeListener, 'acme:\n  email: nobody\n'), /gangway\.yaml:4:\d+ acme\.email: an email address/);
  assert.match(refusal(acmeListener, 'acme:\n  challenges: [dns-01]\n'), /gangway\.yaml:4:\d+ acme\.challenges\[0\]: /);
  assert.match(
    refusal(acmeListener, 'acme:\n  storage: a-file/acme\n'),
    /gangway\.yaml:4:\d+ acme\.storage: ".*a-file" is a file/,
  );
  assert.match(
    refusal(acmeListener, 'acme:\n  ca: missing.pem\n'),
    /gangway\.yaml:4:\d+ acme\.ca: cannot read ".*missing\.pem"/,
  );
  assert.match(
    refusal(acmeListener, 'acme:\n  retryDelay: soon\n'),
    /gangway\.yaml:4:\d+ acme\.retryDelay: "soon" is not a duration/,
  );
  assert.match(
    refusal(acmeListener, 'acme:\n  lockTimeout: 100ms\n'),
    /gangway\.yaml:4:\d+ acme\.lockTimeout: at least 1s/,
  );
  // Several workers share the challenges and the certificates (test/acme-fleet.test.ts).
  assert.equal(refusal(acmeListener, 'workers: 2\n'), 'accepted');
  // And a good one: three lines for HTTPS with ACME.
  assert.equal(refusal(acmeListener), 'accepted');
});

test(
  'the DER pieces: a renewal-information id as RFC 9773 §4.1 makes it, and a CSR that ' +
    'OpenSSL verifies with the names as subjectAltName',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'gangway-der-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }).toString();
    // The RFC's example: AKI keyIdentifier 69:88:5B:…:D4 and serial 0x87654321 (DER 00 87 65 43 21).
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=Example CA',
      '-addext',
      'subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4',
    );
    openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-subj',
      '/CN=example.com',
      '-out',
      'leaf.csr',
    );
    writeFileSync(join(dir, 'leaf.ext'), 'authorityKeyIdentifier=keyid:always\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '0x87654321',
      '-days',
      '1',
      '-extfile',
      'leaf.ext',
      '-out',
      'leaf.pem',
    );
    assert.equal(renewalCertId(readFileSync(join(dir, 'leaf.pem'), 'utf8')), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');

    const csr = pem(
      'CERTIFICATE REQUEST',
      certificateRequest(['music.example.com', 'www.music.example.com'], newKey()),
    );
    const text = execFileSync('openssl', ['req', '-noout', '-verify', '-text'], {
      input: csr,
      stdio: 'pipe',
    }).toString();
    assert.match(text, /DNS:music\.example\.com, DNS:www\.music\.example\.com/);
    assert.match(text, /CN ?= ?music\.example\.com/);
    assert.match(text, /ecdsa-with-SHA256/);
  },
);

test('renewal time: a third of the lifetime left, or a point in the CA window; backoff doubles with jitter', () => {
  const start = new Date('2026-01-01T00:00:00Z');
  const end = new Date('2026-04-01T00:00:00Z'); // 90 days
  assert.equal(renewalAtThird(start, end).toISOString(), '2026-03-02T00:00:00.000Z');
  const a = new Date('2026-03-01T00:00:00Z');
  const b = new Date('2026-03-03T00:00:00Z');
  assert.equal(renewalInWindow(a, b, 0).getTime(), a.getTime());
  assert.equal(renewalInWindow(a, b, 0.5).toISOString(), '2026-03-02T00:00:00.000Z');
  for (let failures = 1; failures <= 40; failures++) {
    const ceiling = Math.min(60_000, 1000 * 2 ** (failures - 1));
    for (const r of [0, 0.5, 0.999]) {
      const wait = retryDelay(failures, 1000, 60_000, r);
      assert.ok(
        wait >= ceiling / 2 && wait <= ceiling,
        `failure ${failures}: ${wait} within [${ceiling / 2}, ${ceiling}]`,
      );
    }
  }
});
