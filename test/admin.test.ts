/**
 * The admin listener: health and readiness, Prometheus metrics that count what happened,
 * and the JSON status of routes, upstreams and hosts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, fetchRaw, httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('healthz, readyz, metrics and api/status', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const dead = await closedPort();
  const gw = await startGateway({
    upstreams: { music: { hosts: [up.address] }, broken: { hosts: [`127.0.0.1:${dead}`] } },
    routes: [
      { match: { path: '/broken' }, upstream: 'broken' },
      { name: 'all', match: { path: '/' }, upstream: 'music' },
    ],
  });
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );

  assert.equal((await fetchRaw(`${gw.adminUrl}/healthz`)).status, 200);
  assert.equal((await fetchRaw(`${gw.adminUrl}/readyz`)).status, 200);

  for (let i = 0; i < 3; i++) assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200);
  assert.equal((await fetchRaw(`${gw.url}/broken/y`)).status, 502);

  const metrics = (await fetchRaw(`${gw.adminUrl}/metrics`)).body.toString();
  assert.match(metrics, /gangway_requests_total\{route="all",status="200",failure=""\} 3/);
  assert.match(metrics, /gangway_requests_total\{route="\/broken",status="502",failure="connection_refused"\} 1/);
  assert.match(
    metrics,
    new RegExp(
      `gangway_upstream_attempts_total\\{upstream="broken",host="127.0.0.1:${dead}",outcome="connection_refused"\\} 1`,
    ),
  );
  assert.match(
    metrics,
    new RegExp(`gangway_upstream_attempt_duration_seconds_count\\{upstream="music",host="${up.address}"\\} 3`),
  );
  assert.match(metrics, /gangway_request_duration_seconds_bucket\{le="0.1",route="all",protocol="http\/1.1"\} 3/);
  assert.match(metrics, /gangway_requests_in_flight 0/);

  const status = JSON.parse((await fetchRaw(`${gw.adminUrl}/api/status`)).body.toString()) as {
    routes: Array<{ name: string; upstream: string; priority: string }>;
    upstreams: Array<{ name: string; hosts: Array<{ address: string }> }>;
  };
  assert.deepEqual(status.routes, [
    { name: '/broken', upstream: 'broken', priority: 'normal' },
    { name: 'all', upstream: 'music', priority: 'normal' },
  ]);
  assert.equal(status.upstreams.find((u) => u.name === 'music')!.hosts[0]!.address, up.address);

  assert.equal((await fetchRaw(`${gw.adminUrl}/nothing`)).status, 404);
  assert.equal((await fetchRaw(`${gw.adminUrl}/healthz`, { method: 'POST' })).status, 405);
});

test('the access log has one line per request with route, host, attempts, status, failure, bytes and time', async () => {
  const up = await httpUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('twelve bytes'));
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  await fetchRaw(`${gw.url}/songs?id=1`, { method: 'POST', body: 'hello', headers: { 'x-request-id': 'abc-1' } });
  await new Promise((r) => setTimeout(r, 20));
  const line = gw.logs.find((l) => l.msg === 'request')!;
  assert.equal(line.req_id, 'abc-1');
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/songs?id=1');
  assert.equal(line.route, '/');
  assert.equal(line.upstream, 'music');
  assert.equal(line.host, up.address);
  assert.equal(line.attempts, 1);
  assert.equal(line.status, 200);
  assert.equal(line.bytes_in, 5);
  assert.equal(line.bytes_out, 12);
  assert.equal(typeof line.ms, 'number');
});

test('reload swaps routes and upstreams without dropping a request; an invalid config is refused and the old one stays', async () => {
  let arrived: () => void = () => {};
  const atA = new Promise<void>((r) => {
    arrived = r;
  });
  const a = await httpUpstream((_req, res) => {
    arrived();
    setTimeout(() => res.end('from a'), 200);
  });
  const b = await httpUpstream((_req, res) => res.end('from b'));
  const gw = await startGateway(minimalConfig([a.address]));
  cleanups.push(
    () => gw.close(),
    () => a.close(),
    () => b.close(),
  );
  const inFlight = fetchRaw(`${gw.url}/x`);
  await atA; // under way at the old upstream, however slow the machine
  await gw.gateway.reload({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...minimalConfig([b.address]) });
  assert.equal((await inFlight).body.toString(), 'from a', 'the request under way finished on the old upstream');
  assert.equal((await fetchRaw(`${gw.url}/x`)).body.toString(), 'from b');
  await assert.rejects(
    gw.gateway.reload({ upstreams: {}, routes: [{ upstream: 'nope' }] }),
    /routes\[0\]\.upstream: no upstream named "nope"|upstreams: at least one upstream/,
  );
  assert.equal((await fetchRaw(`${gw.url}/x`)).body.toString(), 'from b', 'the running configuration stays');
});
