/**
 * The status timeline is the fleet's. Two real Gangway processes share one real redis-server:
 * traffic sent only to one shows in the other's /api/status and status page within a couple of
 * steps, traffic to both is summed, an instance started again draws the hour its predecessor and
 * the other saw, and with Redis stopped each draws its own (and says the rest is missing) while
 * requests go on unhindered, until Redis returns and the steps made meanwhile fill the gap (and,
 * Redis having come back empty, each instance writes its own hour again for the next restart). In one
 * process, over a memory store, the classes of timing: a step from a clock ahead is held until
 * this one's step closes, one that comes late is added where it belongs (and pages redraw the
 * hour), one whose announcement was lost is read within a dozen steps, one of another step
 * length is not counted. Two workers on a fleet's Redis count each
 * step once (it reaches the other worker both over IPC and through Redis) and keep the machine's
 * view while Redis is away; without Redis, test/workers.test.ts checks the machine's view.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createGateway, type Gateway } from '../src/index.js';
import { MemoryStore } from '../src/state/memory.js';
import { startChildGateway, type ChildGateway } from './support/child-gateway.js';
import { fetchRaw, httpUpstream } from './support/harness.js';
import { redisMissing, startRedis, type RedisServer } from './support/redis.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  // Each cleanup bounded, and each one run whatever the one before did.
  for (const c of cleanups.reverse()) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`a cleanup took over 20 s: ${c.toString()}`)), 20_000);
    });
    await Promise.race([Promise.resolve().then(c), late]).catch((err: Error) => console.error(err.message));
    clearTimeout(timer);
  }
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const noRedis = redisMissing();
/** The status step of a gateway process (the default). */
const STEP_MS = 5000;
/** A couple of steps, and the moment a step waits for the others' before it is announced. */
const COUPLE_OF_STEPS_MS = 2 * STEP_MS + 1500;

interface History {
  step_s: number;
  t: number[];
  rps: number[];
  partial?: true;
}
interface Status {
  history: History;
  store: { kind: string; reachable: boolean };
}

/** The requests a status history counts, in all. */
function counted(h: History): number {
  return h.rps.reduce((sum, rps) => sum + Math.round(rps * h.step_s), 0);
}

async function statusOf(member: ChildGateway): Promise<Status> {
  const res = await request(`${member.adminUrl}/api/status?history=1`);
  return (await res.body.json()) as Status;
}

/** Waits until `member`'s /api/status history counts `requests`; rejects with what it counted after `withinMs`. */
async function countsWithin(member: ChildGateway, requests: number, withinMs: number): Promise<number> {
  const started = Date.now();
  let seen = -1;
  while (Date.now() - started < withinMs) {
    seen = counted((await statusOf(member)).history);
    if (seen === requests) return Date.now() - started;
    await sleep(200);
  }
  throw new Error(`${member.adminUrl} counted ${seen} requests, not ${requests}, within ${withinMs} ms`);
}

/** Sends `n` requests one after the other; answers each one's status and time (ms). */
async function send(member: ChildGateway, n: number): Promise<Array<{ status: number; ms: number }>> {
  const out: Array<{ status: number; ms: number }> = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await request(`${member.url}/x`, { headersTimeout: 5000, bodyTimeout: 5000 });
    await res.body.text();
    out.push({ status: res.statusCode, ms: performance.now() - t });
  }
  return out;
}

