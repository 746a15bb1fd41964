/**
 * RFC 9110 / 9112 semantics through the gateway: header rewriting, bodies both ways,
 * HEAD/204/304, trailers, ranges, Expect: 100-continue, upgrades, and the request limits.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import {
  fetchRaw,
  httpUpstream,
  minimalConfig,
  rawExchange,
  startGateway,
  websocketTranscript,
} from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function echoSetup(extra: Record<string, unknown> = {}) {
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; raw: string[]; body: Buffer }> = [];
  const up = await httpUpstream((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        raw: req.rawHeaders,
        body: Buffer.concat(parts),
      });
      res.setHeader('content-type', 'text/plain');
      res.end(`got ${Buffer.concat(parts).length}`);
    });
  });
  const gw = await startGateway(minimalConfig([up.address], extra));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  return { gw, up, seen };
}

test('request headers: hop-by-hop fields dropped, Via/X-Forwarded-*/Forwarded/X-Request-Id added, Host and traceparent kept', async () => {
  const { gw, seen } = await echoSetup();
  const res = await fetchRaw(`${gw.url}/a?b=c`, {
    headers: {
      host: 'music.example',
      connection: 'keep-alive, x-secret-hop',
      'x-secret-hop': 'must not pass',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      te: 'gzip',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'x-forwarded-for': '203.0.113.9',
      via: '1.1 edge',
    },
  });
  assert.equal(res.status, 200);
  const h = seen[0]!.headers;
  assert.equal(seen[0]!.url, '/a?b=c');
  assert.equal(h.host, 'music.example');
  assert.equal(h['x-secret-hop'], undefined);
  assert.equal(h['keep-alive'], undefined);
  assert.equal(h['proxy-connection'], undefined);
  assert.equal(h.te, undefined);
  assert.equal(h.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  assert.equal(h.via, '1.1 edge, 1.1 gangway');
  assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'music.example');
  assert.equal(h.forwarded, 'for=127.0.0.1;proto=http;host=music.example');
  assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/);
  assert.equal(res.headers['x-request-id'], h['x-request-id'], 'the same id goes upstream and back to the client');
  assert.equal(res.headers.via, '1.1 gangway');
});

test("hostHeader: upstream sends the host's own name instead of the client's", async () => {
  const { gw, up, seen } = await echoSetup({ upstream: { hostHeader: 'upstream' } });
  await fetchRaw(`${gw.url}/`, { headers: { host: 'music.example' } });
  assert.equal(seen[0]!.headers.host, up.address);
  assert.equal(seen[0]!.headers['x-forwarded-host'], 'music.example');
});

