/**
 * Every row of the failure taxonomy, produced by a real misbehaving upstream, answered
 * with the right status, an RFC 9209 Proxy-Status, Cache-Control: no-store, the request
 * id, and no internal address unless the client is trusted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  closedPort,
  fetchRaw,
  httpUpstream,
  minimalConfig,
  startGateway,
  tcpUpstream,
  type TestServer,
} from './support/harness.js';
import { frozenListener } from './support/frozen-listener.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function gatewayFor(hosts: string[], extra: Record<string, unknown> = {}) {
  const gw = await startGateway(minimalConfig(hosts, extra));
  cleanups.push(() => gw.close());
  return gw;
}
function track<T extends { close(): unknown }>(s: T): T {
  cleanups.push(() => s.close());
  return s;
}

function assertGatewayAnswer(res: Awaited<ReturnType<typeof fetchRaw>>, status: number, error: string) {
  assert.equal(res.status, status);
  assert.match(String(res.headers['proxy-status']), new RegExp(`^gangway; error=${error}; details="upstream music"$`));
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.ok(res.headers['x-request-id'], 'carries a request id');
}

test('connection refused: 502 connection_refused naming the pool, never the address', async () => {
  const port = await closedPort();
  const gw = await gatewayFor([`127.0.0.1:${port}`]);
  const res = await fetchRaw(`${gw.url}/track`);
  assertGatewayAnswer(res, 502, 'connection_refused');
  assert.ok(Number(res.headers['retry-after']) > 0, 'says when to come back');
  assert.ok(!res.body.toString().includes(String(port)), 'the body does not reveal the host');
  assert.ok(!String(res.headers['proxy-status']).includes(String(port)));
  const log = gw.logs.find((l) => l.msg === 'request')!;
  assert.equal(log.host, `127.0.0.1:${port}`, 'the access log names the host');
  assert.equal(log.failure, 'connection_refused');
  assert.match(String(log.cause), /ECONNREFUSED/);
});

test('connect timeout: 504 connection_timeout within the connect budget', async () => {
  const frozen = track(await frozenListener());
  const gw = await gatewayFor([`127.0.0.1:${frozen.port}`], { upstream: { timeouts: { connect: '300ms' } } });
  const res = await fetchRaw(`${gw.url}/track`, { timeoutMs: 5000 });
  assertGatewayAnswer(res, 504, 'connection_timeout');
  assert.ok(res.ms < 1500, `answered in ${res.ms} ms`);
});

test('reset before any response byte: 502 connection_terminated', async () => {
  const up = track(await tcpUpstream((s) => s.once('data', () => s.resetAndDestroy())));
  const gw = await gatewayFor([up.address]);
  const res = await fetchRaw(`${gw.url}/track`);
  assertGatewayAnswer(res, 502, 'connection_terminated');
});

test('closed before any response byte: 502 connection_terminated', async () => {
  const up = track(await tcpUpstream((s) => s.once('data', () => s.end())));
  const gw = await gatewayFor([up.address]);
  const res = await fetchRaw(`${gw.url}/track`);
  assertGatewayAnswer(res, 502, 'connection_terminated');
});

test('no response headers in time: 504 http_response_timeout within the configured budget', async () => {
  const up = track(
    await tcpUpstream(() => {
      /* reads the request, never answers */
    }),
  );
  const gw = await gatewayFor([up.address], { upstream: { timeouts: { response: '300ms' } } });
  const res = await fetchRaw(`${gw.url}/track`, { timeoutMs: 5000 });
  assertGatewayAnswer(res, 504, 'http_response_timeout');
  assert.ok(res.ms >= 290 && res.ms < 1000, `answered in ${res.ms} ms`);
});

test('invalid response bytes: 502 http_protocol_error', async () => {
  const up = track(await tcpUpstream((s) => s.once('data', () => s.end('SPLAT garbage \u0000\r\n\r\n'))));
  const gw = await gatewayFor([up.address]);
  const res = await fetchRaw(`${gw.url}/track`);
  assertGatewayAnswer(res, 502, 'http_protocol_error');
});