async function stopMember(member: ChildGateway): Promise<void> {
  if (member.child.exitCode !== null || member.child.signalCode !== null) return;
  member.child.kill('SIGTERM');
  await member.exited;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('two instances on one Redis draw the fleet’s timeline', { skip: noRedis, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let upstream: string;
  let yaml: string;
  let a: ChildGateway;
  let b: ChildGateway;

  const startMember = async (): Promise<ChildGateway> => {
    const member = await startChildGateway(upstream, yaml, [], { startWithinMs: 60_000 });
    cleanups.push(() => stopMember(member));
    return member;
  };

  before(async () => {
    redis = await startRedis();
    cleanups.push(() => redis.stop());
    const up = await httpUpstream((_req, res) => res.end('ok'));
    cleanups.push(() => up.close());
    upstream = up.address;
    yaml = `name: timeline${process.pid}
log: { access: false }
server: { maxEventLoopDelay: 0 }
store: { redis: { url: "${redis.url}", deadline: "20ms" } }
`;
    [a, b] = await Promise.all([startMember(), startMember()]);
  });

  test('traffic sent only to one instance shows in the other’s timeline within a couple of steps', async () => {
    assert.ok((await send(a, 40)).every((r) => r.status === 200));
    const took = await countsWithin(b, 40, COUPLE_OF_STEPS_MS);
    assert.ok(took < COUPLE_OF_STEPS_MS, `B drew A's requests after ${took} ms`);
    assert.equal(counted((await statusOf(a)).history), 40, 'A draws them once');
    // The status page's own data says the same.
    const page = (await (await request(`${b.adminUrl}/status/status.json`)).body.json()) as Status;
    assert.equal(counted(page.history), 40);
    assert.equal(page.history.partial, undefined, 'nothing is missing');
  });

  test('traffic to both instances is summed, the same in each', async () => {
    await Promise.all([send(a, 15), send(b, 25)]);
    await Promise.all([countsWithin(a, 80, COUPLE_OF_STEPS_MS), countsWithin(b, 80, COUPLE_OF_STEPS_MS)]);
    // Summed by step, not listed twice: each step's time appears once.
    const h = (await statusOf(b)).history;
    assert.equal(new Set(h.t).size, h.t.length);
  });

  test('an instance started again draws the hour its predecessor and the other saw', async () => {
    await stopMember(a);
    a = await startMember();
    // Read back at start: no step needs to pass.
    assert.equal(counted((await statusOf(a)).history), 80, 'the restarted instance draws the history');
    assert.equal(counted((await statusOf(b)).history), 80, 'the stopped instance’s steps stay in the other’s');
  });

  test(
    'with Redis stopped each instance draws its own, says the rest is missing, and answers as fast; ' +
      'the view heals when Redis returns',
    async (t) => {
      const earlier = [...(await send(a, 20)), ...(await send(b, 20))];
      await Promise.all([countsWithin(a, 120, COUPLE_OF_STEPS_MS), countsWithin(b, 120, COUPLE_OF_STEPS_MS)]);
      await redis.stop();
      const during = [...(await send(a, 10)), ...(await send(b, 6))];
      assert.ok(
        during.every((r) => r.status === 200),
        'no request fails',
      );
      t.diagnostic(
        `median ${median(earlier.map((r) => r.ms)).toFixed(1)} ms before, ` +
          `${median(during.map((r) => r.ms)).toFixed(1)} ms with Redis stopped; ` +
          `slowest ${Math.max(...during.map((r) => r.ms)).toFixed(1)} ms`,
      );
      // Nothing on a request's path waits for the store (its deadline is 20 ms).
      assert.ok(median(during.map((r) => r.ms)) < median(earlier.map((r) => r.ms)) + 10, 'requests are not slowed');
      assert.ok(Math.max(...during.map((r) => r.ms)) < 1000);
      // Each draws its own steps once they close, and not the other's.
      await Promise.all([countsWithin(a, 130, COUPLE_OF_STEPS_MS), countsWithin(b, 126, COUPLE_OF_STEPS_MS)]);
      const status = await statusOf(a);
      assert.equal(status.store.reachable, false);
      assert.equal(status.history.partial, true, 'the history says the other instances’ part is missing');
      const page = await (await request(`${a.adminUrl}/status`)).body.text();
      assert.match(page, /redis unreachable since <time[^>]*>[^<]*<\/time>: [^<]*the charts lack the other instances/);
      // Redis returns, empty: the steps each made meanwhile are appended and announced.
      await redis.start();
      const healed = await Promise.all([countsWithin(a, 136, 10_000), countsWithin(b, 136, 10_000)]);
      t.diagnostic(`healed ${healed.join(' and ')} ms after Redis started`);
      assert.equal((await statusOf(b)).history.partial, undefined);
      // Redis came back empty; each instance wrote the steps it closed itself again. B started again
      // draws them all — but not those of A's predecessor (55 requests), which no one alive closed.
      await stopMember(b);
      b = await startMember();
      assert.equal(counted((await statusOf(b)).history), 136 - 55, 'the living instances rebuilt their hour');
    },
  );
});

describe('workers of one machine on a fleet’s Redis', { skip: noRedis, timeout: 120_000 }, () => {
  test(
    'count each step once though it comes both over IPC and through Redis, ' +
      'and keep the machine’s view while Redis is away',
    async () => {
      const redis = await startRedis();
      cleanups.push(() => redis.stop());
      const up = await httpUpstream((_req, res) => res.end('ok'));
      cleanups.push(() => up.close());
      const gw = await startChildGateway(
        up.address,
        `workers: 2
name: machine${process.pid}
log: { access: false }
server: { maxEventLoopDelay: 0 }
store: { redis: { url: "${redis.url}", deadline: "20ms" } }
`,
        [],
        { startWithinMs: 60_000, upstreamYaml: 'concurrency: { enabled: false }' },
      );
      cleanups.push(() => stopMember(gw));
      // A connection each: the kernel spreads them over both workers' sockets.
      const fresh = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200);
      };
      await fresh(60);
      await countsWithin(gw, 60, COUPLE_OF_STEPS_MS);
      const served = (await (await request(`${gw.adminUrl}/api/status`)).body.json()) as {
        workers: Array<{ requests?: number }>;
      };
      assert.ok(
        served.workers.every((w) => (w.requests ?? 0) > 0),
        'both workers served',
      );
      // Another step later, both ways have delivered every step: still counted once.
      await sleep(STEP_MS + 1000);
      assert.equal(counted((await statusOf(gw)).history), 60, 'a step that came both ways counts once');
      await redis.stop();
      await fresh(40);
      await countsWithin(gw, 100, COUPLE_OF_STEPS_MS);
      assert.equal((await statusOf(gw)).store.reachable, false, 'counted while Redis is away');
    },
  );
});

