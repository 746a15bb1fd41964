/**
 * Per-client rate limits: a client over its quota gets 429 at once, with Retry-After and the
 * IETF RateLimit / RateLimit-Policy fields; other clients (by key) are unaffected; allowed
 * answers carry the remaining quota.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fetchRaw, httpUpstream, minimalConfig, rawExchange, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('a client over its quota gets 429 with Retry-After and RateLimit fields; another key is unaffected', async () => {
  let reached = 0;
  const up = await httpUpstream((_req, res) => {
    reached++;
    res.end('ok');
  });
  const gw = await startGateway(
    minimalConfig([up.address], { route: { rateLimit: { requests: 5, window: '10s', key: 'header:x-api-key' } } }),
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const statuses: number[] = [];
  let last: Awaited<ReturnType<typeof fetchRaw>> | undefined;
  for (let i = 0; i < 8; i++) {
    last = await fetchRaw(`${gw.url}/x`, { headers: { 'x-api-key': 'alice', accept: 'application/json' } });
    statuses.push(last.status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
  assert.equal(reached, 5, 'refused requests never reach the upstream');
  assert.equal(last!.headers['ratelimit-policy'], '"gangway";q=5;w=10');
  assert.match(String(last!.headers.ratelimit), /^"gangway";r=0;t=\d+$/);
  const retryAfter = Number(last!.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}: one token refills in 2 s`);
  assert.match(String(last!.headers['proxy-status']), /^gangway; error=http_request_denied/);
  assert.equal((JSON.parse(last!.body.toString()) as { status: number }).status, 429);

  const bob = await fetchRaw(`${gw.url}/x`, { headers: { 'x-api-key': 'bob' } });
  assert.equal(bob.status, 200);
  assert.equal(bob.headers.ratelimit, '"gangway";r=4;t=2');
});

test('WebSocket upgrades count against the same rate limit and are refused with 429 when over it', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  up.server.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  });
  const gw = await startGateway(minimalConfig([up.address], { route: { rateLimit: { requests: 1, window: '10s' } } }));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const upgrade =
    'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  assert.match(await rawExchange(gw.url, upgrade, 500), /^HTTP\/1\.1 101 /);
  const refused = await rawExchange(gw.url, upgrade, 500);
  assert.match(refused, /^HTTP\/1\.1 429 /);
  assert.match(refused, /\r\nretry-after: \d+\r\n/i);
  assert.match(refused, /\r\nratelimit-policy: "gangway";q=1;w=10\r\n/i);
});

test('a reload keeps the buckets of an unchanged rate limit, so reloading is no way around a quota', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const config = minimalConfig([up.address], { route: { rateLimit: { requests: 2, window: '10s' } } });
  const gw = await startGateway(config);
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  assert.deepEqual([(await fetchRaw(`${gw.url}/x`)).status, (await fetchRaw(`${gw.url}/x`)).status], [200, 200]);
  await gw.gateway.reload({ ...config, listen: '127.0.0.1:0', name: 'renamed' });
  assert.equal((await fetchRaw(`${gw.url}/x`)).status, 429, 'the same quota, still spent');
  await gw.gateway.reload(minimalConfig([up.address], { route: { rateLimit: { requests: 3, window: '10s' } } }));
  assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200, 'a new quota starts afresh');
});
