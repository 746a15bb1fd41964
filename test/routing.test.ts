/**
 * Routing through a real gateway: host (exact, wildcard, with a port, any case), methods,
 * path prefixes on segment boundaries, the order routes are written in, no route at all,
 * and absolute-form request targets. Each route leads to its own echo upstream, so which
 * upstream answered is which route matched, and what it received is what was forwarded.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { fetchRaw, httpUpstream, rawExchange, startGateway, type ClientResult } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** An upstream that records every request it receives and answers with its own name. */
async function echoHost(name: string) {
  const seen: Received[] = [];
  const up = await httpUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      res.setHeader('x-served-by', name);
      res.end(name);
    });
  });
  cleanups.push(() => up.close());
  return { name, address: up.address, seen };
}

type Echo = Awaited<ReturnType<typeof echoHost>>;

/** A gateway with one upstream per echo host (named after it) and these routes. */
async function gatewayRouting(hosts: Echo[], routes: Array<Record<string, unknown>>) {
  const upstreams: Record<string, unknown> = {};
  for (const h of hosts) upstreams[h.name] = { hosts: [h.address], healthCheck: { enabled: false } };
  const gw = await startGateway({ upstreams, routes } as Parameters<typeof startGateway>[0]);
  cleanups.push(() => gw.close());
  return gw;
}