test('an unresolvable upstream name: 502 dns_error', async () => {
  const gw = await gatewayFor(['gangway-test.invalid:80']);
  const res = await fetchRaw(`${gw.url}/track`, { timeoutMs: 10_000 });
  assert.ok(res.status === 502 || res.status === 504);
  assert.match(String(res.headers['proxy-status']), /^gangway; error=dns_(error|timeout); details="upstream music"$/);
});

test('body cut mid-way (Content-Length): the client sees an incomplete body, never a clean end', async () => {
  const up = track(
    await tcpUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: audio/wav\r\n\r\n');
        s.write(Buffer.alloc(30_000, 7), () => setTimeout(() => s.resetAndDestroy(), 20));
      }),
    ),
  );
  const gw = await gatewayFor([up.address]);
  const res = await fetchRaw(`${gw.url}/track`);
  assert.equal(res.status, 200);
  assert.equal(res.complete, false, 'the body is flagged incomplete');
  assert.ok(res.body.length < 100_000);
  await waitFor(() => gw.logs.some((l) => l.msg === 'request'));
  assert.equal(gw.logs.find((l) => l.msg === 'request')!.failure, 'http_response_incomplete');
});

test('body cut mid-way (chunked): the client never receives the final chunk', async () => {
  const up = track(
    await tcpUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        s.write(`1000\r\n${'x'.repeat(4096)}\r\n`, () => setTimeout(() => s.destroy(), 20));
      }),
    ),
  );
  const gw = await gatewayFor([up.address]);
  const res = await fetchRaw(`${gw.url}/track`);
  assert.equal(res.status, 200);
  assert.equal(res.complete, false);
  assert.equal(res.body.length, 4096);
});

test('body stalls past the idle timeout: the stream is cut, not ended', async () => {
  const up = track(
    await tcpUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345');
      }),
    ),
  );
  const gw = await gatewayFor([up.address], { upstream: { timeouts: { idle: '200ms' } } });
  const res = await fetchRaw(`${gw.url}/track`, { timeoutMs: 5000 });
  assert.equal(res.complete, false);
  assert.equal(res.body.toString(), '12345');
});

for (const status of [502, 503, 504]) {
  test(`upstream answers ${status} itself: passed on with received-status and its own body`, async () => {
    const up = track(
      await httpUpstream((_req, res) => {
        res.writeHead(status, { 'retry-after': '7', 'proxy-status': 'inner; error=connection_refused' });
        res.end('upstream says no');
      }),
    );
    const gw = await gatewayFor([up.address]);
    const res = await fetchRaw(`${gw.url}/track`);
    assert.equal(res.status, status);
    assert.equal(res.body.toString(), 'upstream says no');
    assert.equal(res.headers['retry-after'], '7', "the upstream's Retry-After is kept");
    assert.equal(
      res.headers['proxy-status'],
      `inner; error=connection_refused, gangway; received-status=${status}; details="upstream music"`,
    );
  });
}

test('no route: 404 destination_not_found, never a 502', async () => {
  const up = track(await httpUpstream((_req, res) => res.end('ok')));
  const gw = await startGateway({
    upstreams: { music: { hosts: [up.address] } },
    routes: [{ match: { path: '/api' }, upstream: 'music' }],
  });
  cleanups.push(() => gw.close());
  const res = await fetchRaw(`${gw.url}/elsewhere`);
  assert.equal(res.status, 404);
  assert.equal(res.headers['proxy-status'], 'gangway; error=destination_not_found');
  assert.equal((await fetchRaw(`${gw.url}/api/x`)).status, 200);
  assert.equal((await fetchRaw(`${gw.url}/apiary`)).status, 404, 'prefixes match on segment boundaries');
});

test('a request that already passed through this gateway: 502 proxy_loop_detected', async () => {
  let reached = false;
  const up = track(
    await httpUpstream((_req, res) => {
      reached = true;
      res.end('ok');
    }),
  );
  const gw = await gatewayFor([up.address]);
  const res = await fetchRaw(`${gw.url}/track`, { headers: { via: '1.1 edge, 1.1 gangway' } });
  assert.equal(res.status, 502);
  assert.match(String(res.headers['proxy-status']), /^gangway; error=proxy_loop_detected/);
  assert.equal(reached, false);
  assert.equal(
    (await fetchRaw(`${gw.url}/track`, { headers: { via: '1.1 gangway-edge' } })).status,
    200,
    'a different name is not a loop',
  );
});

