/**
 * Upstream hosts discovered in DNS, against a DNS server the tests run
 * (test/support/dns-server.ts) and real HTTP replicas on 127.0.0.1, 127.0.0.2, 127.0.0.3 and ::1
 * sharing one port: A and AAAA records expand to hosts; a record added gets traffic (ramping up by
 * slow start), a record removed under load and records churning under load cost no request; a
 * resolver that fails in any way (SERVFAIL, REFUSED, NXDOMAIN, no records, no answer) keeps the
 * last good hosts and /api/status says so; a start with the resolver failing answers an explained
 * 503 until it recovers; TTLs are honoured within the refresh bounds; SRV records bring their
 * ports and weights; scheme https checks certificates for the DNS name; a reload keeps an
 * unchanged name's hosts without asking again; an operator's drain holds for a host that leaves
 * and comes back; a discovered host's health checks stay one chain when it leaves and comes back;
 * a reload waiting for a new name does not undo a later one; bad settings are refused with file,
 * line and field.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { ConfigError, parseConfigText, validateConfig } from '../src/index.js';
import { UpstreamPool, type PoolEvents } from '../src/upstream/pool.js';
import { dnsZone, type DnsZone } from './support/dns-server.js';
import { fetchRaw, startGateway, type ClientResult, type RunningGateway } from './support/harness.js';
import { runLoad } from './support/load.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const NAME = 'music.svc.test';
const JSON_BODY = { 'content-type': 'application/json' };
/**
 * The event-loop guard sheds requests (503) when the process stalls, which a machine shared by
 * many test runs makes it do now and then; shedding is not what these tests are about.
 */
const NO_LOOP_GUARD = { maxEventLoopDelay: 0 };

interface Replica {
  /** "127.0.0.2:PORT", "[::1]:PORT": the label the gateway gives the host. */
  label: string;
  served: number;
  /** Open connections from the gateway. */
  sockets: Set<Socket>;
  server: Server;
}

interface Replicas {
  port: number;
  byAddress: Map<string, Replica>;
  close(): Promise<void>;
}

/**
 * One HTTP server per address, all on the same port (as pods behind a headless service): each
 * answers with its own address, after `delayMs` (per address when a function) when a request asks for /slow.
 */
