/**
 * A fleet: several real Gangway processes sharing one real redis-server by their common name.
 * Maintenance switched on through one instance's admin API holds on the other within a second;
 * a route's rate limit holds for the fleet; Redis stopped under load fails no request (the limit
 * falls back to each instance's share, the status and the metric say the store is unreachable)
 * and a switch flipped during the outage reaches the other instance once Redis is back;
 * incidents survive a restart. Workers on one machine do the same through their supervisor:
 * two forked gateway processes on the parent's store.
 */
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createGateway } from '../src/index.js';
import { MemoryStore } from '../src/state/memory.js';
import { serveStore } from '../src/state/supervisor.js';
import { closedPort, httpUpstream } from './support/harness.js';
import { redisMissing, startRedis } from './support/redis.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
const noRedis = redisMissing();

interface Member {
  url: string;
  adminUrl: string;
  child: ChildProcess;
  output(): string;
}

/** One gateway process of the fleet, started through the CLI as an operator would. */
async function startMember(yaml: string): Promise<Member> {
  const [listen, admin] = [await closedPort(), await closedPort()];
  const dir = mkdtempSync(join(tmpdir(), 'gangway-fleet-'));
  const file = join(dir, 'gangway.yaml');
  writeFileSync(file, `listen: "127.0.0.1:${listen}"\nadmin: "127.0.0.1:${admin}"\nlog: { access: false }\n${yaml}`);
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '-c', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  });
  const deadline = Date.now() + 60_000;
  while (!out.includes('gangway listening')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway did not start:\n${out}`);
    await sleep(25);
  }
  return {
    url: `http://127.0.0.1:${listen}`,
    adminUrl: `http://127.0.0.1:${admin}`,
    child,
    output: () => out,
  };
}

async function fleetConfig(redisUrl: string, route = ''): Promise<string> {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  cleanups.push(() => up.close());
  // The event-loop guard is off: on a test machine busy with other work it would shed requests
  // before the rate limit sees them, and the limit's accuracy is what these tests measure.
  return `name: fleet${process.pid}
server: { maxEventLoopDelay: 0 }
store: { redis: { url: "${redisUrl}", deadline: "20ms" } }
upstreams:
  music: { hosts: ["${up.address}"], healthCheck: { enabled: false } }
routes:
  - { name: api, match: { path: "/" }, upstream: music${route} }
`;
}