/**
 * In one process, two gateways on one memory store, with 200 ms steps; a third instance's steps
 * are written into the store as that instance would, with its clock where the test wants it.
 */
describe('the fleet’s view in time', () => {
  const STEP = 200;
  const store = new MemoryStore();
  let gateway: Gateway;
  let admin: string;

  /** Another instance's (`name`) step `t` (its start, ms since the epoch) with `requests` on route api. */
  const otherStep = (t: number, requests: number, stepMs = STEP, name = 'other'): Promise<void> => {
    const record = JSON.stringify({ i: name, s: name, ms: stepMs, t, r: { api: [requests, 0, 0, 0, 2] } });
    return store.append('timeline', record, 1000).then(() => store.publish('timeline', record));
  };
  const history = async (): Promise<{ t: number[]; rps: number[]; step_s: number }> =>
    ((await (await request(`${admin}/api/status?history=1`)).body.json()) as Status).history;
  const at = async (t: number): Promise<number | undefined> => {
    const h = await history();
    const i = h.t.indexOf(t / 1000);
    return i < 0 ? undefined : Math.round(h.rps[i]! * h.step_s);
  };
  /** The start of the step the clock is in now. */
  const stepNow = (): number => Math.floor(Date.now() / STEP) * STEP;

  before(async () => {
    const up = await httpUpstream((_req, res) => res.end('ok'));
    cleanups.push(() => up.close());
    gateway = createGateway(
      {
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
        routes: [{ name: 'api', match: { path: '/' }, upstream: 'music' }],
        log: { level: 'silent' },
      },
      { processMetrics: false, statusStepMs: STEP, store },
    );
    cleanups.push(() => gateway.close());
    admin = `http://127.0.0.1:${(await gateway.listen()).admin!.port}`;
  });

  test('a step read back at start is drawn at once; one from a clock ahead waits for this one’s step', async () => {
    // Written before a second gateway starts: it reads them back.
    const past = stepNow() - 3 * STEP;
    await otherStep(past, 7);
    const second = createGateway(
      {
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        upstreams: { music: { hosts: ['127.0.0.1:1'], healthCheck: { enabled: false } } },
        routes: [{ name: 'api', match: { path: '/' }, upstream: 'music' }],
        log: { level: 'silent' },
      },
      { processMetrics: false, statusStepMs: STEP, store },
    );
    const { admin: secondAdmin } = await second.listen();
    const secondHistory = (await (
      await request(`http://127.0.0.1:${secondAdmin!.port}/api/status?history=1`)
    ).body.json()) as Status;
    await second.close();
    const i = secondHistory.history.t.indexOf(past / 1000);
    assert.ok(i >= 0, 'the step read back has its place');
    assert.equal(Math.round(secondHistory.history.rps[i]! * secondHistory.history.step_s), 7);

    // A clock two steps ahead: its step is not drawn before this process closes the same step.
    const ahead = stepNow() + 2 * STEP;
    await otherStep(ahead, 5);
    await sleep(20);
    assert.equal(await at(ahead), undefined, 'not drawn ahead of this clock');
    await sleep(ahead + STEP + 150 - Date.now());
    assert.equal(await at(ahead), 5, 'drawn once this process closed that step');
  });

  test('a step that comes late is added where it belongs, and open pages are sent the hour again', async () => {
    const late = stepNow() - 4 * STEP;
    const earlier = (await at(late)) ?? 0;
    // A live page: the events it is sent, whole.
    const res = await request(`${admin}/status/events`);
    const events: Array<{ history?: History; point?: unknown }> = [];
    let buffer = '';
    res.body.setEncoding('utf8');
    res.body.on('data', (chunk: string) => {
      buffer += chunk;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').find((l) => l.startsWith('data: '));
        if (data !== undefined) events.push(JSON.parse(data.slice(6)) as never);
        end = buffer.indexOf('\n\n');
      }
    });
    cleanups.push(() => res.body.destroy());
    while (events.length < 1) await sleep(10);
    await otherStep(late, 3);
    await sleep(10);
    assert.equal(await at(late), earlier + 3, 'summed into its own step');
    const seen = events.length;
    const deadline = Date.now() + 5 * STEP;
    while (events.length < seen + 2 && Date.now() < deadline) await sleep(10);
    res.body.destroy();
    assert.ok(events.length >= seen + 2, 'two steps announced');
    assert.ok(events[seen]!.history !== undefined && events[seen]!.point === undefined, 'the whole hour, not a point');
    assert.ok(events[seen + 1]!.point !== undefined && events[seen + 1]!.history === undefined, 'then one point again');
  });

  test('a step whose announcement was lost is drawn within a dozen steps', async () => {
    const t = stepNow() - STEP;
    const earlier = (await at(t)) ?? 0;
    // In the list, never announced: as when a subscriber was reconnecting.
    await store.append(
      'timeline',
      JSON.stringify({ i: 'quiet', s: 'quiet', ms: STEP, t, r: { api: [4, 0, 0, 0, 2] } }),
      1000,
    );
    const deadline = Date.now() + 14 * STEP;
    while ((await at(t)) !== earlier + 4 && Date.now() < deadline) await sleep(STEP / 2);
    assert.equal(await at(t), earlier + 4);
  });

  test('a step of another length is not counted', async () => {
    const t = stepNow() - 2 * STEP;
    const earlier = (await at(t)) ?? 0;
    await otherStep(t, 11, 1000, 'one-second-steps');
    await otherStep(t, 2);
    await sleep(20);
    assert.equal(await at(t), earlier + 2, 'only the step of the same length is summed');
  });
});
