/**
 * Hedged requests: an idempotent request still unanswered after the pool's recent p95 gets a
 * second attempt on another host, and the first answer wins. A request that must not reach
 * two hosts — a POST, a body streamed from the client — is never hedged. The hedge delay is
 * learned (32 samples at least), so every scenario runs on a pool whose latency window is
 * warm, against two real hosts whose speed the test sets.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  fetchRaw,
  httpUpstream,
  minimalConfig,
  startGateway,
  type ClientResult,
  type RunningGateway,
} from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Seen {
  method: string;
  id: string;
  body: string;
}

/**
 * A host that answers after `delayMs` (changeable at any time) and records what reached it;
 * /nudge is always answered at once (it only moves the round-robin on by one).
 */
async function pacedHost(name: string) {
  const host = { name, delayMs: 0, seen: [] as Seen[], address: '' };
  const up = await httpUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      host.seen.push({ method: req.method!, id: String(req.headers['x-request-id']), body });
      const timer = setTimeout(
        () => {
          res.setHeader('x-served-by', name);
          res.end(name);
        },
        req.url === '/nudge' ? 0 : host.delayMs,
      );
      res.on('close', () => clearTimeout(timer));
    });
  });
  host.address = up.address;
  cleanups.push(() => up.close());
  return host;
}

type Host = Awaited<ReturnType<typeof pacedHost>>;

let slow: Host;
let fast: Host;
let gw: RunningGateway;

before(async () => {
  slow = await pacedHost('slow');
  fast = await pacedHost('fast');
  gw = await startGateway(
    minimalConfig([slow.address, fast.address], {
      upstream: {
        // Round-robin makes the first host of each request predictable enough to aim at;
        // the tests still check where each first attempt went.
        balance: 'round-robin',
        // A floor well above a loopback answer, so no warm-up or nudge request is hedged.
        hedging: { minDelay: '100ms', maxDelay: '300ms' },
        // Losing a race counts against a host; it must not be ejected between scenarios.
        outlierDetection: { consecutiveFailures: 1000 },
        // Bodies over 1 KiB stream (the streamed-body case); smaller ones are read whole.
        retries: { replayBody: '1KiB' },
      },
      top: { server: { requestBuffer: '1KiB' } },
    }),
  );
  cleanups.push(() => gw.close());
  // Warm the latency window: the hedge delay is unknown until 32 attempts were timed.
  for (let i = 0; i < 48; i++) {
    const res = await fetchRaw(`${gw.url}/warm-up`);
    assert.equal(res.status, 200, 'warm-up requests are answered');
  }
});

let sequence = 0;

async function hedgeCounters(): Promise<{ hedges: number; won: number }> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}\\{upstream="music"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hedges: read('gangway_hedges_total'), won: read('gangway_hedges_won_total') };
}