async function replicas(addresses: string[], delayMs: number | ((address: string) => number) = 300): Promise<Replicas> {
  for (let tries = 0; tries < 10; tries++) {
    const started: Replica[] = [];
    let port = 0;
    try {
      for (const address of addresses) {
        const replica = await listenReplica(address, port, typeof delayMs === 'number' ? delayMs : delayMs(address));
        started.push(replica);
        port = (replica.server.address() as AddressInfo).port;
      }
      const byAddress = new Map(started.map((r, k) => [addresses[k]!, r]));
      return {
        port,
        byAddress,
        close: () => Promise.all(started.map(closeReplica)).then(() => undefined),
      };
    } catch (err) {
      // The port the first replica got is taken on another address: try another one.
      await Promise.all(started.map(closeReplica));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no port free on every replica address');
}

async function listenReplica(address: string, port: number, delayMs: number): Promise<Replica> {
  const replica = { sockets: new Set<Socket>(), served: 0 } as Replica;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    replica.served++;
    const reply = (): void => {
      res.setHeader('content-type', 'text/plain');
      res.end(address);
    };
    if (req.url === '/slow') setTimeout(reply, delayMs);
    else reply();
  });
  server.on('connection', (s: Socket) => {
    replica.sockets.add(s);
    s.on('close', () => replica.sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  replica.server = server;
  replica.label = address.includes(':') ? `[${address}]:${bound}` : `${address}:${bound}`;
  return replica;
}

function closeReplica(r: Replica): Promise<void> {
  return new Promise((resolve) => {
    r.server.close(() => resolve());
    for (const s of r.sockets) s.destroy();
  });
}

async function zone(): Promise<DnsZone> {
  const z = await dnsZone();
  cleanups.push(() => z.close());
  return z;
}

/** A gateway whose one upstream "music" discovers its hosts with these dns settings. */
async function gatewayFor(
  dns: Record<string, unknown>,
  upstream: Record<string, unknown> = {},
): Promise<RunningGateway> {
  const gw = await startGateway({
    upstreams: {
      music: { dns, healthCheck: { enabled: false }, slowStart: 0, balance: 'round-robin', ...upstream },
    },
    routes: [{ match: { path: '/' }, upstream: 'music' }],
    server: NO_LOOP_GUARD,
  } as never);
  cleanups.push(() => gw.close());
  return gw;
}

interface UpstreamStatus {
  hosts: Array<{ address: string; state: string; weight?: number }>;
  discovery: {
    name: string;
    records: string;
    hosts: number;
    last_resolved: string | null;
    last_result: string | null;
    last_error: string | null;
    failures: number;
    next_resolution: string | null;
    leaving: Array<{ address: string; outstanding: number }>;
  };
}

async function music(gw: RunningGateway): Promise<UpstreamStatus> {
  const body = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { upstreams: UpstreamStatus[] };
  return body.upstreams[0]!;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Which replica answered each of `n` sequential requests. */
async function servedBy(gw: RunningGateway, n: number, path = '/x'): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await fetchRaw(`${gw.url}${path}`);
    assert.equal(r.status, 200, r.body.toString());
    const who = r.body.toString();
    counts[who] = (counts[who] ?? 0) + 1;
  }
  return counts;
}

async function metric(gw: RunningGateway, line: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

test('every A record becomes a host, sorted by address, and takes its share of traffic', async () => {
  const up = await replicas(['127.0.0.3', '127.0.0.1', '127.0.0.2']);
  cleanups.push(() => up.close());
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.3', '127.0.0.1', '127.0.0.2', '127.0.0.1'], ttl: 30 });
  const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address });

  assert.deepEqual(await servedBy(gw, 30), { '127.0.0.1': 10, '127.0.0.2': 10, '127.0.0.3': 10 });
  const status = await music(gw);
  assert.deepEqual(
    status.hosts.map((h) => h.address),
    ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((a) => `${a}:${up.port}`),
    'one host per address (the duplicate record counted once), in address order',
  );
  assert.equal(status.discovery.name, NAME);
  assert.equal(status.discovery.records, 'A/AAAA');
  assert.equal(status.discovery.last_result, 'ok');
  assert.equal(status.discovery.last_error, null);
  assert.ok(Date.parse(status.discovery.last_resolved!) > Date.now() - 10_000);
  assert.ok(Date.parse(status.discovery.next_resolution!) > Date.now() + 20_000, 'next resolution on the TTL');
  assert.equal(await metric(gw, 'gangway_upstream_hosts{upstream="music"}'), 3);
  assert.equal(await metric(gw, 'gangway_discovery_resolutions_total{upstream="music",result="ok"}'), 1);
});

test('a record added: the new host gets traffic without a reload', async () => {
  const up = await replicas(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  cleanups.push(() => up.close());
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2'], ttl: 1 });
  const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address, refresh: { min: '200ms' } });
  assert.deepEqual(Object.keys(await servedBy(gw, 4)).sort(), ['127.0.0.1', '127.0.0.2']);

  dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], ttl: 1 });
  await waitFor('the third host', async () => (await music(gw)).hosts.length === 3, 3000);
  const counts = await servedBy(gw, 30);
  assert.deepEqual(Object.keys(counts).sort(), ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  for (const n of Object.values(counts)) assert.ok(n >= 9 && n <= 11, JSON.stringify(counts));
  const changes = gw.logs.filter((l) => l.msg === 'upstream hosts changed (dns)');
  assert.deepEqual(
    changes.map((l) => [l.added, l.removed]),
    [
      [[`127.0.0.1:${up.port}`, `127.0.0.2:${up.port}`], []],
      [[`127.0.0.3:${up.port}`], []],
    ],
  );
});

test(
  'a host that appears ramps up by slow start; the first ' + 'hosts, and one that returns while finishing, do not',
  async () => {
    const config = validateConfig({
      upstreams: { music: { dns: { name: NAME, port: 7001 }, slowStart: '10s', healthCheck: { enabled: false } } },
      routes: [{ upstream: 'music' }],
    });
    const quiet: PoolEvents = { ejected() {}, healthChanged() {}, hostsChanged() {}, hostClosed() {}, resolved() {} };
    const pool = new UpstreamPool('music', config.upstreams.music!, quiet);
    const found = (...addresses: string[]) =>
      addresses.map((a) => ({ origin: `http://${a}:7001`, label: `${a}:7001`, weight: 1 }));
    pool.discovered(found('127.0.0.1', '127.0.0.2'));
    const now = Date.now();
    assert.deepEqual(
      pool.hosts.map((h) => h.warmth(now)),
      [1, 1],
      'the first hosts take their full share',
    );
    pool.discovered(found('127.0.0.1', '127.0.0.2', '127.0.0.3'));
    const fresh = pool.hosts[2]!;
    assert.ok(fresh.warmth(Date.now()) <= 0.11, `a new replica starts near 10% (${fresh.warmth(Date.now())})`);
    assert.equal(fresh.warmth(Date.now() + 10_000), 1, 'and has its full share after slowStart');
    const second = pool.hosts[1]!;
    pool.discovered(found('127.0.0.1', '127.0.0.3'));
    assert.deepEqual([...pool.leaving.keys()], [second]);
    pool.discovered(found('127.0.0.1', '127.0.0.2', '127.0.0.3'));
    assert.equal(pool.hosts[1], second, 'taken back: the same host, its connections and what was learned of it');
    assert.equal(second.warmth(Date.now()), 1);
    assert.equal(pool.leaving.size, 0);
    await pool.close();
  },
);

