/**
 * The retry rules at their edges: a POST that may have been processed is retried only when it
 * carries an Idempotency-Key, and the total timeout ends an exchange that is waiting to retry,
 * before the next host is asked. Each scenario counts what every upstream actually received.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import {
  closedPort,
  fetchRaw,
  httpUpstream,
  minimalConfig,
  startGateway,
  tcpUpstream,
  type RunningGateway,
} from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A host that reads each whole request (head and Content-Length body), records its body, then closes without a word. */
async function swallowingHost() {
  const bodies: string[] = [];
  const up = await tcpUpstream((s: Socket) => {
    let data = '';
    s.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      bodies.push(data.slice(end + 4, end + 4 + length));
      s.end();
    });
  });
  cleanups.push(() => up.close());
  return { address: up.address, bodies };
}

/** A well-behaved host that records each body it receives and the connections made to it. */
async function recordingHost() {
  const host = { address: '', bodies: [] as string[], connections: 0 };
  const up = await httpUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      host.bodies.push(body);
      res.end('stored');
    });
  });
  up.server.on('connection', () => {
    host.connections++;
  });
  host.address = up.address;
  cleanups.push(() => up.close());
  return host;
}

async function accessLine(gw: RunningGateway): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const line = gw.logs.find((l) => l.msg === 'request');
    if (line !== undefined) return line;
    assert.ok(Date.now() < deadline, 'the request was logged');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A fresh gateway for [swallowing host, good host], round-robin: the first attempt of its
 * first request goes to the swallowing host, on a fresh connection.
 */
async function swallowThenGood() {
  const swallower = await swallowingHost();
  const good = await recordingHost();
  const gw = await startGateway(
    minimalConfig([swallower.address, good.address], { upstream: { balance: 'round-robin' } }),
  );
  cleanups.push(() => gw.close());
  return { swallower, good, gw };
}

test('a POST with an Idempotency-Key is retried on another host when the first read it and closed without answering', async () => {
  const { swallower, good, gw } = await swallowThenGood();
  const res = await fetchRaw(`${gw.url}/orders`, {
    method: 'POST',
    body: 'order-1',
    headers: { 'idempotency-key': 'order-1', 'content-type': 'text/plain' },
  });
  assert.equal(res.status, 200, 'the client gets the answer of the second host');
  assert.equal(res.body.toString(), 'stored', "the body is the second host's");
  assert.deepEqual(swallower.bodies, ['order-1'], 'the first host received the POST once, body and all');
  assert.deepEqual(good.bodies, ['order-1'], 'the second host received it once, body and all');
  const line = await accessLine(gw);
  assert.deepEqual(line.retries, ['connection_terminated'], 'the access log says why it was retried');
  assert.deepEqual(line.hosts_tried, [swallower.address, good.address], 'both hosts are in the access log');
});

test('the same POST without an Idempotency-Key is not retried: 502 connection_terminated, sent to one host only', async () => {
  const { swallower, good, gw } = await swallowThenGood();
  const res = await fetchRaw(`${gw.url}/orders`, {
    method: 'POST',
    body: 'order-2',
    headers: { 'content-type': 'text/plain' },
  });
  assert.equal(res.status, 502, 'the client is told the upstream failed');
  assert.equal(
    res.headers['proxy-status'],
    'gangway; error=connection_terminated; details="upstream music"',
    'Proxy-Status names the failure',
  );
  assert.deepEqual(swallower.bodies, ['order-2'], 'the first host received the POST');
  assert.deepEqual(good.bodies, [], 'the second host never received it: it may already have been processed');
  const line = await accessLine(gw);
  assert.equal(line.retries, undefined, 'the access log shows no retry');
  assert.equal(line.attempts, 1, 'one attempt');
  assert.equal(line.failure, 'connection_terminated', 'the access log names the failure');
});

test('the total timeout passing while a retry waits out its backoff: 504 http_response_timeout, and the next host is never asked', async () => {
  const refused = await closedPort();
  const next = await recordingHost();
  const gw = await startGateway(
    minimalConfig([`127.0.0.1:${refused}`, next.address], {
      upstream: {
        balance: 'round-robin',
        // A retry waits a random share of the backoff: with a base of hours it cannot come
        // before a total timeout of 300 ms (the chance is below one in a hundred thousand).
        retries: { backoff: '10h' },
        timeouts: { total: '300ms' },
      },
    }),
  );
  cleanups.push(() => gw.close());
  const res = await fetchRaw(`${gw.url}/track`, { timeoutMs: 10_000 });
  assert.equal(res.status, 504, 'the client gets a 504');
  assert.equal(
    res.headers['proxy-status'],
    'gangway; error=http_response_timeout; details="upstream music"',
    'Proxy-Status says no response came in time',
  );
  assert.ok(res.ms >= 250, `not before the total timeout (${res.ms.toFixed(0)} ms)`);
  assert.ok(res.ms < 5000, `at the total timeout, not at the end of the backoff (${res.ms.toFixed(0)} ms)`);
  const line = await accessLine(gw);
  assert.equal(line.attempts, 1, 'only the first attempt was sent');
  assert.equal(line.failure, 'http_response_timeout', 'the access log names the timeout');
  // Were the retry timer left running, it would fire much later; at least nothing went out at once.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(next.connections, 0, 'the second host was never contacted');
  assert.deepEqual(next.bodies, [], 'the second host received nothing');
});
