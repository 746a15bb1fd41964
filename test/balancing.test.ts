/**
 * The balancer's choices, measured over many picks: a slow host draws little traffic, a
 * host back from an ejection ramps up over the slow-start window, and the pool panics
 * (spreads over every host) when too few are in rotation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../src/index.js';
import { UpstreamPool, type PoolEvents } from '../src/upstream/pool.js';

const quiet: PoolEvents = { ejected() {}, healthChanged() {}, hostsChanged() {}, hostClosed() {}, resolved() {} };

function pool(hosts: number, extra: Record<string, unknown> = {}): UpstreamPool {
  const config = validateConfig({
    upstreams: {
      music: {
        hosts: Array.from({ length: hosts }, (_, i) => `127.0.0.1:${7001 + i}`),
        healthCheck: { enabled: false },
        ...extra,
      },
    },
    routes: [{ upstream: 'music' }],
  });
  return new UpstreamPool('music', config.upstreams.music!, quiet);
}

function shares(p: UpstreamPool, picks = 20_000): number[] {
  const counts = p.hosts.map(() => 0);
  for (let i = 0; i < picks; i++) counts[p.hosts.indexOf(p.pick()!)]!++;
  return counts.map((c) => c / picks);
}

test('a host that fails fast is not mistaken for the fastest: its failures count as slow answers', async () => {
  const p = pool(2);
  p.hosts[0]!.observeLatency(30);
  p.hosts[1]!.observeLatency(30);
  for (let i = 0; i < 5; i++) p.hosts[1]!.observeFailure(); // a 503 storm, answered in 1 ms
  const s = shares(p);
  assert.ok(s[1]! < 0.05, `the failing host's share ${s[1]}`);
  await p.close();
});

test(
  'weights (from SRV records) set the shares: exactly for ' + 'round-robin, spread out; by draw for random and p2c',
  async () => {
    const rr = pool(3, { balance: 'round-robin' });
    rr.hosts[0]!.weight = 3;
    const order = Array.from({ length: 10 }, () => rr.hosts.indexOf(rr.pick()!));
    assert.deepEqual(order, [0, 1, 0, 2, 0, 0, 1, 0, 2, 0], 'smooth: a b a c a, not a a a b c');
    assert.deepEqual(
      shares(rr, 5000).map((s) => Math.round(s * 100)),
      [60, 20, 20],
    );
    const random = pool(2, { balance: 'random' });
    random.hosts[1]!.weight = 4;
    const r = shares(random);
    assert.ok(Math.abs(r[1]! - 0.8) < 0.02, `random: ${r}`);
    const p2c = pool(2, { balance: 'p2c' });
    p2c.hosts[1]!.weight = 4;
    const p = shares(p2c);
    // Unmeasured hosts cost the same: each draw of two is decided by weight alone, about 0.8 for the heavy one.
    assert.ok(p[1]! > 0.7, `p2c: ${p}`);
    for (const x of [rr, random, p2c]) await x.close();
  },
);

test('a host ten times slower draws a small share', async () => {
  const p = pool(3);
  p.hosts[0]!.observeLatency(5);
  p.hosts[1]!.observeLatency(5);
  p.hosts[2]!.observeLatency(50);
  const s = shares(p);
  assert.ok(s[2]! < 0.05, `slow host share ${s[2]}`);
  await p.close();
});

test('a host back from an ejection ramps up over the slow-start window', async () => {
  const p = pool(2, { slowStart: '10s', balance: 'p2c' });
  const now = Date.now();
  p.hosts[1]!.ejectedUntil = now - 1000; // back for 1 s of a 10 s window: 10% warm
  const early = shares(p)[1]!;
  p.hosts[1]!.ejectedUntil = now - 20_000; // long back: fully warm
  const late = shares(p)[1]!;
  assert.ok(early < 0.2, `share while warming ${early}`);
  assert.ok(late > 0.4, `share once warm ${late}`);
  await p.close();
});

test('an ejected host gets nothing while enough others are in rotation; in panic every host shares', async () => {
  const p = pool(5);
  p.hosts[0]!.ejectedUntil = Date.now() + 60_000;
  assert.equal(shares(p)[0], 0);
  p.hosts[1]!.healthy = false; // 3 of 5 left: above the 25% panic threshold
  assert.deepEqual(
    shares(p).map((x) => x > 0),
    [false, false, true, true, true],
  );
  for (const h of p.hosts.slice(0, 4)) h.healthy = false; // 1 of 5 left: below it
  const s = shares(p);
  assert.ok(
    s.every((x) => x > 0.1),
    `panic spreads over all hosts: ${s.map((x) => x.toFixed(2)).join(' ')}`,
  );
  await p.close();
});

test('with no host in rotation and no answer for a while, the pool lets one request a second through and refuses the rest at once', async () => {
  const p = pool(3, { healthCheck: { enabled: false } });
  const now = Date.now();
  for (const h of p.hosts) h.healthy = false;
  // An answer 5 s ago: the hosts may be fine and the checks wrong, so requests still go (panic).
  p.noteAnswer(now - 5000);
  assert.ok(p.pick(undefined, now) !== undefined, 'recent answers: requests still go to the hosts');
  // Nothing answered for 20 s: one probe, then refusals until a second has passed.
  p.noteAnswer(now - 20_000);
  const picks = Array.from({ length: 50 }, (_, i) => p.pick(undefined, now + i * 10));
  assert.equal(picks.filter((h) => h !== undefined).length, 1, 'one probe in the first half second');
  assert.ok(p.pick(undefined, now + 1100) !== undefined, 'another after a second');
  // A host back in rotation is used whatever the history.
  p.hosts[1]!.healthy = true;
  assert.equal(p.pick(undefined, now + 1200), p.hosts[1], 'a healthy host is picked');
  await p.close();
});