test('a host that leaves and comes back while its health check is under way keeps one chain of checks', async () => {
  // Each check takes 300 ms and they come every 100 ms: one chain asks about three times a
  // second; a second chain, started when the host came back, would double that.
  const asked: number[] = [];
  const server = createServer((req, res) => {
    if (req.url !== '/health') return void res.end();
    asked.push(Date.now());
    setTimeout(() => res.end('ok'), 300);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  const config = validateConfig({
    upstreams: {
      music: {
        // Nothing answers on port 9: discovery fails and keeps the hosts given below.
        dns: { name: NAME, port, resolver: '127.0.0.1:9' },
        healthCheck: { path: '/health', interval: '100ms', timeout: '2s' },
      },
    },
    routes: [{ upstream: 'music' }],
  });
  const quiet: PoolEvents = { ejected() {}, healthChanged() {}, hostsChanged() {}, hostClosed() {}, resolved() {} };
  const pool = new UpstreamPool('music', config.upstreams.music!, quiet);
  const found = [{ origin: `http://127.0.0.1:${port}`, label: `127.0.0.1:${port}`, weight: 1 }];
  pool.discovered(found);
  pool.start();
  const firstAsked = asked.length;
  while (asked.length === firstAsked) await new Promise((r) => setTimeout(r, 10));
  // The check is under way: the record goes and comes back before it ends.
  pool.discovered([]);
  pool.discovered(found);
  const from = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  const during = asked.filter((t) => t >= from).length;
  await pool.close();
  // One chain: a check every 300 ms + 80..120 ms, about 5 in 2 s; two chains make about 10.
  assert.ok(during <= 7, `${during} checks in 2 s: ${asked.map((t) => t - from).join(' ')}`);
});

test(
  'a record removed under load: no request fails, those ' + 'under way on it finish, then its connections close',
  async () => {
    // The host that leaves answers slowly, so requests are under way on it when its record goes.
    const up = await replicas(['127.0.0.1', '127.0.0.2', '127.0.0.3'], (a) => (a === '127.0.0.3' ? 1200 : 80));
    cleanups.push(() => up.close());
    const dns = await zone();
    dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], ttl: 1 });
    const gw = await gatewayFor(
      { name: NAME, port: up.port, resolver: dns.address, refresh: { min: '200ms', max: '1s' } },
      // The adaptive concurrency limit would shed some of this burst; that is not what is tested here.
      { concurrency: { enabled: false } },
    );
    const leaving = up.byAddress.get('127.0.0.3')!;
    let servedWhenGone = 0;
    const load = runLoad(`${gw.url}/slow`, {
      total: 100,
      concurrency: 12,
      onProgress(done) {
        if (done === 12) dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2'], ttl: 1 });
      },
    });
    await waitFor('the host to leave', async () => (await music(gw)).hosts.length === 2, 5000);
    servedWhenGone = leaving.served;
    const result = await load;
    assert.deepEqual(
      result.byStatus,
      { 200: 100 },
      JSON.stringify(gw.logs.filter((l) => l.status !== 200 && l.msg === 'request').slice(0, 3)),
    );
    const removal = gw.logs.find((l) => l.msg === 'upstream hosts changed (dns)' && (l.removed as []).length > 0);
    assert.deepEqual(removal?.removed, [leaving.label]);
    assert.ok(Number(removal?.finishing) > 0, 'requests were under way on the host when it left');
    assert.equal(leaving.served, servedWhenGone, 'no request sent to the host after it left');
    assert.ok(leaving.served >= 4, 'it had its share before');
    await waitFor('its connections to close', () => leaving.sockets.size === 0, 5000);
    await waitFor('the leaving list to empty', async () => (await music(gw)).discovery.leaving.length === 0, 3000);
    // Its per-host series went with it: addresses churn with deploys, and series must not pile up.
    const metrics = await gw.gateway.metrics.registry.metrics();
    assert.match(metrics, /gangway_upstream_attempts_total\{upstream="music",host="127\.0\.0\.1:\d+"/);
    assert.doesNotMatch(metrics, new RegExp(`host="${leaving.label.replaceAll('.', '\\.')}"`));
  },
);