async function switchMaintenance(member: Member, enabled: boolean): Promise<void> {
  const res = await fetch(`${member.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ enabled, message: 'switched by the fleet test' }),
  });
  assert.equal(res.status, 200);
}

async function statusOf(url: string): Promise<number> {
  const res = await fetch(`${url}/`);
  await res.arrayBuffer();
  return res.status;
}

/** Polls `url` until it answers `status`; resolves with how long that took (ms), or rejects after `withinMs`. */
async function timeUntil(url: string, status: number, withinMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < withinMs) {
    if ((await statusOf(url)) === status) return performance.now() - started;
    await sleep(10);
  }
  throw new Error(`${url} did not answer ${status} within ${withinMs} ms`);
}

/** An open-loop load: `perSecond` requests a second, spread over the members, every answer recorded by time. */
function offerLoad(members: Member[], perSecond: number) {
  const agent = new Agent({ connections: 32, keepAliveTimeout: 10_000 });
  const answers: Array<{ at: number; status: number; ms: number; why?: string }> = [];
  const started = performance.now();
  let sent = 0;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const one = async (member: Member): Promise<void> => {
    const t = performance.now();
    let status = 0;
    let why: string | undefined;
    try {
      const res = await request(`${member.url}/`, { dispatcher: agent, headersTimeout: 15_000, bodyTimeout: 15_000 });
      await res.body.text();
      status = res.statusCode;
      if (status >= 500) why = String(res.headers['proxy-status']);
    } catch (err) {
      status = 0;
      why = (err as Error).message;
    }
    answers.push({ at: t - started, status, ms: performance.now() - t, why });
  };
  const loop = (async () => {
    while (!stopped) {
      const due = ((performance.now() - started) * perSecond) / 1000;
      while (sent < due) {
        const p = one(members[sent % members.length]!);
        sent++;
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await sleep(5);
    }
    await Promise.all(inFlight);
    await agent.close();
  })();
  return {
    answers,
    elapsed: () => performance.now() - started,
    async stop() {
      stopped = true;
      await loop;
      return answers;
    },
  };
}

describe('a fleet on one Redis', { skip: noRedis }, () => {
  test('maintenance switched on through one instance holds on the other within a second, and off again', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const yaml = await fleetConfig(redis.url);
    const [a, b] = await Promise.all([startMember(yaml), startMember(yaml)]);
    assert.equal(await statusOf(b.url), 200);
    await switchMaintenance(a, true);
    const on = await timeUntil(b.url, 503, 1000);
    const page = await fetch(`${b.url}/`, { headers: { accept: 'application/json' } });
    assert.match(String(page.headers.get('proxy-status')), /details="maintenance: upstream music"/);
    assert.equal(((await page.json()) as { title: string }).title, 'Down for maintenance');
    await switchMaintenance(a, false);
    const off = await timeUntil(b.url, 200, 1000);
    assert.ok(on < 1000 && off < 1000, `on after ${Math.round(on)} ms, off after ${Math.round(off)} ms`);
    // The log is written in batches: give it a moment.
    const logged = Date.now() + 3000;
    while (!/maintenance switched on \(by another instance\)/.test(b.output()) && Date.now() < logged) await sleep(50);
    assert.match(b.output(), /maintenance switched on \(by another instance\)/);
  });

  test(
    'a route rate limit holds for the fleet: two ' + 'instances offered 5× never admit more than the limit',
    async (t) => {
      const redis = await startRedis();
      cleanups.push(() => redis.stop());
      const yaml = await fleetConfig(redis.url, ', rateLimit: { requests: 100, window: "1s" }');
      const members = await Promise.all([startMember(yaml), startMember(yaml)]);
      // Each instance counts the other before the load starts (heartbeats each second).
      await sleep(2200);
      const load = offerLoad(members, 500);
      await sleep(4000);
      const answers = await load.stop();
      // Until the last answer: a busy machine answers a backlog after the load stops, and the limit
      // goes on refilling while it does.
      const last = Math.max(...answers.map((a) => a.at + a.ms));
      // Passed the limit: everything not refused with 429 (the event-loop guard, which sheds before the
      // limit, is off; a 503 after it is the upstream's concurrency limit on a busy machine).
      const admitted = answers.filter((a) => a.status !== 429 && a.status !== 0).length;
      const byStatus: Record<number, number> = {};
      for (const a of answers) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
      for (const m of members)
        t.diagnostic(
          m
            .output()
            .split('\n')
            .filter((l) => l.includes('store'))
            .join('\n'),
        );
      t.diagnostic(`${JSON.stringify(byStatus)}; a 503: ${answers.find((a) => a.status === 503)?.why}`);
      assert.equal(byStatus[0] ?? 0, 0, 'every request was answered');
      const expected = 100 + (100 * last) / 1000; // the burst, then the refill over the run
      const error = (admitted - expected) / expected;
      t.diagnostic(`admitted ${admitted} of ${answers.length}, expected ${Math.round(expected)}`);
      const passedBySecond: number[] = [];
      const refusedBySecond: number[] = [];
      for (const a of answers) {
        const second = Math.floor((a.at + a.ms) / 1000);
        const counts = a.status === 429 ? refusedBySecond : passedBySecond;
        counts[second] = (counts[second] ?? 0) + 1;
      }
      t.diagnostic(`passed the limit, by second answered: ${[...passedBySecond].map((n) => n ?? 0).join(', ')}`);
      // Never over the limit (5%). Near it too when the limit was pressed all along (a refusal every
      // second): within 5% on a quiet machine (npm run bench:fleet), within 20% here, where two
      // gateways, their upstream and this load share two busy cores; a machine too busy to bring the
      // load to the gateways at all leaves the limit idle at times, and only the upper bound holds.
      assert.ok(
        error <= 0.05,
        `admitted ${admitted}, over the ${Math.round(expected)} allowed by ${(error * 100).toFixed(1)}%`,
      );
      const pressed = Array.from({ length: Math.floor(last / 1000) }, (_, s) => (refusedBySecond[s] ?? 0) > 0);
      if (pressed.every(Boolean))
        assert.ok(
          error >= -0.2,
          `admitted ${admitted}, under the ${Math.round(expected)} allowed by ${(-error * 100).toFixed(1)}%`,
        );
      else t.diagnostic('the limit was not pressed every second (a busy machine): only the upper bound is checked');
    },
  );

  test(
    'Redis stopped under load fails no request: the limit falls back to a local share and the status says ' +
      'unreachable; a switch flipped meanwhile reaches the other instance once Redis is back',
    async (t) => {
      const redis = await startRedis();
      cleanups.push(() => redis.stop());
      const yaml = await fleetConfig(redis.url, ', rateLimit: { requests: 50, window: "1s" }');
      const [a, b] = await Promise.all([startMember(yaml), startMember(yaml)]);
      await sleep(2200);
      // Two and a half times the limit: light enough for a busy test machine to answer at once.
      const load = offerLoad([a, b], 125);
      await sleep(1500);
      await redis.stop();
      const stoppedAt = load.elapsed();
      await sleep(1000);
      const status = (await (await fetch(`${a.adminUrl}/api/status`)).json()) as {
        store: { kind: string; reachable: boolean; last_error?: string; instances: number };
      };
      assert.equal(status.store.kind, 'redis');
      assert.equal(status.store.reachable, false, 'the status says the store is unreachable');
      assert.equal(status.store.instances, 2, 'the last count of instances is kept');
      const metrics = await (await fetch(`${b.adminUrl}/metrics`)).text();
      assert.match(metrics, /gangway_store_up\{kind="redis"\} 0/);
      const page = await (await fetch(`${a.adminUrl}/status`)).text();
      assert.match(page, /redis unreachable since <time[^>]*>[^<]*<\/time>: rate limits use this instance/);
      await sleep(2000);
      const outageEnd = load.elapsed();
      const answers = await load.stop();

      const byStatus: Record<number, number> = {};
      for (const x of answers) byStatus[x.status] = (byStatus[x.status] ?? 0) + 1;
      // A 503 shed by a machine too busy for the load (the event-loop guard, with Retry-After) is
      // a refusal, not a failure — and it is no business of the store's.
      const shed = answers.filter((x) => x.status === 503 && x.why?.includes('connection_limit_reached'));
      const failed = answers.filter((x) => x.status !== 200 && x.status !== 429 && !shed.includes(x));
      t.diagnostic(`${JSON.stringify(byStatus)}; shed before the stop ${shed.filter((x) => x.at < stoppedAt).length}`);
      const when = failed.map((x) => `${Math.round(x.at - stoppedAt)}+${Math.round(x.ms)} ms`).join(', ');
      assert.equal(failed.length, 0, `no request failed: ${JSON.stringify(byStatus)} ${failed[0]?.why ?? ''} ${when}`);
      // In the outage, after a second to notice: each instance admits its share, 50/s ÷ 2.
      const from = stoppedAt + 1000;
      // By when each was answered: a request's admission is decided then, not when the client queued it.
      const outage = answers.filter((x) => x.at + x.ms >= from && x.at + x.ms < outageEnd);
      const admitted = outage.filter((x) => x.status === 200).length;
      const expected = (50 * (outageEnd - from)) / 1000;
      t.diagnostic(
        `during the outage admitted ${admitted} of ${outage.length}, expected about ${Math.round(expected)}`,
      );
      assert.ok(
        // Wide enough for a busy test machine; refusing all (0) or the whole limit each (2×) is far outside.
        admitted >= expected * 0.7 && admitted <= expected * 1.3 + 5,
        `admitted ${admitted} in the outage, expected about ${Math.round(expected)}`,
      );

      // Flipped during the outage, on one instance only; it reaches the other when Redis is back.
      await switchMaintenance(a, true);
      assert.equal(await statusOf(a.url), 503, 'the instance switched answers maintenance at once');
      assert.notEqual(await statusOf(b.url), 503, 'the other cannot know yet');
      await redis.start();
      const reached = await timeUntil(b.url, 503, 4000);
      t.diagnostic(`the switch reached the other instance ${Math.round(reached)} ms after Redis started`);
      const back = (await (await fetch(`${b.adminUrl}/api/status`)).json()) as { store: { reachable: boolean } };
      assert.equal(back.store.reachable, true);
      assert.match(
        await (await fetch(`${b.adminUrl}/status`)).text(),
        /redis reachable since <time[^>]*>[^<]*<\/time> · shared by \d instances?/,
      );
    },
  );

  test('incidents survive a restart: a gateway started again lists the incident its predecessor saw', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const dead = await closedPort();
    const config = {
      name: `incidents${process.pid}`,
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      store: { redis: { url: redis.url, deadline: '50ms' } },
      upstreams: { music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } } },
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'music' }],
      log: { level: 'silent' as const },
    };
    const first = createGateway(config, { processMetrics: false, statusStepMs: 100 });
    const { proxy } = await first.listen();
    for (let i = 0; i < 10; i++) await statusOf(`http://127.0.0.1:${proxy.port}`);
    const deadline = Date.now() + 5000;
    while (first.metrics.incidents.list().length === 0 && Date.now() < deadline) await sleep(50);
    assert.equal(first.metrics.incidents.list().length, 1, 'the failures opened an incident');
    await first.close();

    const second = createGateway(config, { processMetrics: false, statusStepMs: 100 });
    cleanups.push(() => second.close());
    const { admin } = await second.listen();
    const status = (await (await fetch(`http://127.0.0.1:${admin!.port}/api/status`)).json()) as {
      incidents: Array<{ route: string; cause: string; errors: number }>;
    };
    assert.deepEqual(
      status.incidents.map((i) => [i.route, i.cause]),
      [['api', 'connection_refused']],
    );
    assert.ok(status.incidents[0]!.errors >= 5);
  });
});

