/**
 * The gateway's HTTP/2 as nghttp2's own tools see it (Debian `nghttp2-client`): `nghttp -nv`
 * negotiates h2 by ALPN (and h2c with prior knowledge) and shows the SETTINGS the gateway
 * sends, and short, bounded `h2load` runs — many streams on few connections, GETs and uploads
 * — finish with every request answered and none failed or errored. Without the tools these
 * tests skip, except under CI=true, where that is a failure.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, loadConfigFile, type Gateway } from '../src/index.js';
import { httpUpstream } from './support/harness.js';

const TLS = join(import.meta.dirname, 'support', 'tls');

function toolsUnavailable(): string | undefined {
  const missing = ['nghttp', 'h2load'].filter(
    (t) => !['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, t))),
  );
  if (missing.length === 0) return undefined;
  const why = `${missing.join(' and ')} not installed (apt-get install nghttp2-client)`;
  if (process.env.CI === 'true') throw new Error(`${why}: required under CI`);
  return why;
}

const skip = toolsUnavailable();
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let gateway: Gateway;
let httpsUrl = '';
let h2cUrl = '';
let dir = '';
/** Bytes of request bodies the upstream received. */
let uploaded = 0;

before(async () => {
  if (skip) return;
  const up = await httpUpstream((req, res) => {
    req.on('data', (c: Buffer) => {
      uploaded += c.length;
    });
    req.on('end', () => res.end(`hello ${req.url}`));
  });
  cleanups.push(() => up.close());
  dir = mkdtempSync(join(tmpdir(), 'gangway-h2-tools-'));
  copyFileSync(join(TLS, 'localhost-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(TLS, 'localhost-key.pem'), join(dir, 'key.pem'));
  const file = join(dir, 'gangway.yaml');
  // The adaptive concurrency limit is off: these runs check the protocol, and on a busy test
  // machine latency noise would make it shed (admission has tests of its own).
  writeFileSync(
    file,
    `listen:
  - { address: "127.0.0.1:0", tls: { cert: cert.pem, key: key.pem } }
  - { address: "127.0.0.1:0", h2c: true }
admin: false
upstreams:
  music: { hosts: ["${up.address}"], healthCheck: { enabled: false }, concurrency: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: music }
`,
  );
  gateway = createGateway(loadConfigFile(file), { logDestination: { write() {} }, processMetrics: false });
  const { listeners } = await gateway.listen();
  cleanups.push(() => gateway.close());
  httpsUrl = `https://127.0.0.1:${listeners[0]!.port}`;
  h2cUrl = `http://127.0.0.1:${listeners[1]!.port}`;
});

/** Runs a tool (bounded to 30 s) and resolves with everything it printed, whatever its exit. */
function run(tool: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve(`${stdout}${stderr}${err ? `\n[exit: ${err.message}]` : ''}`),
    );
  });
}

/** h2load's summary line, as numbers. */
function requestsLine(out: string): Record<string, number> {
  const counts = ['total', 'started', 'done', 'succeeded', 'failed', 'errored', 'timeout'];
  const line = new RegExp(`requests: ${counts.map((c) => `(\\d+) ${c}`).join(', ')}`).exec(out);
  assert.ok(line, `h2load printed its summary:\n${out}`);
  const [, total, started, done, succeeded, failed, errored, timeout] = line.map(Number);
  return {
    total: total!,
    started: started!,
    done: done!,
    succeeded: succeeded!,
    failed: failed!,
    errored: errored!,
    timeout: timeout!,
  };
}

test('nghttp -nv negotiates h2 by ALPN and shows the SETTINGS the gateway sends', { skip }, async () => {
  const out = await run('nghttp', ['-nv', `${httpsUrl}/hello`]);
  assert.match(out, /The negotiated protocol: h2\n/);
  assert.match(out, /recv SETTINGS frame <length=18, flags=0x00, stream_id=0>/);
  assert.match(out, /\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):100\]/);
  assert.match(out, /\[SETTINGS_MAX_HEADER_LIST_SIZE\(0x06\):16384\]/);
  assert.match(out, /\[SETTINGS_ENABLE_CONNECT_PROTOCOL\(0x08\):1\]/);
  assert.match(out, /recv \(stream_id=\d+\) :status: 200/);
  assert.match(out, /recv \(stream_id=\d+\) via: 2\.0 gangway/);
  assert.doesNotMatch(out, /recv GOAWAY/, 'the gateway did not end the connection');
});

test('nghttp speaks h2c with prior knowledge to a cleartext HTTP/2 listener', { skip }, async () => {
  const out = await run('nghttp', ['-nv', `${h2cUrl}/plain`]);
  assert.doesNotMatch(out, /HTTP Upgrade/, 'no Upgrade: h2c dance, straight to HTTP/2');
  assert.match(out, /recv \(stream_id=\d+\) :status: 200/);
  assert.match(out, /\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):100\]/);
});

test('h2load over TLS and over h2c: 600 requests each, 10 streams at a time on 3 connections, ' +
  'none failed or errored', { skip }, async () => {
  for (const [url, protocol] of [
    [httpsUrl, 'h2'],
    [h2cUrl, 'h2c'],
  ] as const) {
    const out = await run('h2load', ['-n', '600', '-c', '3', '-m', '10', `${url}/load`]);
    assert.match(out, new RegExp(`Application protocol: ${protocol}\\n`));
    assert.deepEqual(
      requestsLine(out),
      { total: 600, started: 600, done: 600, succeeded: 600, failed: 0, errored: 0, timeout: 0 },
      out,
    );
    assert.match(out, /status codes: 600 2xx, 0 3xx, 0 4xx, 0 5xx/);
  }
  const metrics = await gateway.metrics.registry.metrics();
  assert.match(metrics, /gangway_requests_by_protocol_total\{route="\/",protocol="h2"\} 6\d\d/);
  assert.match(metrics, /gangway_requests_by_protocol_total\{route="\/",protocol="h2c"\} 6\d\d/);
});

test('h2load uploads: 100 POSTs of 100 KiB (beyond the flow-control window) all reach the upstream', {
  skip,
}, async () => {
  const body = join(dir, 'body.bin');
  writeFileSync(body, Buffer.alloc(100 * 1024, 7));
  const before = uploaded;
  const out = await run('h2load', ['-n', '100', '-c', '2', '-m', '5', '-d', body, `${httpsUrl}/upload`]);
  assert.deepEqual(
    requestsLine(out),
    { total: 100, started: 100, done: 100, succeeded: 100, failed: 0, errored: 0, timeout: 0 },
    out,
  );
  assert.equal(uploaded - before, 100 * 100 * 1024, 'every body arrived whole');
});