test('the error body follows Accept: problem+json for programs, HTML for browsers, text otherwise', async () => {
  const port = await closedPort();
  const gw = await gatewayFor([`127.0.0.1:${port}`]);
  const json = await fetchRaw(`${gw.url}/track?x=1`, { headers: { accept: 'application/json' } });
  assert.equal(json.headers['content-type'], 'application/problem+json');
  const problem = JSON.parse(json.body.toString()) as Record<string, unknown>;
  assert.equal(problem.status, 502);
  assert.equal(problem.type, 'urn:gangway:failure:connection_refused');
  assert.equal(problem.instance, '/track?x=1');
  assert.equal(problem.request_id, json.headers['x-request-id']);
  assert.equal(problem.proxy_status, json.headers['proxy-status']);
  assert.equal(problem.retry_after, Number(json.headers['retry-after']));
  assert.match(String(problem.detail), /music service/);

  const html = await fetchRaw(`${gw.url}/track`, {
    headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
  });
  assert.equal(html.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(html.body.toString(), /<h1>The music service is not answering right now<\/h1>/);
  assert.match(html.body.toString(), /The problem is on our side/);
  assert.match(html.body.toString(), /<code>connection_refused<\/code>/);

  const text = await fetchRaw(`${gw.url}/track`, { headers: { accept: '*/*' } });
  assert.equal(text.headers['content-type'], 'text/plain; charset=utf-8');
  assert.match(text.body.toString(), /^502 Upstream refused the connection/);
});

test("a client's own request id is kept and echoed", async () => {
  const port = await closedPort();
  const gw = await gatewayFor([`127.0.0.1:${port}`]);
  const res = await fetchRaw(`${gw.url}/track`, { headers: { 'x-request-id': 'support-ticket-42' } });
  assert.equal(res.headers['x-request-id'], 'support-ticket-42');
});

test('trusted clients (and exposeDetails) see next-hop and the low-level cause', async () => {
  const port = await closedPort();
  const gw = await gatewayFor([`127.0.0.1:${port}`], { top: { errors: { trustedClients: ['127.0.0.1'] } } });
  const res = await fetchRaw(`${gw.url}/track`);
  assert.match(String(res.headers['proxy-status']), new RegExp(`next-hop="127.0.0.1:${port}"`));
  assert.match(String(res.headers['proxy-status']), /details="upstream music: .*ECONNREFUSED/);
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export type { TestServer };

test('total timeout: headers later than the total budget get 504; a body still dripping at the deadline is cut', async () => {
  const slowHeaders = track(await httpUpstream((_req, res) => setTimeout(() => res.end('late'), 2000)));
  const gw = await gatewayFor([slowHeaders.address], { upstream: { timeouts: { response: '10s', total: '300ms' } } });
  const res = await fetchRaw(`${gw.url}/track`, { timeoutMs: 5000 });
  assertGatewayAnswer(res, 504, 'http_response_timeout');
  assert.ok(res.ms < 1000, `answered in ${res.ms} ms`);

  const drip = track(
    await httpUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      const timer = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(timer));
    }),
  );
  const gw2 = await gatewayFor([drip.address], { upstream: { timeouts: { total: '400ms' } } });
  const cut = await fetchRaw(`${gw2.url}/track`, { timeoutMs: 5000 });
  assert.equal(cut.status, 200);
  assert.equal(cut.complete, false);
  assert.ok(cut.ms < 1500, `cut after ${cut.ms} ms`);
});

test(
  "every host answering its own 503: a browser and a program get Gangway's " +
    "explanation with the upstream's status and Retry-After; a terminal and " +
    "the upstream's own page are relayed",
  async () => {
    const storm = (type: string, body: string) =>
      httpUpstream((_req, res) => {
        res.writeHead(503, { 'content-type': type, 'retry-after': '7' }).end(body);
      }).then(track);
    const plain = [await storm('text/plain', 'overloaded\n'), await storm('text/plain', 'overloaded\n')];
    const gw = await gatewayFor(plain.map((u) => u.address));
    const ask = (accept: string) => fetch(`${gw.url}/api/tracks`, { headers: { accept } });

    const page = await ask('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
    assert.equal(page.status, 503, "the upstream's status is kept");
    assert.equal(page.headers.get('retry-after'), '7', 'and its Retry-After');
    assert.match(String(page.headers.get('content-type')), /^text\/html/);
    const proxyStatus = String(page.headers.get('proxy-status'));
    assert.match(proxyStatus, /received-status=503/, "Proxy-Status names the upstream's answer");
    assert.doesNotMatch(proxyStatus, /error=/, 'and claims no error of its own');
    const html = await page.text();
    assert.match(html, /answered with an error of its own/);
    assert.doesNotMatch(html, /overloaded\n/);

    const problem = await ask('application/json');
    assert.equal(problem.status, 503);
    assert.equal(problem.headers.get('content-type'), 'application/problem+json');
    const json = (await problem.json()) as { status: number; retry_after: number; type: string };
    assert.equal(json.status, 503);
    assert.equal(json.retry_after, 7);
    assert.equal(json.type, 'urn:gangway:failure:upstream_error_status');

    const terminal = await ask('*/*');
    assert.equal(terminal.status, 503);
    assert.equal(await terminal.text(), 'overloaded\n', "curl gets the upstream's own words");
    assert.match(String(terminal.headers.get('proxy-status')), /received-status=503/);

    const record = gw.logs.filter((l) => l.msg === 'request');
    assert.deepEqual(
      record.map((l) => [l.status, l.failure, l.outcome]),
      [
        [503, 'upstream_error_status', 'failed'],
        [503, 'upstream_error_status', 'failed'],
        [503, 'upstream_error_status', 'failed'],
      ],
    );

    // The upstream's own error page is what a browser gets when it has one.
    const branded = [await storm('text/html; charset=utf-8', '<h1>Our own 503</h1>')];
    const gw2 = await gatewayFor(branded.map((u) => u.address));
    const own = await fetch(`${gw2.url}/`, { headers: { accept: 'text/html' } });
    assert.equal(await own.text(), '<h1>Our own 503</h1>');

    // And the route's switch relays every upstream answer as it is.
    const gw3 = await gatewayFor(
      plain.map((u) => u.address),
      { route: { explainUpstreamErrors: false } },
    );
    const relayed = await fetch(`${gw3.url}/`, { headers: { accept: 'text/html' } });
    assert.equal(relayed.status, 503);
    assert.equal(await relayed.text(), 'overloaded\n');
  },
);

test(
  'every host frozen: once none is in rotation, requests are answered 503 ' +
    'with Retry-After within a second while one a second still probes',
  async () => {
    const hung = [await httpUpstream(() => {}).then(track), await httpUpstream(() => {}).then(track)];
    const gw = await gatewayFor(
      hung.map((u) => u.address),
      {
        upstream: {
          timeouts: { response: '1s' },
          healthCheck: { enabled: true, interval: '300ms', timeout: '200ms', unhealthyThreshold: 2 },
        },
      },
    );
    // The health checks (and the first requests, waiting out the response timeout) take both hosts out of rotation.
    const deadline = Date.now() + 15_000;
    let first: Response | undefined;
    while (Date.now() < deadline) {
      const r = await fetch(`${gw.url}/`);
      await r.arrayBuffer();
      if (r.status === 503 && /destination_unavailable/.test(String(r.headers.get('proxy-status')))) {
        first = r;
        break;
      }
    }
    assert.ok(first, 'the pool was found to be down');
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const start = performance.now();
      const r = await fetch(`${gw.url}/`, { headers: { accept: 'application/json' } });
      await r.arrayBuffer();
      times.push(performance.now() - start);
      assert.ok([503, 504].includes(r.status), `status ${r.status}`);
      if (r.status === 503) assert.ok(Number(r.headers.get('retry-after')) > 0, 'with Retry-After');
    }
    const slow = times.filter((ms) => ms > 1000).length;
    assert.ok(slow <= 2, `at most the probes wait for the timeout: ${times.map(Math.round).join(', ')} ms`);
  },
);