/** The first access-log line, once written (the client may read the answer before the gateway logs it). */
async function logged(logs: Array<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const line = logs.find((l) => l.msg === 'request');
    if (line !== undefined) return line;
    assert.ok(Date.now() < deadline, 'the request was logged');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function servedBy(res: ClientResult): string | undefined {
  return res.headers['x-served-by'] as string | undefined;
}

function assertNoRoute(res: ClientResult, what: string): void {
  assert.equal(res.status, 404, `${what}: no route matches, so 404`);
  assert.equal(
    res.headers['proxy-status'],
    'gangway; error=destination_not_found',
    `${what}: Proxy-Status says no destination was found`,
  );
  assert.equal(servedBy(res), undefined, `${what}: no upstream answered`);
}

test('host matching: exact host, any case, with or without a port; a wildcard takes subdomains but not the bare domain', async () => {
  const exact = await echoHost('exact');
  const wild = await echoHost('wild');
  const gw = await gatewayRouting(
    [exact, wild],
    [
      { match: { host: 'api.example.com' }, upstream: 'exact' },
      { match: { host: '*.example.com' }, upstream: 'wild' },
    ],
  );
  const get = (host: string) => fetchRaw(`${gw.url}/x`, { headers: { host } });

  assert.equal(servedBy(await get('api.example.com')), 'exact', 'the exact host takes its route');
  assert.equal(servedBy(await get('API.Example.COM')), 'exact', 'host names match in any case');
  assert.equal(servedBy(await get('api.example.com:8443')), 'exact', 'a port in the Host header is ignored');
  assert.equal(servedBy(await get('cdn.example.com')), 'wild', 'a subdomain takes the wildcard route');
  assert.equal(servedBy(await get('CDN.EXAMPLE.COM:80')), 'wild', 'the wildcard also matches any case, with a port');
  assert.equal(servedBy(await get('a.b.example.com')), 'wild', 'the wildcard takes deeper subdomains too');

  assertNoRoute(await get('example.com'), 'the bare domain of a wildcard');
  assertNoRoute(await get('badexample.com'), 'a name that merely ends in the same letters');
  assertNoRoute(await get('api.example.com.evil.test'), 'a name that merely starts like the exact host');
  assertNoRoute(await get('other.test'), 'an unrelated host');

  assert.equal(exact.seen.length, 3, 'the exact upstream received exactly its three requests');
  assert.equal(wild.seen.length, 3, 'the wildcard upstream received exactly its three requests');
  assert.equal(
    exact.seen[2]!.headers.host,
    'api.example.com:8443',
    'the Host header is passed on as the client sent it',
  );
});

test('methods: a route limited to GET does not take a POST; a later route does, and a method no route takes is 404', async () => {
  const reader = await echoHost('reader');
  const writer = await echoHost('writer');
  const gw = await gatewayRouting(
    [reader, writer],
    [
      { match: { path: '/media', methods: ['GET'] }, upstream: 'reader' },
      { match: { path: '/media', methods: ['post', 'put'] }, upstream: 'writer' },
    ],
  );
  assert.equal(servedBy(await fetchRaw(`${gw.url}/media/a`)), 'reader', 'a GET takes the GET route');
  const post = await fetchRaw(`${gw.url}/media/a`, { method: 'POST', body: 'new' });
  assert.equal(servedBy(post), 'writer', 'a POST passes over the GET route to the next one');
  assert.equal(
    servedBy(await fetchRaw(`${gw.url}/media/a`, { method: 'PUT', body: 'x' })),
    'writer',
    'methods written in lower case in the configuration still match',
  );
  assertNoRoute(await fetchRaw(`${gw.url}/media/a`, { method: 'DELETE' }), 'a method no route accepts');

  assert.deepEqual(
    reader.seen.map((r) => r.method),
    ['GET'],
    'the GET-only upstream never saw anything but its GET',
  );
  assert.deepEqual(
    writer.seen.map((r) => r.method),
    ['POST', 'PUT'],
    'the writing upstream got the POST and the PUT',
  );
});

test('path prefixes match on segment boundaries: /api takes /api, /api/x and /api?q=1, never /apiary', async () => {
  const api = await echoHost('api');
  const docs = await echoHost('docs');
  const rest = await echoHost('rest');
  const gw = await gatewayRouting(
    [api, docs, rest],
    [
      { match: { path: '/api' }, upstream: 'api' },
      { match: { path: '/docs/' }, upstream: 'docs' },
      { match: { path: '/' }, upstream: 'rest' },
    ],
  );
  const expectations: Array<[string, string]> = [
    ['/api', 'api'],
    ['/api/', 'api'],
    ['/api/x', 'api'],
    ['/api/x/y?z=1', 'api'],
    ['/api?q=1', 'api'],
    ['/apiary', 'rest'],
    ['/api-v2/x', 'rest'],
    ['/API/x', 'rest'],
    ['/ap', 'rest'],
    ['/docs', 'docs'],
    ['/docs/guide', 'docs'],
    ['/docsx', 'rest'],
    ['/', 'rest'],
  ];
  for (const [path, expected] of expectations) {
    assert.equal(servedBy(await fetchRaw(`${gw.url}${path}`)), expected, `${path} goes to ${expected}`);
  }
  assert.deepEqual(
    api.seen.map((r) => r.url),
    ['/api', '/api/', '/api/x', '/api/x/y?z=1', '/api?q=1'],
    'the upstream receives the path and query unchanged (the prefix is not stripped)',
  );
});

test('routes are tried in the order written: the first match wins, not the longest prefix', async () => {
  const broad = await echoHost('broad');
  const narrow = await echoHost('narrow');
  const gw = await gatewayRouting(
    [broad, narrow],
    [
      { match: { path: '/api' }, upstream: 'broad' },
      { match: { path: '/api/v2' }, upstream: 'narrow' },
    ],
  );
  assert.equal(servedBy(await fetchRaw(`${gw.url}/api/v2/x`)), 'broad', 'the earlier, broader route wins');
  assert.equal(narrow.seen.length, 0, 'the later route was never used');

  const hostFirst = await echoHost('host-first');
  const pathFirst = await echoHost('path-first');
  const gw2 = await gatewayRouting(
    [hostFirst, pathFirst],
    [
      { match: { host: 'music.example', path: '/' }, upstream: 'host-first' },
      { match: { path: '/api' }, upstream: 'path-first' },
    ],
  );
  assert.equal(
    servedBy(await fetchRaw(`${gw2.url}/api/x`, { headers: { host: 'music.example' } })),
    'host-first',
    'a host route written first wins over a later path route',
  );
  assert.equal(
    servedBy(await fetchRaw(`${gw2.url}/api/x`, { headers: { host: 'other.example' } })),
    'path-first',
    'another host falls through to the path route',
  );
});

test('no route: 404 destination_not_found, in the access log too, and no upstream is asked', async () => {
  const api = await echoHost('api');
  const gw = await gatewayRouting([api], [{ match: { path: '/api' }, upstream: 'api' }]);
  assertNoRoute(await fetchRaw(`${gw.url}/elsewhere`, { headers: { accept: 'application/json' } }), '/elsewhere');
  assert.equal(api.seen.length, 0, 'the only upstream was not asked');
  const line = await logged(gw.logs);
  assert.equal(line.status, 404, 'the access log has the 404');
  assert.equal(line.failure, 'destination_not_found', 'the access log names the failure');
  assert.equal(line.attempts, 0, 'no attempt was made upstream');
});

test('an absolute-form target (GET http://host/path): routed by its path, forwarded in origin-form', async () => {
  const api = await echoHost('api');
  const rest = await echoHost('rest');
  const gw = await gatewayRouting(
    [api, rest],
    [
      { match: { path: '/api' }, upstream: 'api' },
      { match: { path: '/' }, upstream: 'rest' },
    ],
  );
  const raw = await rawExchange(
    gw.url,
    'GET http://music.example/api/tracks?page=2 HTTP/1.1\r\nHost: music.example\r\nConnection: close\r\n\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 200 /, `answered 200 (got ${JSON.stringify(raw.slice(0, 80))})`);
  assert.match(raw, /\r\nx-served-by: api\r\n/i, 'routed by the path of the absolute URL');
  assert.equal(api.seen.length, 1, 'the /api upstream received the request');
  assert.equal(api.seen[0]!.url, '/api/tracks?page=2', 'the upstream receives origin-form: path and query only');
  assert.equal(rest.seen.length, 0, 'the catch-all route was not used');

  const other = await rawExchange(
    gw.url,
    'GET http://music.example/apiary HTTP/1.1\r\nHost: music.example\r\nConnection: close\r\n\r\n',
  );
  assert.match(other, /\r\nx-served-by: rest\r\n/i, 'the segment boundary holds for absolute-form too');
  assert.equal(rest.seen[0]?.url, '/apiary', 'forwarded in origin-form');
});

test('an absolute-form target is routed by its own authority, whatever the Host header says (RFC 9112 §3.2.2)', async () => {
  const music = await echoHost('music');
  const other = await echoHost('other');
  const gw = await gatewayRouting(
    [music, other],
    [
      { match: { host: 'music.example' }, upstream: 'music' },
      { match: { host: 'other.example' }, upstream: 'other' },
    ],
  );
  const raw = await rawExchange(
    gw.url,
    'GET http://music.example/x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
  );
  assert.match(raw, /\r\nx-served-by: music\r\n/i, 'the authority in the request target decides the route');
  assert.equal(other.seen.length, 0, "the Host header's route was not used");
  assert.equal(music.seen[0]?.headers.host, 'music.example', 'the upstream is told the host the client named');
});