test('response headers: hop-by-hop fields dropped, Set-Cookie lines kept apart', async () => {
  const up = await httpUpstream((_req, res) => {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('connection', 'x-internal');
    res.setHeader('x-internal', 'secret');
    res.setHeader('keep-alive', 'timeout=99');
    res.end('ok');
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const res = await fetchRaw(`${gw.url}/`);
  assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  assert.equal(res.headers['x-internal'], undefined);
  assert.notEqual(res.headers['keep-alive'], 'timeout=99');
});

test('request bodies stream through, with Content-Length and chunked', async () => {
  const { gw } = await echoSetup();
  const body = Buffer.alloc(200_000, 'a');
  const fixed = await fetchRaw(`${gw.url}/upload`, {
    method: 'POST',
    body,
    headers: { 'content-length': String(body.length) },
  });
  assert.equal(fixed.body.toString(), 'got 200000');
  const chunked = await fetchRaw(`${gw.url}/upload`, {
    method: 'PUT',
    chunks: [Buffer.alloc(1000, 'b'), Buffer.alloc(500, 'c')],
  });
  assert.equal(chunked.body.toString(), 'got 1500');
  const empty = await fetchRaw(`${gw.url}/upload`, { method: 'POST', headers: { 'content-length': '0' } });
  assert.equal(empty.body.toString(), 'got 0');
});

test('HEAD, 204 and 304 carry no body; HEAD keeps the Content-Length', async () => {
  const up = await httpUpstream((req, res) => {
    if (req.url === '/204') {
      res.writeHead(204).end();
      return;
    }
    if (req.url === '/304') {
      res.writeHead(304, { etag: '"x"' }).end();
      return;
    }
    res.writeHead(200, { 'content-length': '5' });
    res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const head = await fetchRaw(`${gw.url}/x`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '5');
  assert.equal(head.body.length, 0);
  const nc = await fetchRaw(`${gw.url}/204`);
  assert.equal(nc.status, 204);
  assert.equal(nc.body.length, 0);
  const nm = await fetchRaw(`${gw.url}/304`, { headers: { 'if-none-match': '"x"' } });
  assert.equal(nm.status, 304);
  assert.equal(nm.headers.etag, '"x"');
  assert.equal(nm.body.length, 0);
});

test('response trailers reach the client', async () => {
  const up = await httpUpstream((_req, res) => {
    res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
    res.write('data');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end();
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const res = await fetchRaw(`${gw.url}/`, { headers: { te: 'trailers' } });
  assert.equal(res.body.toString(), 'data');
  assert.equal(res.trailers['x-checksum'], 'abc123');
});

test('Range requests and 206 answers pass untouched', async () => {
  const data = Buffer.from('0123456789abcdef');
  const up = await httpUpstream((req, res) => {
    assert.equal(req.headers.range, 'bytes=4-7');
    res.writeHead(206, {
      'content-range': 'bytes 4-7/16',
      'content-length': '4',
      'accept-ranges': 'bytes',
      etag: '"v1"',
    });
    res.end(data.subarray(4, 8));
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const res = await fetchRaw(`${gw.url}/f`, { headers: { range: 'bytes=4-7', 'if-range': '"v1"' } });
  assert.equal(res.status, 206);
  assert.equal(res.headers['content-range'], 'bytes 4-7/16');
  assert.equal(res.body.toString(), '4567');
});

test('a large response streams through byte-exact', async () => {
  const blob = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE(i, i);
  const up = await httpUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(blob);
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const res = await fetchRaw(`${gw.url}/big`);
  assert.equal(res.complete, true);
  assert.equal(createHash('sha256').update(res.body).digest('hex'), createHash('sha256').update(blob).digest('hex'));
});

test('Expect: 100-continue gets 100 before the body is sent, and 413 without reading an oversized body', async () => {
  const { gw, seen } = await echoSetup({ route: { limits: { body: '1KiB' } } });
  const exchange = (length: number) =>
    new Promise<{ continued: boolean; status: number; body: string }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest(`${gw.url}/upload`, {
        method: 'POST',
        agent: false,
        headers: { expect: '100-continue', 'content-length': String(length) },
      });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(length, 'z'));
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ continued, status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  const ok = await exchange(100);
  assert.equal(ok.continued, true);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'got 100');
  assert.equal(seen[0]!.headers.expect, undefined, 'the expectation is met here, not forwarded');
  const big = await exchange(5000);
  assert.equal(big.continued, false, 'no 100 Continue for a body that will be refused');
  assert.equal(big.status, 413);
});

test('limits: 413 for a declared or streamed body over the route limit, 414 for a long target, 431 for large headers', async () => {
  const { gw, seen } = await echoSetup({
    route: { limits: { body: '1KiB' } },
    top: { server: { maxUriLength: 100, maxHeaderSize: '4KiB' } },
  });
  const declared = await fetchRaw(`${gw.url}/up`, { method: 'POST', body: Buffer.alloc(2000) });
  assert.equal(declared.status, 413);
  assert.match(String(declared.headers['proxy-status']), /error=http_request_error/);
  const streamed = await fetchRaw(`${gw.url}/up`, {
    method: 'POST',
    chunks: [Buffer.alloc(800), Buffer.alloc(800)],
  }).catch((e: Error) => e);
  if (!(streamed instanceof Error)) assert.equal(streamed.status, 413);
  assert.equal(seen.filter((s) => s.body.length > 1024).length, 0, 'nothing over the limit reached the upstream');
  const long = await fetchRaw(`${gw.url}/${'x'.repeat(200)}`);
  assert.equal(long.status, 414);
  const fat = await fetchRaw(`${gw.url}/`, { headers: { cookie: 'c'.repeat(6000) } });
  assert.equal(fat.status, 431);
  assert.match(String(fat.headers['proxy-status']), /^gangway; error=http_request_error/);
  assert.equal(fat.headers['cache-control'], 'no-store');
});

test('malformed requests get 400; a slowloris client is cut off by the header timeout with 408', async () => {
  const { gw } = await echoSetup({ top: { server: { headerTimeout: '300ms' } } });
  const bad = await rawExchange(gw.url, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 1000);
  assert.match(bad, /^HTTP\/1.1 400 /);
  assert.match(bad, /proxy-status: gangway; error=http_request_error/);
  const slow = await rawExchange(gw.url, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1', 3000);
  assert.match(slow, /^HTTP\/1.1 408 /);
});

test('WebSocket upgrades are tunnelled both ways', async () => {
  const up = await httpUpstream((_req, res) => res.end('not an upgrade'));
  up.server.on('upgrade', (req, socket) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-seen-via: ${req.headers.via}\r\n\r\n`,
    );
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const port = Number(new URL(gw.url).port);
  const transcript = await websocketTranscript(connect(port, '127.0.0.1'), 'x');
  assert.match(transcript, /^HTTP\/1.1 101 Switching Protocols/);
  assert.match(transcript, /x-seen-via: 1.1 gangway/);
  assert.match(transcript, /echo:ping$/);
});

test("an upgrade the upstream refuses (401) reaches the client as the upstream's own answer, not a 502", async () => {
  const up = await httpUpstream((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Bearer' });
    res.end('who are you');
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const transcript = await rawExchange(
    gw.url,
    'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  );
  assert.match(transcript, /^HTTP\/1.1 401 Unauthorized\r\n/);
  assert.match(transcript, /www-authenticate: Bearer/);
  assert.match(transcript, /who are you$/);
});