test('records churning under load (a host leaving and coming back every 250 ms): no request fails', async () => {
  const up = await replicas(['127.0.0.1', '127.0.0.2', '127.0.0.3'], 20);
  cleanups.push(() => up.close());
  const dns = await zone();
  const all = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
  dns.set(NAME, { a: all, ttl: 0 });
  const gw = await gatewayFor(
    { name: NAME, port: up.port, resolver: dns.address, refresh: { min: '100ms' } },
    { balance: 'p2c', concurrency: { enabled: false } },
  );
  let turn = 0;
  const churn = setInterval(() => {
    turn++;
    dns.set(NAME, { a: all.filter((_, k) => k !== turn % 3), ttl: 0 });
  }, 250);
  const result = await runLoad(`${gw.url}/slow`, { total: 600, concurrency: 8 });
  clearInterval(churn);
  assert.deepEqual(result.byStatus, { 200: 600 }, result.errors.join('; '));
  const changes = gw.logs.filter((l) => l.msg === 'upstream hosts changed (dns)').length;
  assert.ok(changes >= 4, `the set changed ${changes} times under load`);
  for (const r of up.byAddress.values()) assert.ok(r.served > 0);
});

for (const [mode, error] of [
  ['servfail', /SERVFAIL/],
  ['refused', /REFUSED/],
  ['nxdomain', /NXDOMAIN/],
  ['no records', /no address records/],
  ['drop', /timeout/],
] as const) {
  const title = `a resolver answering ${mode}: the last good hosts stay, status and metrics say so, the log says once`;
  test(title, async () => {
    const up = await replicas(['127.0.0.1', '127.0.0.2']);
    cleanups.push(() => up.close());
    const dns = await zone();
    dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2'], ttl: 0 });
    const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address, refresh: { min: '150ms' } });
    assert.equal((await music(gw)).hosts.length, 2);

    if (mode === 'no records') dns.set(NAME, { a: [], ttl: 0 });
    else dns.mode = mode;
    await waitFor('two failed resolutions', async () => (await music(gw)).discovery.failures >= 2, 12_000);
    const status = await music(gw);
    assert.match(status.discovery.last_error ?? '', error);
    assert.notEqual(status.discovery.last_result, 'ok');
    assert.equal(status.hosts.length, 2, 'the last good set is kept');
    assert.deepEqual(await servedBy(gw, 4), { '127.0.0.1': 2, '127.0.0.2': 2 });
    const result = mode === 'no records' ? 'empty' : 'failed';
    assert.ok((await metric(gw, `gangway_discovery_resolutions_total{upstream="music",result="${result}"}`))! >= 2);
    const warned = gw.logs.filter((l) => String(l.msg).startsWith('dns discovery failed'));
    assert.equal(warned.length, 1, 'one warning for the whole streak');
    assert.equal(warned[0]!.msg, 'dns discovery failed: keeping the last good hosts');

    dns.mode = 'answer';
    dns.set(NAME, { a: ['127.0.0.2'], ttl: 0 });
    await waitFor('recovery', async () => (await music(gw)).discovery.last_result === 'ok', 8000);
    assert.deepEqual(await servedBy(gw, 3), { '127.0.0.2': 3 });
    assert.ok(gw.logs.some((l) => l.msg === 'dns discovery recovered'));
    assert.equal((await music(gw)).discovery.failures, 0);
  });
}