async function accessLine(id: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const line = gw.logs.find((l) => l.msg === 'request' && l.req_id === id);
    if (line !== undefined) return line;
    assert.ok(Date.now() < deadline, `request ${id} was logged`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function firstHostOf(line: Record<string, unknown>): unknown {
  return Array.isArray(line.hosts_tried) ? line.hosts_tried[0] : line.host;
}

/**
 * Sends requests (each with its own request id) until one's first attempt goes to `target`,
 * and returns that one with its access-log line and how the hedge counters moved for it.
 * A miss that took two picks (it was hedged) would leave the next request on the same host
 * again, so a quick request then moves the round-robin on by one.
 */
async function firstAttemptOn(target: Host, send: (id: string) => Promise<ClientResult>) {
  for (let tries = 0; tries < 6; tries++) {
    const id = `hedging-${++sequence}`;
    const before = await hedgeCounters();
    const res = await send(id);
    const line = await accessLine(id);
    const after = await hedgeCounters();
    if (firstHostOf(line) === target.address) {
      return { id, res, line, delta: { hedges: after.hedges - before.hedges, won: after.won - before.won } };
    }
    if (Number(line.attempts) % 2 === 0) await fetchRaw(`${gw.url}/nudge`);
  }
  assert.fail(`no request had its first attempt on the ${target.name} host in 6 tries`);
}

const idOf = (id: string) => ({ 'x-request-id': id });

test('a GET stuck on a slow host is answered by the other host well before the slow one would answer', async (t) => {
  slow.delayMs = 3000;
  fast.delayMs = 0;
  const { id, res, line, delta } = await firstAttemptOn(slow, (id) =>
    fetchRaw(`${gw.url}/track`, { headers: idOf(id), timeoutMs: 10_000 }),
  );
  t.diagnostic(`answered by the hedge in ${res.ms.toFixed(0)} ms`);
  assert.equal(res.status, 200, 'the GET is answered');
  assert.equal(res.body.toString(), 'fast', 'by the fast host');
  assert.equal(res.complete, true, 'with a complete body');
  assert.ok(res.ms < 2000, `answered in ${res.ms.toFixed(0)} ms, not the slow host's 3000 ms`);
  assert.ok(
    slow.seen.some((s) => s.id === id),
    'the slow host did receive the request first',
  );
  assert.ok(
    fast.seen.some((s) => s.id === id),
    'the fast host received the hedge',
  );
  assert.deepEqual(line.retries, ['hedge'], "the access log lists the hedge among the request's further attempts");
  assert.deepEqual(line.hosts_tried, [slow.address, fast.address], 'the access log lists both hosts, slow first');
  assert.equal(line.host, fast.address, 'the access log names the host that answered');
  assert.equal(line.status, 200, 'the access log has the 200');
  assert.deepEqual(delta, { hedges: 1, won: 1 }, 'gangway_hedges_total and gangway_hedges_won_total each rose by one');
});

test('a hedge that loses to the first attempt is counted as a hedge, not as a win', async () => {
  slow.delayMs = 800;
  fast.delayMs = 3000;
  const { res, line, delta } = await firstAttemptOn(slow, (id) =>
    fetchRaw(`${gw.url}/track`, { headers: idOf(id), timeoutMs: 10_000 }),
  );
  assert.equal(res.body.toString(), 'slow', 'the first attempt answered first and its answer was taken');
  assert.ok(res.ms < 2500, `answered in ${res.ms.toFixed(0)} ms, without waiting for the hedge's host`);
  assert.deepEqual(line.retries, ['hedge'], 'a hedge was sent');
  assert.deepEqual(delta, { hedges: 1, won: 0 }, 'gangway_hedges_total rose, gangway_hedges_won_total did not');
});

test('a POST is never hedged: the slow host gets it alone and the client waits for its answer', async () => {
  slow.delayMs = 1500;
  fast.delayMs = 0;
  const { id, res, line, delta } = await firstAttemptOn(slow, (id) =>
    fetchRaw(`${gw.url}/orders`, { method: 'POST', body: `order ${id}`, headers: idOf(id), timeoutMs: 10_000 }),
  );
  assert.equal(res.status, 200, 'the POST is answered');
  assert.equal(res.body.toString(), 'slow', 'by the slow host');
  assert.ok(res.ms >= 1400, `the client waited for the slow answer (${res.ms.toFixed(0)} ms)`);
  assert.deepEqual(
    slow.seen.filter((s) => s.id === id).map((s) => s.body),
    [`order ${id}`],
    'the slow host received the POST once, body and all',
  );
  assert.equal(fast.seen.filter((s) => s.id === id).length, 0, 'the fast host never saw that POST');
  assert.equal(line.retries, undefined, 'the access log shows no further attempt');
  assert.equal(line.attempts, 1, 'one attempt');
  assert.deepEqual(delta, { hedges: 0, won: 0 }, 'no hedge was counted');
});

test('a POST carrying an Idempotency-Key is hedged like a GET', async () => {
  slow.delayMs = 3000;
  fast.delayMs = 0;
  const { id, res, line, delta } = await firstAttemptOn(slow, (id) =>
    fetchRaw(`${gw.url}/orders`, {
      method: 'POST',
      body: `order ${id}`,
      headers: { ...idOf(id), 'idempotency-key': id },
      timeoutMs: 10_000,
    }),
  );
  assert.equal(res.body.toString(), 'fast', 'the hedge on the fast host answered');
  assert.ok(res.ms < 2000, `answered in ${res.ms.toFixed(0)} ms`);
  assert.deepEqual(
    fast.seen.filter((s) => s.id === id).map((s) => s.body),
    [`order ${id}`],
    'the hedge carried the whole body',
  );
  assert.deepEqual(line.retries, ['hedge'], 'the access log lists the hedge');
  assert.deepEqual(delta, { hedges: 1, won: 1 }, 'the hedge and its win were counted');
});

test('a request body too large to buffer, streamed upstream as it comes, is never hedged, even for an idempotent PUT', async () => {
  slow.delayMs = 1500;
  fast.delayMs = 0;
  const { id, res, line, delta } = await firstAttemptOn(slow, (id) =>
    fetchRaw(`${gw.url}/playlists/1`, {
      method: 'PUT',
      chunks: [Buffer.alloc(4096, 'a'), Buffer.from(id)],
      headers: idOf(id),
      timeoutMs: 10_000,
    }),
  );
  assert.equal(res.status, 200, 'the PUT is answered');
  assert.equal(res.body.toString(), 'slow', 'by the slow host');
  assert.ok(res.ms >= 1400, `the client waited for the slow answer (${res.ms.toFixed(0)} ms)`);
  assert.deepEqual(
    slow.seen.filter((s) => s.id === id).map((s) => s.body),
    [`${'a'.repeat(4096)}${id}`],
    'the slow host received the whole streamed body',
  );
  assert.equal(fast.seen.filter((s) => s.id === id).length, 0, 'the fast host never saw that PUT');
  assert.equal(line.retries, undefined, 'the access log shows no further attempt');
  assert.deepEqual(delta, { hedges: 0, won: 0 }, 'no hedge was counted');
});