test('workers share through their supervisor: maintenance switched in one worker holds in the other', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  cleanups.push(() => up.close());
  const store = new MemoryStore();
  const workers = await Promise.all(
    [0, 1].map(async () => {
      const child = fork(join(import.meta.dirname, 'support', 'store-worker.ts'), [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      cleanups.push(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      serveStore(store, child);
      const listening = new Promise<Member>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the worker gateway did not start')), 60_000);
        child.on('message', (m: { test?: string; url?: string; adminUrl?: string }) => {
          if (m.test === 'ready')
            child.send({
              test: 'gateway',
              config: {
                listen: '127.0.0.1:0',
                admin: '127.0.0.1:0',
                upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
                routes: [{ match: { path: '/' }, upstream: 'music' }],
              },
            });
          if (m.test === 'listening') {
            clearTimeout(timer);
            resolve({ url: m.url!, adminUrl: m.adminUrl!, child, output: () => '' });
          }
        });
      });
      return listening;
    }),
  );
  const [a, b] = workers as [Member, Member];
  assert.equal(await statusOf(b.url), 200);
  await switchMaintenance(a, true);
  const took = await timeUntil(b.url, 503, 1000);
  assert.ok(took < 1000);
  const drained = await fetch(`${a.adminUrl}/api/drain`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ upstream: 'music', host: up.address, drain: true }),
  });
  assert.equal(drained.status, 200);
  const deadline = Date.now() + 5000;
  let seen = false;
  while (!seen && Date.now() < deadline) {
    const status = (await (await fetch(`${b.adminUrl}/api/status`)).json()) as {
      upstreams: Array<{ hosts?: Array<{ draining?: boolean; state?: string }> }>;
    };
    seen = JSON.stringify(status.upstreams).includes('drain');
    if (!seen) await sleep(50);
  }
  assert.ok(seen, 'the drain made in one worker shows in the other');
});
