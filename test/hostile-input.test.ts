/**
 * Hostile input, by class, each with many generated variants sent raw to a real gateway in
 * front of a recording upstream that shows exactly what reached it: paths that try to leave
 * their route, invalid and doubled Host fields, absolute-form targets, client faults that must
 * never count against a host, slow uploads that must not starve other clients, an Expect:
 * 100-continue whose body never comes, upgrades a route does not allow, and a target too long.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { fetchRaw, httpUpstream, rawExchange, startGateway, type RunningGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

/** Two recording hosts behind a route for /public only (and /ws for upgrades), on a gateway of its own. */
async function setup(extra: Record<string, unknown> = {}) {
  const seen: Seen[] = [];
  const record = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    seen.push({ method: req.method!, url: req.url!, host: req.headers.host, headers: req.headers });
    req.resume();
    req.on('end', () => res.end(`upstream saw ${req.url}`));
  };
  const a = await httpUpstream(record);
  const b = await httpUpstream(record);
  for (const up of [a, b]) {
    up.server.on('upgrade', (req, socket) => {
      seen.push({ method: req.method!, url: req.url!, host: req.headers.host, headers: req.headers });
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
  }
  const gw = await startGateway({
    upstreams: { site: { hosts: [a.address, b.address], healthCheck: { enabled: false } } },
    routes: [
      { name: 'public', match: { path: '/public' }, upstream: 'site' },
      { name: 'ws', match: { path: '/ws' }, upstream: 'site', ...(extra.wsRoute as object) },
      { name: 'music', match: { path: '/', host: 'music.example' }, upstream: 'site' },
    ],
    ...(extra.top as object),
  });
  cleanups.push(
    () => gw.close(),
    () => a.close(),
    () => b.close(),
  );
  return { gw, seen };
}

const get = (target: string, host = 'x') => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

/** Every host of the pool still in rotation, no ejection counted, no attempt failed. */
async function hostsUntouched(gw: RunningGateway, why: string): Promise<void> {
  const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as {
    upstreams: Array<{ hosts: Array<{ address: string; state: string; ejections: number }> }>;
  };
  for (const h of status.upstreams[0]!.hosts) {
    assert.equal(h.state, 'in_rotation', `${why}: host ${h.address} is still in rotation`);
    assert.equal(h.ejections, 0, `${why}: host ${h.address} was never ejected`);
  }
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const failedAttempts = [
    ...metrics.matchAll(/^gangway_upstream_attempts_total\{[^}]*outcome="([^"]+)"[^}]*\} (\d+)/gm),
  ]
    .filter((m) => m[1] !== 'ok' && Number(m[2]) > 0)
    .map((m) => m[1]);
  assert.deepEqual(failedAttempts, [], `${why}: no attempt counted as a host's failure`);
}

// --- 1. The route table cannot be escaped -------------------------------------------------

