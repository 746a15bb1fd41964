/**
 * Corners of the request path a review of its restructuring found: a hedge's loser that was
 * still waiting for a connection is never sent; a request that started before a reload
 * retries on the pools it started with; an upgrade refused while the client keeps its
 * connection open is logged at once; a total timeout that fires while the client is still
 * sending its body is the client's 408, not the upstream's 504.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fetchRaw, httpUpstream, minimalConfig, startGateway, tcpUpstream } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

test('a first attempt still queued for a connection when its hedge wins is never sent', async () => {
  const seenByA: string[] = [];
  const a = await httpUpstream((req, res) => {
    seenByA.push(req.url!);
    setTimeout(() => res.end('a'), req.url === '/hold' ? 1500 : 0);
  });
  const b = await httpUpstream((_req, res) => res.end('b'));
  const gw = await startGateway(
    minimalConfig([a.address, b.address], {
      upstream: {
        balance: 'round-robin',
        keepAlive: { connections: 1 },
        hedging: { minDelay: '50ms', maxDelay: '100ms' },
        outlierDetection: { consecutiveFailures: 1000 },
      },
    }),
  );
  cleanups.push(
    () => gw.close(),
    () => a.close(),
    () => b.close(),
  );
  // Teach the pool its latency (32 answers), then occupy A's only connection.
  for (let i = 0; i < 40; i++) await fetchRaw(`${gw.url}/warm`);
  seenByA.length = 0;
  let hold: Promise<unknown> | undefined;
  // Round-robin: send until /hold lands on A (a POST: it is not hedged itself).
  for (let i = 0; i < 4 && !seenByA.includes('/hold'); i++) {
    hold = fetchRaw(`${gw.url}/hold`, { method: 'POST' });
    await sleep(100);
  }
  assert.ok(seenByA.includes('/hold'), 'A holds its only connection');
  // The next GETs: the one whose first attempt queues behind /hold on A is answered by B's hedge.
  const answers = await Promise.all([fetchRaw(`${gw.url}/next-1`), fetchRaw(`${gw.url}/next-2`)]);
  assert.deepEqual(
    answers.map((r) => r.status),
    [200, 200],
    'both answered while A is busy',
  );
  await hold;
  await sleep(300);
  const late = seenByA.filter((u) => u.startsWith('/next'));
  const hedged = gw.logs.filter(
    (l) => l.msg === 'request' && String(l.path).startsWith('/next') && Array.isArray(l.retries),
  );
  assert.ok(hedged.length >= 1, 'at least one of them was hedged');
  assert.deepEqual(late, [], `A never received the requests whose hedge had answered: ${late}`);
});

test('a request under way when the configuration is reloaded retries on the pools it started with', async () => {
  let aCalls = 0;
  const a = await httpUpstream((_req, res) => {
    aCalls++;
    setTimeout(() => res.writeHead(503).end('busy'), 400);
  });
  const b = await httpUpstream((_req, res) => res.end('b'));
  const config = minimalConfig([a.address, b.address], { upstream: { balance: 'round-robin' } });
  const gw = await startGateway(config);
  cleanups.push(
    () => gw.close(),
    () => a.close(),
    () => b.close(),
  );
  // Find a request whose first attempt goes to A; reload while A is still thinking.
  let result: Awaited<ReturnType<typeof fetchRaw>> | undefined;
  for (let i = 0; i < 4 && result === undefined; i++) {
    const before = aCalls;
    const pending = fetchRaw(`${gw.url}/x`);
    await sleep(100);
    if (aCalls === before) {
      await pending;
      continue;
    }
    await gw.gateway.reload({ ...config, listen: '127.0.0.1:0', admin: '127.0.0.1:0', name: 'gangway' });
    result = await pending;
  }
  assert.ok(result, 'a request reached A before the reload');
  assert.equal(result.status, 200, `A's 503 was retried on B through the old pool: ${result.status} ${result.body}`);
  assert.equal(result.body.toString(), 'b');
});

test('an upgrade refused while the client keeps its connection open is logged when the answer is sent', async () => {
  const up = await httpUpstream((_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer' }).end('no'));
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
  cleanups.push(() => socket.destroy());
  let got = '';
  socket.on('data', (c) => {
    got += c.toString();
  });
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  assert.ok(await waitFor(() => got.includes('\r\n\r\nno')), `the upstream's refusal arrived: ${got}`);
  // The client has not closed its side: the record must not wait for it.
  assert.ok(
    await waitFor(() => gw.logs.some((l) => l.msg === 'request' && l.path === '/ws')),
    'the refused upgrade is in the access log while the client still holds the connection',
  );
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/ws')!;
  assert.equal(line.status, 401, 'with the upstream status');
  assert.equal(line.upgrade, 'websocket', 'and the protocol asked for');
});

test('a total timeout while the client is still streaming its body is a 408 on the client, not a 504 on the host', async () => {
  const up = await httpUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  // Bodies over 10 bytes stream upstream as they come (smaller ones are read before going upstream).
  const gw = await startGateway(
    minimalConfig([up.address], {
      upstream: { timeouts: { total: '300ms' }, retries: { replayBody: 10 } },
      top: { server: { requestBuffer: 10 } },
    }),
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
  cleanups.push(() => socket.destroy());
  let got = '';
  socket.on('data', (c) => {
    got += c.toString();
  });
  // A small body, declared and never finished.
  socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part of it');
  assert.ok(await waitFor(() => got.includes('\r\n\r\n')), 'an answer came');
  assert.match(got, /^HTTP\/1\.1 408 /, `the client is told it was too slow:\n${got}`);
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/upload');
  assert.ok(await waitFor(() => gw.logs.some((l) => l.msg === 'request' && l.path === '/upload')), 'logged');
  assert.equal(line?.failure ?? gw.logs.find((l) => l.path === '/upload')?.failure, 'request_timeout');
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  assert.doesNotMatch(
    metrics,
    /gangway_upstream_attempts_total\{[^}]*outcome="request_timeout"/,
    'no attempt counted against the host',
  );
});

test('a freshly started gateway hedges its first requests, so a host that never answers costs a second, not a timeout', async () => {
  // A deadlocked app: it accepts connections and reads requests, and never answers.
  const frozen = await tcpUpstream((s) => s.resume());
  const healthy = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(
    minimalConfig([frozen.address, healthy.address], {
      upstream: { balance: 'round-robin', hedging: { maxDelay: '500ms' } },
    }),
  );
  cleanups.push(
    () => gw.close(),
    () => frozen.close(),
    () => healthy.close(),
  );
  // No latency learned yet: the first two requests, one of which starts on the frozen host.
  const answers = await Promise.all([fetchRaw(`${gw.url}/a`), fetchRaw(`${gw.url}/b`)]);
  for (const r of answers) {
    assert.equal(r.status, 200, 'answered by the healthy host');
    assert.ok(r.ms < 3000, `within the hedge delay, not the 10 s response timeout (${r.ms.toFixed(0)} ms)`);
  }
  const hedged = gw.logs.filter(
    (l) => l.msg === 'request' && Array.isArray(l.retries) && (l.retries as string[]).includes('hedge'),
  );
  assert.equal(hedged.length, 1, 'the request that started on the frozen host was hedged');
});

test(
  'a reloaded configuration is let go once its requests are done: reloads ' + 'do not pile up earlier runtimes',
  async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const up = await httpUpstream((_req, res) => res.end('ok'));
    const config = minimalConfig([up.address], { upstream: { healthCheck: { enabled: true, interval: '50ms' } } });
    const gw = await startGateway(config);
    cleanups.push(
      () => gw.close(),
      () => up.close(),
    );
    await gw.gateway.reload({ ...config, listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
    const first = new WeakRef(gw.gateway.config);
    for (let i = 0; i < 5; i++) {
      await gw.gateway.reload({ ...config, listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
      assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200, 'served between reloads');
    }
    await sleep(200); // the retired runtimes close their pools
    // deref() keeps its target alive until the current job ends: collect in a job of its own.
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(20);
    }
    assert.equal(first.deref(), undefined, 'the configuration of a runtime five reloads ago is no longer held');
  },
);
