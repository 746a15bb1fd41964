/**
 * The HTTP cache (RFC 9111 as a shared cache, RFC 5861, RFC 9211) against real upstreams with
 * real header fields: what is stored and served, what is revalidated, what stands in for an
 * error, what a thundering herd costs the origin, and what every answer's Cache-Status says.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** An origin that counts its requests and answers with `handler`; a gateway with a cache in front of it. */
async function cached(handler: Handler, cache: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  let n = 0;
  const seen: IncomingMessage[] = [];
  const up = await httpUpstream((req, res) => {
    n++;
    seen.push(req);
    handler(req, res, n);
  });
  cleanups.push(() => up.close());
  const gw = await startGateway(
    minimalConfig([up.address], { route: { cache, ...((extra.route as object) ?? {}) }, ...extra }),
  );
  cleanups.push(() => gw.close());
  // undici's request, not fetch: fetch adds Cache-Control: no-cache to conditional requests.
  const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
    const r = await request(`${gw.url}${path}`, {
      method: method as 'GET',
      headers,
      body: method === 'POST' ? 'x' : undefined,
    });
    const fields = new Headers();
    for (const [k, v] of Object.entries(r.headers))
      if (v !== undefined) fields.set(k, Array.isArray(v) ? v.join(', ') : v);
    return {
      status: r.statusCode,
      headers: fields,
      body: await r.body.text(),
      cacheStatus: fields.get('cache-status') ?? '',
    };
  };
  return { up, gw, get, origin: () => n, seen };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  'a fresh response is stored and answered from the cache: one origin request, ' +
    'Cache-Status hit with ttl, Age counts up',
  async () => {
    const c = await cached((_req, res, n) => {
      res
        .writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', etag: '"v1"' })
        .end(`body ${n}`);
    });
    const first = await c.get('/a');
    assert.equal(first.body, 'body 1');
    assert.match(first.cacheStatus, /^gangway; fwd=uri-miss; fwd-status=200; stored; ttl=60$/);
    await sleep(1100);
    const second = await c.get('/a');
    assert.equal(second.body, 'body 1');
    assert.match(second.cacheStatus, /^gangway; hit; ttl=5\d$/);
    assert.ok(Number(second.headers.get('age')) >= 1, `Age ${second.headers.get('age')}`);
    assert.equal(second.headers.get('date'), first.headers.get('date'), "the origin's Date is passed on unchanged");
    assert.equal(c.origin(), 1);
    assert.notEqual(
      first.headers.get('x-request-id'),
      second.headers.get('x-request-id'),
      'each answer has its own id',
    );
    assert.equal(second.headers.get('content-length'), String('body 1'.length));
    const log = c.gw.logs.filter((l) => l.msg === 'request');
    assert.deepEqual(
      log.map((l) => l.cache),
      ['uri-miss', 'hit'],
    );
  },
);

test(
  'what a shared cache must not store: no-store, private, Set-Cookie, a request ' +
    'with Authorization; Vary: * never matches',
  async () => {
    const c = await cached((req, res) => {
      const kind = req.url!.slice(1);
      const headers: Record<string, string> = { 'cache-control': 'max-age=60' };
      if (kind === 'no-store') headers['cache-control'] = 'no-store';
      if (kind === 'private') headers['cache-control'] = 'private, max-age=60';
      if (kind === 'cookie') headers['set-cookie'] = 'session=1';
      if (kind === 'vary-star') headers.vary = '*';
      res.writeHead(200, headers).end(kind);
    });
    for (const path of ['/no-store', '/private', '/cookie', '/vary-star']) {
      await c.get(path);
      const again = await c.get(path);
      assert.doesNotMatch(again.cacheStatus, /hit/, path);
      assert.doesNotMatch((await c.get(path)).cacheStatus, /stored/, `${path} is never stored`);
    }
    await c.get('/auth', { authorization: 'Bearer x' });
    const auth = await c.get('/auth', { authorization: 'Bearer x' });
    assert.match(auth.cacheStatus, /fwd=bypass/);
    assert.equal(c.origin(), 4 * 3 + 2);
  },
);