test('one family failing (AAAA SERVFAIL) keeps its last good hosts beside the fresh ones of the other', async () => {
  const up = await replicas(['127.0.0.1', '127.0.0.2', '::1']);
  cleanups.push(() => up.close());
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.1'], aaaa: ['::1'], ttl: 0 });
  const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address, refresh: { min: '150ms' } });
  assert.equal((await music(gw)).hosts.length, 2);
  dns.modeFor.AAAA = 'servfail';
  dns.set(NAME, { a: ['127.0.0.2'], aaaa: [], ttl: 0 });
  await waitFor('the fresh A record', async () => (await music(gw)).hosts[0]?.address === `127.0.0.2:${up.port}`);
  const status = await music(gw);
  assert.deepEqual(
    status.hosts.map((h) => h.address),
    [`127.0.0.2:${up.port}`, `[::1]:${up.port}`],
  );
  assert.match(status.discovery.last_error!, /^AAAA music\.svc\.test: SERVFAIL/);
  assert.deepEqual(await servedBy(gw, 4), { '127.0.0.2': 2, '::1': 2 });
});

test('retries after failures back off: the resolver is not hammered while it is down', async () => {
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.1'], ttl: 0 });
  dns.mode = 'servfail';
  const gw = await gatewayFor({ name: NAME, port: 9, resolver: dns.address, refresh: { min: '100ms', max: '2s' } });
  const from = Date.now();
  await new Promise((r) => setTimeout(r, 1700));
  const asked = dns.asked(NAME, 'A').filter((q) => q.at >= from - 3000);
  // 100, 200, 400, 800 ms apart: about 5 in 1.7 s (c-ares does not retry a SERVFAIL), never 17.
  assert.ok(asked.length >= 3 && asked.length <= 7, `${asked.length} questions`);
  const gaps = asked.slice(1).map((q, k) => q.at - asked[k]!.at);
  // Each gap at least the backoff it follows (a timer comes late on a busy machine, never early):
  // without backoff the second and third would be about 100 ms.
  for (const [k, gap] of gaps.entries())
    assert.ok(gap >= 100 * 2 ** k - 15, `gaps of at least 100, 200, 400, 800 ms: ${gaps.join(', ')}`);
  await gw.close();
});

test(
  'starting while the resolver fails: requests get an ' + 'explained 503 (no hosts), then hosts once it answers',
  async () => {
    const up = await replicas(['127.0.0.1']);
    cleanups.push(() => up.close());
    const dns = await zone();
    dns.mode = 'servfail';
    dns.set(NAME, { a: ['127.0.0.1'], ttl: 30 });
    const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address, refresh: { min: '200ms' } });
    const refused = await fetchRaw(`${gw.url}/x`, { headers: { accept: 'application/problem+json' } });
    assert.equal(refused.status, 503);
    assert.match(String(refused.headers['proxy-status']), /error=destination_unavailable/);
    assert.match(String(refused.headers['proxy-status']), /no hosts \(none found in DNS yet\)/);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    const status = await music(gw);
    assert.equal(status.hosts.length, 0);
    assert.match(status.discovery.last_error!, /SERVFAIL/);
    assert.ok(gw.logs.some((l) => l.msg === 'dns discovery failed: no hosts yet, retrying'));

    dns.mode = 'answer';
    await waitFor('the first host', async () => (await music(gw)).hosts.length === 1, 4000);
    assert.deepEqual(await servedBy(gw, 2), { '127.0.0.1': 2 });
  },
);

test(
  'the gateway takes traffic once the first answer is ' + 'in: no 503 at start with a resolver that answers',
  async () => {
    const up = await replicas(['127.0.0.1']);
    cleanups.push(() => up.close());
    const dns = await zone();
    dns.set(NAME, { a: ['127.0.0.1'], ttl: 30 });
    const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address });
    assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200);
  },
);

test(
  'TTLs are honoured within the refresh bounds: a 1 s ' + "TTL, a 0 s TTL held to min, an hour's held to max",
  async () => {
    const dns = await zone();
    const cases = [
      { name: 'one.svc.test', ttl: 1, refresh: { min: '200ms', max: '10s' }, gap: [850, 1300] },
      { name: 'zero.svc.test', ttl: 0, refresh: { min: '400ms', max: '10s' }, gap: [380, 750] },
      { name: 'hour.svc.test', ttl: 3600, refresh: { min: '100ms', max: '700ms' }, gap: [600, 1050] },
      { name: 'fixed.svc.test', ttl: 1, refresh: '600ms', gap: [580, 950] },
    ];
    for (const c of cases) dns.set(c.name, { a: ['127.0.0.1'], ttl: c.ttl });
    const gws = await Promise.all(
      cases.map((c) => gatewayFor({ name: c.name, port: 9, resolver: dns.address, refresh: c.refresh })),
    );
    await new Promise((r) => setTimeout(r, 3300));
    for (const [k, c] of cases.entries()) {
      await gws[k]!.close();
      const at = dns.asked(c.name, 'A').map((q) => q.at);
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      assert.ok(gaps.length >= 2, `${c.name}: ${gaps.length} re-resolutions`);
      // Every gap at least the lower bound (timers are never early); the shortest within the upper
      // one, since a busy machine may delay any single resolution but not shorten one.
      for (const g of gaps) assert.ok(g >= c.gap[0]!, `${c.name}: gaps ${gaps.join(', ')} ms`);
      assert.ok(Math.min(...gaps) <= c.gap[1]!, `${c.name}: gaps ${gaps.join(', ')} ms`);
    }
  },
);

