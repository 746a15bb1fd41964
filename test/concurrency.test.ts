/**
 * The adaptive concurrency limit in front of an upstream: requests above the limit wait
 * briefly in a queue by priority, and those that cannot be served in time get an immediate
 * 503 connection_limit_reached with Retry-After — never a timeout. Upstreams here have a
 * real capacity: they work on a fixed number of requests at a time and queue the rest.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GradientLimit } from '../src/admission/gradient-limit.js';
import { fetchRaw, httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An upstream that works on `slots` requests at a time for `ms` each; the rest wait their turn. */
async function boundedUpstream(slots: number, ms: number) {
  const served: string[] = [];
  let busy = 0;
  const waiting: Array<[IncomingMessage, ServerResponse]> = [];
  const work = (req: IncomingMessage, res: ServerResponse): void => {
    busy++;
    served.push(req.url!);
    setTimeout(() => {
      res.end('ok');
      busy--;
      const next = waiting.shift();
      if (next) work(...next);
    }, ms);
  };
  const up = await httpUpstream((req, res) => {
    req.resume();
    if (busy < slots) work(req, res);
    else waiting.push([req, res]);
  });
  return { ...up, served };
}

test('requests over a full queue and past the wait limit get 503 connection_limit_reached at once; the rest are served', async () => {
  const up = await boundedUpstream(2, 300);
  const gw = await startGateway(
    minimalConfig([up.address], { upstream: { concurrency: { min: 2, max: 2, maxWait: '100ms' } } }),
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const first = await Promise.all(
    Array.from({ length: 6 }, () => fetchRaw(`${gw.url}/a`, { headers: { accept: 'application/json' } })),
  );
  assert.deepEqual(first.map((r) => r.status).sort(), [200, 200, 503, 503, 503, 503]);
  for (const shed of first.filter((r) => r.status === 503)) {
    assert.equal(shed.headers['retry-after'], '1');
    assert.equal(
      shed.headers['proxy-status'],
      'gangway; error=connection_limit_reached; details="upstream music at its concurrency limit"',
    );
    assert.equal(
      (JSON.parse(shed.body.toString()) as { type: string }).type.endsWith('connection_limit_reached'),
      true,
    );
    assert.ok(shed.ms < 290, `shed while the admitted requests were still upstream (${shed.ms.toFixed(0)} ms)`);
  }
  assert.equal(up.served.length, 2, 'shed requests never reached the upstream');

  // Now the gate knows an answer takes ~300 ms: with two slots, nobody can be served within
  // 100 ms, so requests arriving while both slots are busy are refused on arrival.
  const busy = [fetchRaw(`${gw.url}/a`), fetchRaw(`${gw.url}/a`)];
  await new Promise((r) => setTimeout(r, 30));
  const refused = await Promise.all(Array.from({ length: 3 }, () => fetchRaw(`${gw.url}/a`)));
  assert.deepEqual(
    refused.map((r) => r.status),
    [503, 503, 503],
  );
  // Waiting out the queue would take maxWait (100 ms) at least, and a slot ~300 ms; an answer on
  // arrival takes a few ms, more on a loaded machine: the margin between them is what counts.
  const slowest = Math.max(...refused.map((r) => r.ms));
  const answered = await Promise.all(busy);
  assert.ok(
    slowest < Math.min(...answered.map((r) => r.ms)) / 2,
    `refused on arrival (${slowest.toFixed(0)} ms), well before the admitted ones were answered`,
  );
  assert.deepEqual(
    answered.map((r) => r.status),
    [200, 200],
    'the admitted ones were served',
  );

  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  assert.match(metrics, /gangway_concurrency_limit\{upstream="music"\} 2/);
  assert.match(metrics, /gangway_shed_total\{route="\/",reason="deadline"\} 4/);
  assert.match(metrics, /gangway_shed_total\{route="\/",reason="wait_too_long"\} 3/);
  assert.match(metrics, /gangway_queue_depth\{upstream="music"\} 0/);
  const log = gw.logs.find((l) => l.status === 503);
  assert.equal(log?.failure, 'connection_limit_reached');
});

test('a queued request is served when a slot frees, higher priority first; a full queue makes room for it by shedding lower priority', async () => {
  const up = await boundedUpstream(1, 150);
  const gw = await startGateway({
    upstreams: {
      music: {
        hosts: [up.address],
        healthCheck: { enabled: false },
        concurrency: { min: 1, max: 1, maxWait: '2s', queueSize: 2 },
      },
    },
    routes: [
      { name: 'stream', match: { path: '/stream' }, upstream: 'music', priority: 'high' },
      { name: 'cover', match: { path: '/cover' }, upstream: 'music', priority: 'low' },
    ],
  });
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const inFlight = fetchRaw(`${gw.url}/cover/0`);
  await new Promise((r) => setTimeout(r, 20));
  const low1 = fetchRaw(`${gw.url}/cover/1`);
  const low2 = fetchRaw(`${gw.url}/cover/2`);
  await new Promise((r) => setTimeout(r, 20));
  const high = fetchRaw(`${gw.url}/stream/1`); // the queue is full: the newest cover request gives way
  const results = await Promise.all([inFlight, low1, low2, high]);
  assert.deepEqual(
    results.map((r) => r.status),
    [200, 200, 503, 200],
  );
  assert.deepEqual(up.served, ['/cover/0', '/stream/1', '/cover/1'], 'the stream went ahead of the waiting cover');
  const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as {
    upstreams: Array<{ concurrency: { limit: number; inFlight: number; waiting: number } }>;
    routes: Array<{ priority: string }>;
  };
  assert.deepEqual(
    status.routes.map((r) => r.priority),
    ['high', 'low'],
  );
  assert.deepEqual(
    { ...status.upstreams[0]!.concurrency, minRttMs: 0, rttMs: 0 },
    { upstream: 'music', limit: 1, inFlight: 0, waiting: 0, minRttMs: 0, rttMs: 0, probing: false },
  );
});

test('a client that leaves while queued gives its place up', async () => {
  const up = await boundedUpstream(1, 200);
  const gw = await startGateway(
    minimalConfig([up.address], { upstream: { concurrency: { min: 1, max: 1, maxWait: '5s' } } }),
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const first = fetchRaw(`${gw.url}/1`);
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(fetchRaw(`${gw.url}/2`, { timeoutMs: 50 }), /client timeout/);
  const third = fetchRaw(`${gw.url}/3`);
  assert.deepEqual([(await first).status, (await third).status], [200, 200]);
  assert.deepEqual(up.served, ['/1', '/3'], 'the request whose client left was never sent');
});

test('the limit shrinks when answers slow down, grows while they stay fast and the limit is used, and probes the unloaded latency', () => {
  const limit = new GradientLimit({ min: 4, max: 1000, initial: 32, tolerance: 1.25, probeInterval: 30_000 });
  let now = 0;
  assert.equal(limit.current, 32, 'it starts at the initial limit, measuring the unloaded latency');
  assert.equal(limit.probing, true);
  for (let i = 0; i < 30; i++) limit.sample(20, (now += 5));
  assert.equal(limit.minRttMs, 20);
  assert.equal(limit.current, 32);
  // Rounds of 20 answers over 45 ms, each a little longer than the controller's interval
  // (two unloaded round trips); the next probe is due 0.85–1.15 s after this one ended.
  const round = (inFlight: number, ms: (limit: number) => number): void => {
    limit.noteInFlight(inFlight);
    for (let i = 0; i < 20; i++) limit.sample(ms(limit.current), (now += 2.25));
  };
  // A host that queues beyond 8 at a time: answers slow down in proportion.
  for (let r = 0; r < 10; r++) round(limit.current, (l) => 20 * Math.max(1, l / 8));
  assert.ok(
    limit.current >= 10 && limit.current <= 16,
    `settles near the host's capacity of 8 plus headroom (${limit.current})`,
  );
  const settled = limit.current;
  // Fast answers, but the pool only uses two slots: nothing learned about a larger limit,
  // and the unused headroom drifts down towards twice the recent peak (still above it here).
  for (let r = 0; r < 5; r++) round(2, () => 20);
  assert.ok(limit.current <= settled && limit.current >= settled - 3, `${limit.current} stays near ${settled}`);
  // Fast answers with the limit in use: it grows.
  for (let r = 0; r < 3; r++) round(limit.current, () => 20);
  assert.ok(limit.current > settled * 2, `grew from ${settled} to ${limit.current}`);
  // After the probe interval it measures again, at half the limit in use.
  const grown = limit.current;
  now += 40_000;
  limit.noteInFlight(grown);
  limit.sample(20, now);
  assert.equal(limit.probing, true);
  assert.equal(limit.current, Math.ceil(grown / 2));
});

test('a limit nobody uses drifts down to about twice the recent peak, and grows again once used', () => {
  const limit = new GradientLimit({ min: 4, max: 1000, initial: 100, tolerance: 1.25, probeInterval: 30_000 });
  let now = 0;
  // Probes of the unloaded latency come every second or so and lower the limit while they
  // last; each look at the limit lets a running probe finish first.
  const settled = (inFlight: number): number => {
    while (limit.probing) {
      limit.noteInFlight(inFlight);
      limit.sample(20, (now += 1));
    }
    return limit.current;
  };
  for (let i = 0; i < 30; i++) {
    limit.noteInFlight(3);
    limit.sample(20, (now += 5));
  }
  assert.equal(settled(3), 100);
  for (let r = 0; r < 60; r++) {
    limit.noteInFlight(5);
    for (let i = 0; i < 5; i++) limit.sample(20, (now += 10));
  }
  const low = settled(5);
  assert.ok(low >= 10 && low <= 16, `an idle limit came down to ${low}`);
  for (let r = 0; r < 6; r++) {
    settled(limit.current);
    limit.noteInFlight(limit.current);
    for (let i = 0; i < 5; i++) limit.sample(20, (now += 10));
  }
  const grown = settled(low);
  assert.ok(grown > 2 * low, `and grows from ${low} to ${grown} once used`);
});

test('a static limit (min = max) never changes', () => {
  const limit = new GradientLimit({ min: 10, max: 10, initial: 32, tolerance: 1.25, probeInterval: 30_000 });
  for (let i = 0; i < 100; i++) limit.sample(500, i * 10);
  assert.equal(limit.current, 10);
  assert.equal(limit.probing, false);
});

test('a reloaded pool starts from the limit the running one learned', () => {
  const settings = { min: 4, max: 1000, initial: 100, tolerance: 1.25, probeInterval: 30_000 };
  const learned = new GradientLimit(settings);
  let now = 0;
  for (let i = 0; i < 30; i++) learned.sample(20, (now += 1));
  for (let r = 0; r < 10; r++) {
    learned.noteInFlight(learned.current);
    for (let i = 0; i < 20; i++) learned.sample(20 * Math.max(1, learned.current / 8), (now += 2.25));
  }
  const fresh = new GradientLimit(settings);
  fresh.inheritFrom(learned);
  assert.equal(fresh.current, learned.current);
  assert.ok(fresh.current < 30);
  assert.equal(fresh.minRttMs, 20);
  assert.equal(fresh.probing, false);
});