test('Vary with several fields keeps one variant per combination and never serves one for another', async () => {
  const c = await cached((req, res) => {
    res
      .writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language, Accept-Encoding' })
      .end(`${req.headers['accept-language']}|${req.headers['accept-encoding']}`);
  });
  const de = { 'accept-language': 'de', 'accept-encoding': 'identity' };
  const en = { 'accept-language': 'en', 'accept-encoding': 'identity' };
  assert.equal((await c.get('/v', de)).body, 'de|identity');
  const enFirst = await c.get('/v', en);
  assert.equal(enFirst.body, 'en|identity');
  assert.match(enFirst.cacheStatus, /fwd=vary-miss/);
  assert.equal((await c.get('/v', de)).body, 'de|identity');
  const enAgain = await c.get('/v', { 'accept-language': 'en', 'accept-encoding': 'identity' });
  assert.equal(enAgain.body, 'en|identity');
  assert.match(enAgain.cacheStatus, /hit/);
  const other = await c.get('/v', { 'accept-language': 'en', 'accept-encoding': 'gzip' });
  assert.match(other.cacheStatus, /fwd=vary-miss/, 'one field differing is another variant');
  assert.equal(c.origin(), 3);
});

test(
  'a client that asks to go upstream (no-cache, max-age=0) is forwarded; Cache-Control: ' +
    'no-cache from the origin means revalidate every time',
  async () => {
    let etagVersion = 1;
    const c = await cached((req, res) => {
      if (req.url === '/always') {
        if (req.headers['if-none-match'] === `"v${etagVersion}"`) {
          res.writeHead(304, { etag: `"v${etagVersion}"`, 'cache-control': 'no-cache' }).end();
          return;
        }
        res.writeHead(200, { etag: `"v${etagVersion}"`, 'cache-control': 'no-cache' }).end(`always v${etagVersion}`);
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end('fresh');
    });
    await c.get('/fresh');
    assert.match((await c.get('/fresh', { 'cache-control': 'no-cache' })).cacheStatus, /fwd=request/);
    assert.match((await c.get('/fresh', { 'cache-control': 'max-age=0' })).cacheStatus, /fwd=request/);
    assert.match((await c.get('/fresh')).cacheStatus, /hit/);

    assert.equal((await c.get('/always')).body, 'always v1');
    const revalidated = await c.get('/always');
    assert.equal(revalidated.status, 200, 'the client gets the whole answer');
    assert.equal(revalidated.body, 'always v1');
    assert.match(revalidated.cacheStatus, /fwd=stale; fwd-status=304/);
    assert.equal(c.seen.at(-1)!.headers['if-none-match'], '"v1"', 'the cache sent its validator');
    etagVersion = 2;
    const changed = await c.get('/always');
    assert.equal(changed.body, 'always v2', 'a changed resource replaces the stored one');
    assert.match(changed.cacheStatus, /fwd=stale; fwd-status=200; stored/);
  },
);

test('a 304 from the origin updates the stored header fields', async () => {
  let tag = 'x-1';
  const c = await cached((req, res) => {
    if (req.headers['if-none-match'] === '"e"') {
      res.writeHead(304, { etag: '"e"', 'cache-control': 'max-age=1', 'x-tag': tag }).end();
      return;
    }
    res.writeHead(200, { etag: '"e"', 'cache-control': 'max-age=1', 'x-tag': tag }).end('the body');
  });
  assert.equal((await c.get('/r')).headers.get('x-tag'), 'x-1');
  tag = 'x-2';
  await sleep(1100);
  const after304 = await c.get('/r');
  assert.equal(after304.body, 'the body');
  assert.equal(after304.headers.get('x-tag'), 'x-2', "the 304's fields replace the stored ones");
  const hit = await c.get('/r');
  assert.match(hit.cacheStatus, /hit/, 'and the refreshed copy is fresh again');
  assert.equal(hit.headers.get('x-tag'), 'x-2');
});

test('Age arithmetic: an Age from upstream counts against max-age', async () => {
  const c = await cached((_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=100', age: '90' }).end('aged');
  });
  const first = await c.get('/aged');
  assert.match(first.cacheStatus, /ttl=10$/);
  const hit = await c.get('/aged');
  assert.ok(Number(hit.headers.get('age')) >= 90, `Age ${hit.headers.get('age')}`);
  assert.match(hit.cacheStatus, /hit; ttl=(9|10)$/);
});

test(
  'clients: If-None-Match and If-Modified-Since get 304 from the cache, a ' +
    'Range gets 206 from the stored whole, HEAD gets the headers',
  async () => {
    const body = 'abcdefghijklmnopqrstuvwxyz';
    const lastModified = new Date(Date.now() - 3600_000).toUTCString();
    const c = await cached((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"abc"', 'last-modified': lastModified }).end(body);
    });
    await c.get('/letters');
    const inm = await c.get('/letters', { 'if-none-match': 'W/"abc"' });
    assert.equal(inm.status, 304);
    assert.equal(inm.body, '');
    assert.equal(inm.headers.get('etag'), '"abc"');
    const ims = await c.get('/letters', { 'if-modified-since': new Date().toUTCString() });
    assert.equal(ims.status, 304);
    const older = await c.get('/letters', { 'if-modified-since': new Date(Date.now() - 7200_000).toUTCString() });
    assert.equal(older.status, 200);
    const range = await c.get('/letters', { range: 'bytes=2-5' });
    assert.equal(range.status, 206);
    assert.equal(range.body, 'cdef');
    assert.equal(range.headers.get('content-range'), `bytes 2-5/${body.length}`);
    const suffix = await c.get('/letters', { range: 'bytes=-3' });
    assert.equal(suffix.body, 'xyz');
    const outside = await c.get('/letters', { range: 'bytes=100-' });
    assert.equal(outside.status, 416);
    assert.equal(outside.headers.get('content-range'), `bytes */${body.length}`);
    const staleIfRange = await c.get('/letters', { range: 'bytes=0-1', 'if-range': '"other"' });
    assert.equal(staleIfRange.status, 200, 'If-Range not matching: the whole body');
    assert.equal(staleIfRange.body, body);
    const head = await c.get('/letters', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers.get('content-length'), String(body.length));
    assert.match(head.cacheStatus, /hit/, 'HEAD is answered from the stored GET');
    assert.equal(c.origin(), 1);
  },
);

test('unsafe methods invalidate the URL (and its Location) when they succeed', async () => {
  const c = await cached((req, res) => {
    if (req.method === 'POST') {
      req.resume();
      res.writeHead(201, { location: '/items/7' }).end('created');
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`${req.url} at ${Date.now()}`);
  });
  const before = await c.get('/items');
  await c.get('/items/7');
  assert.match((await c.get('/items')).cacheStatus, /hit/);
  const post = await c.get('/items', { 'content-type': 'text/plain' }, 'POST');
  assert.equal(post.status, 201);
  assert.match(post.cacheStatus, /fwd=method/);
  const after = await c.get('/items');
  assert.match(after.cacheStatus, /fwd=uri-miss/, 'the POST invalidated the URL');
  assert.notEqual(after.body, before.body);
  assert.match((await c.get('/items/7')).cacheStatus, /fwd=uri-miss/, 'and its Location');
});

test(
  'stale-if-error: with every host refusing, a stored copy answers 200 with ' +
    'Cache-Status fwd=stale and Proxy-Status naming the hidden error',
  async () => {
    let up = true;
    const c = await cached(
      (req, res) => {
        if (!up) {
          res.writeHead(503, { 'retry-after': '3' }).end('down');
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=1' }).end(`copy of ${req.url}`);
      },
      { staleIfError: '10m' },
    );
    await c.get('/catalogue');
    await sleep(1100);
    up = false;
    const stale = await c.get('/catalogue', { accept: 'application/json' });
    assert.equal(stale.status, 200);
    assert.equal(stale.body, 'copy of /catalogue');
    assert.match(stale.cacheStatus, /^gangway; fwd=stale; fwd-status=503; ttl=-\d+$/);
    assert.match(String(stale.headers.get('proxy-status')), /received-status=503/);
    assert.match(String(stale.headers.get('proxy-status')), /stood in/);
    const line = c.gw.logs.filter((l) => l.msg === 'request').at(-1)!;
    assert.equal(line.cache, 'stale-if-error');
    assert.equal(line.stood_in_for, 'upstream_error_status');
    assert.equal(line.outcome, 'ok', 'an error prevented is not an error seen');
    // Nothing stored for this URL: the error is explained as usual.
    const never = await c.get('/never-stored', { accept: 'application/json' });
    assert.equal(never.status, 503);
    assert.match(never.cacheStatus, /fwd=uri-miss; fwd-status=503/);

    await c.up.close();
    const refused = await c.get('/catalogue');
    assert.equal(refused.status, 200, 'a refused connection is hidden the same way');
    assert.match(refused.cacheStatus, /fwd=stale; ttl=-\d+; detail="connection_refused"/);
    assert.match(String(refused.headers.get('proxy-status')), /error=connection_refused/);
    const metrics = await fetch(`${c.gw.adminUrl}/metrics`).then((r) => r.text());
    assert.match(metrics, /gangway_errors_prevented_total\{route="\/",failure="connection_refused"\} 1/);
  },
);

test(
  'must-revalidate forbids standing in with a stale copy, unless the origin ' + 'allowed it with stale-if-error',
  async () => {
    let up = true;
    const c = await cached(
      (req, res) => {
        if (!up) {
          res.writeHead(502).end('bad');
          return;
        }
        const cc = req.url === '/strict' ? 'max-age=1, must-revalidate' : 'max-age=1, stale-if-error=600';
        res.writeHead(200, { 'cache-control': cc }).end(req.url);
      },
      { staleIfError: '10m' },
    );
    await c.get('/strict');
    await c.get('/origin-allows');
    await sleep(1100);
    up = false;
    assert.equal((await c.get('/strict', { accept: 'application/json' })).status, 502);
    const allowed = await c.get('/origin-allows');
    assert.equal(allowed.status, 200);
    assert.equal(allowed.body, '/origin-allows');
  },
);

test(
  'stale-while-revalidate: the stale copy answers at once and the origin is ' + 'asked once in the background',
  async () => {
    const c = await cached((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60' }).end(`v${n}`);
    });
    await c.get('/swr');
    await sleep(1100);
    const stale = await c.get('/swr');
    assert.equal(stale.body, 'v1');
    assert.match(stale.cacheStatus, /hit; ttl=-\d+; detail="stale-while-revalidate"/);
    await sleep(200);
    assert.equal(c.origin(), 2, 'revalidated in the background');
    const fresh = await c.get('/swr');
    assert.equal(fresh.body, 'v2');
    assert.match(fresh.cacheStatus, /hit; ttl=\d+$/);
  },
);

test('1,000 concurrent requests for one cold object make exactly one upstream request', async () => {
  // 1,000 connections at once hold a loaded machine's event loop up: shedding is not what is tested here.
  const c = await cached(
    (_req, res) => {
      setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('the one answer'), 300);
    },
    {},
    { top: { server: { maxEventLoopDelay: 0 } } },
  );
  const agent = new Agent({ connections: 1000 });
  cleanups.push(() => agent.close());
  const answers = await Promise.all(
    Array.from({ length: 1000 }, () =>
      request(`${c.gw.url}/cold`, { dispatcher: agent }).then(async (r) => ({
        status: r.statusCode,
        body: await r.body.text(),
        cacheStatus: String(r.headers['cache-status']),
      })),
    ),
  );
  assert.equal(c.origin(), 1);
  const others = answers.filter((a) => a.status !== 200 || a.body !== 'the one answer');
  assert.deepEqual(others.slice(0, 3), [], `${others.length} answers were not the one answer`);
  // Those that arrived while it was under way waited for it; later ones found it stored.
  const collapsed = answers.filter((a) => /collapsed/.test(a.cacheStatus)).length;
  const hits = answers.filter((a) => /; hit/.test(a.cacheStatus)).length;
  assert.equal(collapsed + hits, 999, `${collapsed} collapsed, ${hits} hits`);
  assert.ok(collapsed > 0);
});

test(
  'a body larger than the object limit streams through uncached; a scan of ' +
    'unique URLs stays within the byte budget',
  async () => {
    const big = Buffer.alloc(300_000, 'x');
    const c = await cached(
      (req, res) => {
        if (req.url === '/big-declared') {
          res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': big.length }).end(big);
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=60' }).end(req.url === '/big' ? big : Buffer.alloc(10_000, 'y'));
      },
      { maxObjectSize: '100KiB', maxSize: '200KiB' },
    );
    assert.equal((await c.get('/big')).body.length, big.length);
    const again = await c.get('/big');
    assert.doesNotMatch(again.cacheStatus, /hit/);
    assert.equal(c.origin(), 2, 'it was let go when it outgrew the limit');
    const declared = await c.get('/big-declared');
    assert.doesNotMatch(declared.cacheStatus, /stored/, 'a declared length over the limit is never stored');
    for (let i = 0; i < 100; i++) await c.get(`/scan/${i}`);
    const metrics = await fetch(`${c.gw.adminUrl}/metrics`).then((r) => r.text());
    const bytes = Number(/gangway_cache_bytes\{route="\/"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(bytes > 100_000 && bytes <= 200 * 1024, `cache bytes ${bytes}`);
    assert.match((await c.get('/scan/99')).cacheStatus, /hit/, 'recent URLs stay');
    assert.match((await c.get('/scan/0')).cacheStatus, /uri-miss/, 'the least recently used went');
  },
);

test(
  "admin: purge by URL or prefix; /api/status shows each cached route's size, " +
    'entries and hit ratio; the status page counts errors prevented',
  async () => {
    let down = false;
    const c = await cached(
      (req, res) => {
        if (down) {
          res.writeHead(503).end();
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=1' }).end(req.url);
      },
      { staleIfError: '1h' },
    );
    for (const p of ['/api/tracks', '/api/tracks/1', '/api/tracks/2', '/covers/1']) await c.get(p);
    await c.get('/api/tracks');
    const purge = (body: unknown) =>
      fetch(`${c.gw.adminUrl}/api/cache/purge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { purged: number; error?: string } }));
    assert.deepEqual((await purge({ url: '/covers/1' })).body.purged, 1);
    assert.deepEqual((await purge({ url: '/api/tracks/', prefix: true })).body.purged, 2);
    assert.equal((await purge({ url: 'not a url' })).status, 400);
    assert.match((await c.get('/covers/1')).cacheStatus, /uri-miss/);
    assert.match((await c.get('/api/tracks/1')).cacheStatus, /uri-miss/);

    const status = (await (await fetch(`${c.gw.adminUrl}/api/status`)).json()) as {
      routes: Array<{ cache: { entries: number; bytes: number; hits: number; hit_ratio: number } }>;
    };
    const cache = status.routes[0]!.cache;
    assert.equal(cache.entries, 3, '/api/tracks, and the two fetched again after the purge');
    assert.ok(cache.bytes > 0);
    assert.equal(cache.hits, 1);
    assert.ok(cache.hit_ratio > 0 && cache.hit_ratio < 1);

    await sleep(1100);
    down = true;
    assert.equal((await c.get('/api/tracks')).status, 200, 'the stored copy stands in');
    c.gw.gateway.metrics.timeline.closeStep();
    const page = await (await fetch(`${c.gw.adminUrl}/status`)).text();
    assert.match(page, /1 error prevented by serving the last good answer/);
  },
);

test("CDN-Cache-Control (RFC 9213) governs the cache while clients get the origin's own Cache-Control", async () => {
  const c = await cached((_req, res) => {
    res
      .writeHead(200, {
        'cache-control': 'no-cache',
        'cdn-cache-control': 'max-age=60',
        expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
      })
      .end('targeted');
  });
  await c.get('/t');
  const hit = await c.get('/t');
  assert.match(hit.cacheStatus, /hit; ttl=(59|60)/, 'the targeted field made it fresh for a minute');
  assert.equal(hit.headers.get('cache-control'), 'no-cache', 'browsers still revalidate');
  assert.equal(hit.headers.get('expires'), 'Thu, 01 Jan 1970 00:00:00 GMT');
  assert.equal(hit.headers.get('cdn-cache-control'), 'max-age=60');
  assert.equal(c.origin(), 1);
});

test('a 304 that repeats no validator refreshes the copy it answered, keeping the stored Content-Type', async () => {
  const lastModified = new Date(Date.now() - 60_000).toUTCString();
  const c = await cached((req, res) => {
    if (req.headers['if-modified-since'] === lastModified) {
      res.writeHead(304, { 'cache-control': 'max-age=1' }).end();
      return;
    }
    res
      .writeHead(200, {
        'cache-control': 'max-age=1',
        'last-modified': lastModified,
        'content-type': 'application/json',
      })
      .end('{"v":1}');
  });
  await c.get('/lm');
  await sleep(1100);
  const again = await c.get('/lm');
  assert.equal(again.status, 200);
  assert.equal(again.body, '{"v":1}');
  assert.equal(again.headers.get('content-type'), 'application/json', 'the stored fields survive a bare 304');
  assert.match(again.cacheStatus, /fwd=stale; fwd-status=304; ttl=1$/);
  assert.match((await c.get('/lm')).cacheStatus, /hit/);
});

test('a stored copy never stands in for a client that asked to go upstream, or one with credentials', async () => {
  let up = true;
  const c = await cached(
    (_req, res) => {
      if (!up) {
        res.writeHead(503).end('down');
        return;
      }
      res.writeHead(200, { 'cache-control': 'public, max-age=1' }).end('copy');
    },
    { staleIfError: '1h' },
  );
  await c.get('/x');
  await sleep(1100);
  up = false;
  assert.equal((await c.get('/x', { 'cache-control': 'no-cache', accept: 'application/json' })).status, 503);
  assert.equal((await c.get('/x', { authorization: 'Bearer t', accept: 'application/json' })).status, 503);
  const allowed = await c.get('/x', { 'cache-control': 'no-cache, stale-if-error=3600' });
  assert.equal(allowed.status, 200, 'unless the client itself allows stale-if-error');
  assert.equal((await c.get('/x')).status, 200);
});

test('when the fetch others wait for fails, they go upstream one at a time, not all at once', async () => {
  let inFlight = 0;
  let most = 0;
  const c = await cached((_req, res) => {
    inFlight++;
    most = Math.max(most, inFlight);
    setTimeout(() => {
      inFlight--;
      res.writeHead(500, { 'cache-control': 'no-store' }).end('broken');
    }, 100);
  });
  const answers = await Promise.all(Array.from({ length: 10 }, () => c.get('/failing')));
  assert.ok(answers.every((a) => a.status === 500));
  assert.equal(most, 1, 'the origin never saw two of them at once');
  assert.equal(c.origin(), 10);
});

test(
  "an explained upstream error keeps the upstream's CORS fields, so a page " + 'on another origin can read it',
  async () => {
    const c = await cached((_req, res) => {
      res
        .writeHead(503, {
          'access-control-allow-origin': 'https://app.example',
          'access-control-expose-headers': 'retry-after',
          'retry-after': '4',
        })
        .end('overloaded');
    }, {});
    const r = await c.get('/api/x', { accept: 'application/json', origin: 'https://app.example' });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(r.headers.get('access-control-expose-headers'), 'retry-after');
    assert.match(String(r.headers.get('vary')), /Origin/);
  },
);

test(
  'a reload that points the route at another upstream starts its cache empty; ' + 'one that changes nothing keeps it',
  async () => {
    const c = await cached((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end('from the first upstream');
    });
    await c.get('/r');
    const config = minimalConfig([c.up.address], { route: { cache: {} } });
    await c.gw.gateway.reload(config);
    assert.match((await c.get('/r')).cacheStatus, /hit/, 'unchanged: kept');
    const other = await httpUpstream((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end('from the second upstream');
    });
    cleanups.push(() => other.close());
    const moved = minimalConfig([other.address], { route: { cache: {} } }) as { upstreams: Record<string, unknown> };
    moved.upstreams = { second: (moved.upstreams as Record<string, unknown>).music };
    (moved as unknown as { routes: Array<{ upstream: string }> }).routes[0]!.upstream = 'second';
    await c.gw.gateway.reload(moved as never);
    const after = await c.get('/r');
    assert.equal(after.body, 'from the second upstream');
  },
);