test('SRV records: the most preferred priority, each target with its own port and weight', async () => {
  const a = await replicas(['127.0.0.1']);
  const b = await replicas(['127.0.0.2']);
  const backup = await replicas(['127.0.0.3']);
  cleanups.push(
    () => a.close(),
    () => b.close(),
    () => backup.close(),
  );
  const dns = await zone();
  const srvName = `_http._tcp.${NAME}`;
  dns.set(srvName, {
    srv: [
      { priority: 10, weight: 30, port: a.port, target: 'a.music.test' },
      { priority: 10, weight: 10, port: b.port, target: '127.0.0.2' },
      { priority: 20, weight: 100, port: backup.port, target: 'backup.music.test' },
    ],
    ttl: 30,
  });
  dns.set('a.music.test', { a: ['127.0.0.1'], ttl: 30 });
  dns.set('backup.music.test', { a: ['127.0.0.3'], ttl: 30 });
  const gw = await gatewayFor({ name: srvName, srv: true, resolver: dns.address });

  assert.deepEqual(await servedBy(gw, 40), { '127.0.0.1': 30, '127.0.0.2': 10 });
  const status = await music(gw);
  assert.equal(status.discovery.records, 'SRV');
  assert.deepEqual(
    status.hosts.map((h) => [h.address, h.weight]),
    [
      [`127.0.0.1:${a.port}`, 30],
      [`127.0.0.2:${b.port}`, 10],
    ],
  );

  // The default balancer (p2c) draws its two candidates by weight; latency and load still steer
  // the choice between them, so the split is softer than round-robin's but leans the same way.
  const p2c = await gatewayFor({ name: srvName, srv: true, resolver: dns.address }, { balance: 'p2c' });
  const counts = await servedBy(p2c, 300);
  assert.ok(counts['127.0.0.1']! > counts['127.0.0.2']! * 1.15, JSON.stringify(counts));
  assert.ok(counts['127.0.0.2']! > 15, JSON.stringify(counts));
  assert.equal(backup.byAddress.get('127.0.0.3')!.served, 0, 'the lower priority is not used');
});

test('AAAA records: an IPv6 host ([::1]) beside an IPv4 one, or alone with family ipv6', async () => {
  const up = await replicas(['127.0.0.1', '::1']);
  cleanups.push(() => up.close());
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.1'], aaaa: ['::1'], ttl: 30 });
  const both = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address });
  assert.deepEqual(await servedBy(both, 4), { '127.0.0.1': 2, '::1': 2 });
  assert.deepEqual(
    (await music(both)).hosts.map((h) => h.address),
    [`127.0.0.1:${up.port}`, `[::1]:${up.port}`],
  );
  const v6 = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address, family: 'ipv6' });
  assert.deepEqual(await servedBy(v6, 3), { '::1': 3 });
  const v4only = `v4.${NAME}`;
  dns.set(v4only, { a: ['127.0.0.1'], ttl: 30 });
  const noAaaa = await gatewayFor({ name: v4only, port: up.port, resolver: dns.address });
  assert.equal((await music(noAaaa)).discovery.last_result, 'ok', 'a name without AAAA records is no failure');
});