const DOTS = ['..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '.%2E', '%2E.'];
const SEPARATORS = ['/', '\\', '%5c', '%5C', '%2f', '%2F', '//', '/./', ';/', ';x=1/'];

/** Targets built to reach /admin from under /public, in the ways origins have been fooled. */
function escapeAttempts(): string[] {
  const out = new Set<string>();
  for (const d of DOTS) {
    for (const s of SEPARATORS) {
      out.add(`/public/${d}${s}admin`);
      out.add(`/public${s}${d}${s}admin`);
      out.add(`/public/x/${d}${s}${d}${s}admin`);
      out.add(`/public/${d};${s}admin`);
      out.add(`/public/${d}${s}admin?x=1`);
    }
    out.add(`/public//${d}//admin`);
    out.add(`/public/./${d}/admin`);
    out.add(`/public/${d}%00/admin`);
  }
  return [...out];
}

test('paths that normalise outside /public never reach the upstream outside /public', async () => {
  const { gw, seen } = await setup();
  const attempts = escapeAttempts();
  assert.ok(attempts.length > 300, `a corpus of ${attempts.length} variants`);
  const outcomes = new Map<number, number>();
  for (let i = 0; i < attempts.length; i += 25) {
    const batch = attempts.slice(i, i + 25);
    const answers = await Promise.all(batch.map((t) => rawExchange(gw.url, get(t))));
    answers.forEach((answer, k) => {
      const status = statusOf(answer);
      outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
      assert.ok([400, 404, 200].includes(status), `${batch[k]} answered ${status}`);
    });
  }
  const escaped = seen.filter(
    (s) => !(s.url === '/public' || s.url.startsWith('/public/') || s.url.startsWith('/public?')),
  );
  assert.deepEqual(
    escaped.map((s) => s.url),
    [],
    'nothing outside /public reached the upstream',
  );
  for (const s of seen) {
    assert.doesNotMatch(s.url, /(^|\/)\.\.?(\/|$|;)|\\|%5c|%2e/i, `the upstream got a normalised path: ${s.url}`);
  }
  await hostsUntouched(gw, 'after the escape corpus');
  assert.ok(
    (outcomes.get(400) ?? 0) > 0 && (outcomes.get(404) ?? 0) > 0,
    `refused and not found both seen: ${[...outcomes]}`,
  );
});

test('harmless dot segments, encoded unreserved characters and doubled slashes inside the route are normalised, then forwarded', async () => {
  const { gw, seen } = await setup();
  const cases: Array<[string, string]> = [
    ['/public/a/../b', '/public/b'],
    ['/public/./a', '/public/a'],
    ['/public//a///b', '/public/a/b'],
    ['/public/%7Euser/%61bc', '/public/~user/abc'],
    ['/public/a%2fb', '/public/a%2Fb'],
    ['/public/a/b/..', '/public/a/'],
    ['/public/a?x=../../admin', '/public/a?x=../../admin'],
  ];
  for (const [sent, expected] of cases) {
    seen.length = 0;
    const answer = await rawExchange(gw.url, get(sent));
    assert.equal(statusOf(answer), 200, `${sent} is served`);
    assert.equal(seen[0]?.url, expected, `${sent} reaches the upstream as ${expected}`);
  }
});

test('the stricter path switches refuse any dot segment and any encoded slash', async () => {
  const { gw, seen } = await setup({
    top: { server: { paths: { rejectDotSegments: true, rejectEncodedSlash: true } } },
  });
  for (const t of ['/public/a/../b', '/public/./a', '/public/%2e/a', '/public/a%2Fb']) {
    assert.equal(statusOf(await rawExchange(gw.url, get(t))), 400, `${t} is refused`);
  }
  assert.equal(seen.length, 0, 'none reached the upstream');
});

// --- 2. Host is validated ------------------------------------------------------------------

test('invalid Host values and doubled Host fields get 400 and never reach a host', async () => {
  const { gw, seen } = await setup();
  const invalid = [
    'a b',
    'user@music.example',
    'music.example/evil',
    'music.example\\evil',
    'music.example?x',
    'music.example#x',
    'músic.example',
    'music.example:99999',
    'music.example:8o',
    '[::1',
    '[not-v6]',
    ':8080',
    'a,b',
    'a;b',
    "music.example'",
    'x'.repeat(300),
  ];
  for (const h of invalid) {
    const answer = await rawExchange(gw.url, `GET /public/x HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(answer), 400, `Host: ${JSON.stringify(h)} is refused`);
  }
  for (let i = 0; i < 10; i++) {
    const answer = await rawExchange(
      gw.url,
      'GET /public/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(answer), 400, 'two Host fields: 400 (RFC 9112 §3.2)');
    assert.match(answer, /more than one Host field/, 'saying why');
  }
  assert.equal(seen.length, 0, 'nothing reached the upstream');
  await hostsUntouched(gw, 'after invalid and doubled Host fields');
  for (const h of ['MUSIC.example:8080', '127.0.0.1:80', '[::1]:8080', 'a-b_c.example.', 'x:']) {
    assert.equal(statusOf(await rawExchange(gw.url, get('/public/ok', h))), 200, `Host: ${h} is valid`);
  }
});

test('an absolute-form target: its authority replaces Host, for routing and upstream', async () => {
  const { gw, seen } = await setup();
  const answer = await rawExchange(
    gw.url,
    'GET http://music.example/anything?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
  );
  assert.equal(statusOf(answer), 200, "routed by the target's authority (the music route)");
  assert.equal(seen[0]?.url, '/anything?q=1', 'forwarded in origin-form');
  assert.equal(seen[0]?.host, 'music.example', "with Host = the target's authority (RFC 9112 §3.2.2)");
  assert.equal(seen[0]?.headers['x-forwarded-host'], 'music.example');
  const bad = await rawExchange(
    gw.url,
    'GET http://user@music.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  assert.equal(statusOf(bad), 400, 'an authority with userinfo is refused');
});

// --- 3. A client's fault never counts against a host ----------------------------------------

test('client faults of every kind leave every host in rotation with nothing counted against it', async () => {
  const { gw } = await setup({ top: { server: { bodyTimeout: '300ms' } } });
  const faults: string[] = [
    'GET /public/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET /public/%zz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /public/..%2f..%2fadmin HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /public/x HTTP/1.1\r\nHost: a b\r\n\r\n',
    'POST /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n',
    'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n',
  ];
  for (let round = 0; round < 5; round++) {
    await Promise.all(faults.map((f) => rawExchange(gw.url, f, 2000)));
  }
  // Bodies that stall (408) and clients that leave mid-body.
  const stalled = await Promise.all(
    Array.from({ length: 5 }, () =>
      rawExchange(gw.url, 'POST /public/up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf', 3000),
    ),
  );
  for (const s of stalled) assert.equal(statusOf(s), 408, `a stalled body is answered 408:\n${s}`);
  for (let i = 0; i < 5; i++) {
    const s = connect(Number(new URL(gw.url).port), '127.0.0.1');
    s.write('POST /public/up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nsome');
    await sleep(20);
    s.destroy();
  }
  await sleep(200);
  await hostsUntouched(gw, 'after client faults');
  const ok = await fetchRaw(`${gw.url}/public/still-fine`);
  assert.equal(ok.status, 200, 'and the hosts serve as before');
});

// --- 4. Slow uploads do not starve everyone else ----------------------------------------------

test('300 clients trickling 1 MiB bodies at a byte a second do not keep others from being served', async () => {
  const { gw } = await setup();
  const slow: Socket[] = [];
  for (let i = 0; i < 300; i++) {
    const s = connect(Number(new URL(gw.url).port), '127.0.0.1');
    s.on('error', () => {});
    s.write(`POST /public/upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
    slow.push(s);
  }
  cleanups.push(() => {
    for (const s of slow) s.destroy();
  });
  const trickle = setInterval(() => {
    for (const s of slow) s.write('x');
  }, 1000);
  cleanups.push(() => clearInterval(trickle));
  await sleep(500);
  const results = [];
  for (let i = 0; i < 10; i++) {
    results.push(...(await Promise.all(Array.from({ length: 10 }, () => fetchRaw(`${gw.url}/public/page`)))));
  }
  clearInterval(trickle);
  const served = results.filter((r) => r.status === 200).length;
  assert.equal(served, 100, `every other client was served while 300 bodies trickled (${served} of 100)`);
});

// --- 5. A body that never comes ---------------------------------------------------------------

test('Expect: 100-continue with a body that never comes is closed with 408 after the body timeout', async () => {
  const { gw, seen } = await setup({ top: { server: { bodyTimeout: '500ms' } } });
  const started = performance.now();
  const answer = await rawExchange(
    gw.url,
    'POST /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n',
    5000,
  );
  const ms = performance.now() - started;
  assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\n/, 'the client is told to go on');
  assert.match(answer, /HTTP\/1\.1 408 /, 'then answered 408 when nothing came');
  assert.ok(ms < 4000, `and the connection closed (${ms.toFixed(0)} ms), not left open`);
  assert.equal(seen.length, 0, 'nothing went upstream');
});

// --- 6. Upgrades only as the route allows ------------------------------------------------------

test('only upgrades the route allows are tunnelled; h2c and unknown protocols are answered as plain requests', async () => {
  const { gw, seen } = await setup({ wsRoute: { upgrades: ['websocket'] } });
  const upgrade = (proto: string) =>
    `GET /ws/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: ${proto}\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`;
  const ws = await rawExchange(gw.url, upgrade('websocket'), 1000);
  assert.match(ws, /^HTTP\/1\.1 101 /, 'WebSocket is tunnelled');
  for (const proto of ['h2c', 'H2C', 'TLS/1.0', 'websocket, h2c', 'foo']) {
    seen.length = 0;
    const answer = await rawExchange(gw.url, upgrade(proto), 2000);
    assert.equal(statusOf(answer), 200, `Upgrade: ${proto} gets the plain answer:\n${answer}`);
    assert.doesNotMatch(answer, / 101 /, 'never a switch');
    assert.equal(seen[0]?.headers.upgrade, undefined, 'the upstream is not asked to switch');
    assert.equal(seen[0]?.headers['http2-settings'], undefined, 'nor given the fields for it');
  }
});

test('a route that allows no upgrades answers a WebSocket request as a plain one', async () => {
  const { gw } = await setup({ wsRoute: { upgrades: [] } });
  const answer = await rawExchange(
    gw.url,
    'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    2000,
  );
  assert.equal(statusOf(answer), 200, answer);
});

test('h2c cannot be allowed on a route: the configuration is refused', async () => {
  await assert.rejects(
    startGateway({ upstreams: { a: { hosts: ['127.0.0.1:1'] } }, routes: [{ upstream: 'a', upgrades: ['h2c'] }] }),
    /routes\[0\]\.upgrades\[0\]: h2c cannot be tunnelled/,
  );
});

// --- 8. Small conformance ----------------------------------------------------------------------

test('a 100 KB request target gets 414, a large header section 431', async () => {
  const { gw } = await setup();
  const long = await rawExchange(gw.url, `GET /public/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(statusOf(long), 414, `a long target: ${long.slice(0, 40)}`);
  const medium = await rawExchange(gw.url, `GET /public/${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(statusOf(medium), 414, 'a target over maxUriLength');
  const cookies = await rawExchange(
    gw.url,
    `GET /public/x HTTP/1.1\r\nHost: x\r\nCookie: ${'c'.repeat(20_000)}\r\n\r\n`,
  );
  assert.equal(statusOf(cookies), 431, 'large headers');
});

test('CONNECT gets a clear 400: a gateway is not a forward proxy', async () => {
  const { gw, seen } = await setup();
  const answer = await rawExchange(gw.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 2000);
  assert.equal(statusOf(answer), 400, answer);
  assert.match(answer, /not a forward proxy/, 'saying why');
  assert.equal(seen.length, 0, 'nothing reached the upstream');
});