test(
  'scheme https: discovered addresses are reached over ' + 'TLS, their certificates checked for the DNS name',
  async () => {
    const tlsDir = join(import.meta.dirname, 'support', 'tls');
    const server = createHttpsServer(
      { key: readFileSync(join(tlsDir, 'music-key.pem')), cert: readFileSync(join(tlsDir, 'music-cert.pem')) },
      (_req, res) => res.end('secure'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    server.on('connection', (s: Socket) => cleanups.push(() => s.destroy()));
    const port = (server.address() as AddressInfo).port;
    const dns = await zone();
    dns.set('music.example', { a: ['127.0.0.1'], ttl: 30 });
    dns.set('other.example', { a: ['127.0.0.1'], ttl: 30 });
    const ca = join(tlsDir, 'music-cert.pem');
    const ask = async (name: string, tls: Record<string, unknown>): Promise<ClientResult> => {
      const gw = await gatewayFor({ name, port, resolver: dns.address, scheme: 'https' }, { tls: { ca, ...tls } });
      return fetchRaw(`${gw.url}/x`, { headers: { accept: 'application/json' }, timeoutMs: 10_000 });
    };
    const ok = await ask('music.example', {});
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'secure');
    const wrongName = await ask('other.example', {});
    assert.equal(wrongName.status, 502, 'the certificate is for music.example, not other.example');
    assert.match(String(wrongName.headers['proxy-status']), /error=tls_certificate_error/);
    assert.equal((await ask('other.example', { servername: 'music.example' })).status, 200, 'tls.servername wins');
  },
);

const reloadTitle =
  'a reload keeps an unchanged name’s hosts without asking again; ' + 'a changed name is resolved before traffic moves';
test(reloadTitle, async () => {
  const up = await replicas(['127.0.0.1', '127.0.0.2']);
  cleanups.push(() => up.close());
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.1'], ttl: 60 });
  dns.set(`other.${NAME}`, { a: ['127.0.0.2'], ttl: 60 });
  const config = (name: string, connect: string) => ({
    upstreams: {
      music: {
        dns: { name, port: up.port, resolver: dns.address },
        healthCheck: { enabled: false },
        timeouts: { connect },
      },
    },
    routes: [{ match: { path: '/' }, upstream: 'music' }],
    server: NO_LOOP_GUARD,
  });
  const gw = await startGateway(config(NAME, '1s') as never);
  cleanups.push(() => gw.close());
  const asked = dns.questions.length;
  const load = runLoad(`${gw.url}/x`, { total: 300, concurrency: 4 });
  await gw.gateway.reload(config(NAME, '2s') as never);
  assert.equal(dns.questions.length, asked, 'no question on a reload that keeps the name');
  assert.equal((await music(gw)).hosts.length, 1);
  await gw.gateway.reload(config(`other.${NAME}`, '2s') as never);
  assert.equal((await music(gw)).hosts[0]!.address, `127.0.0.2:${up.port}`);
  const result = await load;
  assert.deepEqual(Object.keys(result.byStatus), ['200'], result.errors.join('; '));
  assert.deepEqual(await servedBy(gw, 2), { '127.0.0.2': 2 });
});

test('a reload that waits for a new name to resolve does not undo a reload made meanwhile', async () => {
  const up = await replicas(['127.0.0.1']);
  cleanups.push(() => up.close());
  const dns = await zone();
  dns.set(NAME, { a: ['127.0.0.1'], ttl: 60 });
  // The new name's first question goes unanswered: its reload waits for c-ares to ask again (1 s).
  dns.set(`silent.${NAME}`, { a: ['127.0.0.1'], ttl: 60 });
  const config = (name: string, prefix: string) => ({
    upstreams: { music: { dns: { name, port: up.port, resolver: dns.address }, healthCheck: { enabled: false } } },
    routes: [{ match: { path: prefix }, upstream: 'music' }],
    server: NO_LOOP_GUARD,
  });
  const gw = await startGateway(config(NAME, '/') as never);
  cleanups.push(() => gw.close());
  dns.mode = 'drop';
  const waiting = gw.gateway.reload(config(`silent.${NAME}`, '/first') as never);
  await new Promise((r) => setTimeout(r, 200));
  dns.mode = 'answer';
  await gw.gateway.reload(config(NAME, '/second') as never);
  assert.equal(gw.gateway.config.routes[0]!.match.path, '/second');
  await waiting;
  assert.equal(gw.gateway.config.routes[0]!.match.path, '/second', 'the later configuration stays in force');
  assert.equal((await fetchRaw(`${gw.url}/second/x`)).status, 200);
});

test(
  "an operator's drain names a discovered host by " + 'address, and holds when the host leaves and comes back',
  async () => {
    const up = await replicas(['127.0.0.1', '127.0.0.2']);
    cleanups.push(() => up.close());
    const dns = await zone();
    dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2'], ttl: 0 });
    const gw = await gatewayFor({ name: NAME, port: up.port, resolver: dns.address, refresh: { min: '150ms' } });
    const drained = await fetch(`${gw.adminUrl}/api/drain`, {
      method: 'PUT',
      headers: JSON_BODY,
      body: JSON.stringify({ upstream: 'music', host: `127.0.0.2:${up.port}`, drain: true }),
    });
    assert.equal(drained.status, 200);
    assert.deepEqual(await servedBy(gw, 4), { '127.0.0.1': 4 });
    dns.set(NAME, { a: ['127.0.0.1'], ttl: 0 });
    await waitFor('the host to leave', async () => (await music(gw)).hosts.length === 1);
    dns.set(NAME, { a: ['127.0.0.1', '127.0.0.2'], ttl: 0 });
    await waitFor('the host to return', async () => (await music(gw)).hosts.length === 2);
    assert.equal((await music(gw)).hosts[1]!.state, 'draining');
    assert.deepEqual(await servedBy(gw, 4), { '127.0.0.1': 4 });
  },
);

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'gangway.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

test('bad dns settings are refused with file, line and field', () => {
  const upstream = (body: string) =>
    `upstreams:\n  music:\n${body}\nroutes:\n  - match: { path: "/" }\n    upstream: music\n`;
  const cases: Array<[string, string]> = [
    [
      '    hosts: ["127.0.0.1:7001"]\n    dns: { name: music.svc.test, port: 7001 }',
      'gangway.yaml:4:10 upstreams.music.dns: hosts and dns both say where the hosts are: keep one of them',
    ],
    [
      '    balance: p2c',
      'gangway.yaml:3:5 upstreams.music: an upstream needs hosts (a list of addresses) ' +
        'or dns (a name to discover them by)',
    ],
    [
      '    dns: { name: music.svc.test }',
      'gangway.yaml:3:10 upstreams.music.dns.port: the port the discovered addresses serve on is needed ' +
        '(or srv: true to read it from SRV records)',
    ],
    [
      '    dns: { name: _http._tcp.music.svc.test, srv: true, port: 80 }',
      'gangway.yaml:3:62 upstreams.music.dns.port: SRV records carry their ports: leave port out',
    ],
    [
      '    dns: { name: "music svc", port: 80 }',
      'gangway.yaml:3:18 upstreams.music.dns.name: not a DNS name (write it like "music.default.svc.cluster.local")',
    ],
    [
      '    dns: { name: 10.0.0.1, port: 80 }',
      'gangway.yaml:3:18 upstreams.music.dns.name: an address, not a name: list it under hosts instead',
    ],
    [
      '    dns: { name: music.svc.test, port: 80, resolver: "dns.local:53" }',
      'gangway.yaml:3:54 upstreams.music.dns.resolver: "dns.local:53" is not a DNS server address ' +
        '(write it like "10.96.0.10", "127.0.0.1:5353" or "[::1]:53")',
    ],
    [
      '    dns: { name: music.svc.test, port: 80, refresh: { min: 10s, max: 5s } }',
      'gangway.yaml:3:53 upstreams.music.dns.refresh: min is above max',
    ],
    [
      '    dns: { name: music.svc.test, port: 80, refresh: 10ms }',
      'gangway.yaml:3:53 upstreams.music.dns.refresh: ' +
        're-resolving more often than every 100ms would flood the resolver',
    ],
    [
      '    dns: { name: music.svc.test, port: 70000 }',
      'gangway.yaml:3:40 upstreams.music.dns.port: a port is 1 to 65535',
    ],
    [
      '    dns: { name: music.svc.test, port: 80 }\n    tls: { verify: false }',
      'gangway.yaml:4:10 upstreams.music.tls: tls settings are for hosts reached over HTTPS: set dns.scheme to https',
    ],
    [
      '    dns: { name: music.svc.test, port: 80, resolver: "300.1.1.1" }',
      'gangway.yaml:3:54 upstreams.music.dns.resolver: "300.1.1.1" is not a DNS server address ' +
        '(write it like "10.96.0.10", "127.0.0.1:5353" or "[::1]:53")',
    ],
  ];
  for (const [body, expected] of cases) assert.deepEqual(problemsOf(upstream(body)), [expected], body);

  const good = parseConfigText(
    upstream('    dns: { name: Music.Svc.Test., port: 7001, resolver: "[::1]", refresh: 5s }'),
    'gangway.yaml',
  );
  assert.deepEqual(good.upstreams.music!.dns, {
    name: 'music.svc.test',
    port: 7001,
    srv: false,
    family: 'any',
    resolver: '[::1]:53',
    refresh: { min: 5000, max: 5000 },
    scheme: 'http',
  });
  assert.deepEqual(good.upstreams.music!.hosts, []);
});
