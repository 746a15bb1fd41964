/**
 * The status page and GET /api/status: each service healthy, busy, degraded, down or in
 * maintenance with the reason, maintenance now and ahead, incidents the gateway observed
 * (episodes of failures a listener saw, with start, end and cause — requests shed at a limit
 * are counted apart and never open one), the last hour as chart columns, live updates over
 * server-sent events, counts in each language's plural forms, and a public copy on the main
 * listener that names services by their titles and leaves the operator's internals out.
 * Rendering in a real browser is in test/browser.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { formatMessage } from '../src/explain/message.js';
import { IncidentDetector } from '../src/observe/incidents.js';
import { Timeline } from '../src/observe/timeline.js';
import { closedPort, fetchRaw, httpUpstream, type RunningGateway, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Status {
  overall: string;
  services: Array<{
    name: string;
    title: string;
    state: string;
    reason?: string;
    reason_code?: string;
    upstream?: string;
    servers?: { in_rotation: number; total: number };
    last_minute: { requests: number; errors: number; shed: number; top_failure?: string; ttfb_p99_ms: number | null };
  }>;
  maintenance: { active: Array<{ message?: string }>; scheduled: Array<{ start: string; message?: string }> };
  incidents: Array<{ route: string; service: string; cause: string; ongoing: boolean; errors: number }>;
  history?: {
    step_s: number;
    t: number[];
    rps: number[];
    error_pct: number[];
    shed_pct: number[];
    ttfb_p99_ms: Array<number | null>;
  };
  upstreams?: unknown;
}

/** The admin's /api/status, polled until `done` holds (steps close every few 100 ms; longer on a busy machine). */
async function statusWhen(gw: RunningGateway, done: (s: Status) => boolean, ms = 5000): Promise<Status> {
  const deadline = Date.now() + ms;
  for (;;) {
    const status = (await (await fetch(`${gw.adminUrl}/api/status?history=1`)).json()) as Status;
    if (done(status) || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Requests in a history, and how many of them the chart shows as the `pct` column. */
function chartCounts(h: NonNullable<Status['history']>, pct: 'error_pct' | 'shed_pct'): [number, number] {
  let requests = 0;
  let part = 0;
  h.rps.forEach((rps, i) => {
    requests += rps * h.step_s;
    part += (rps * h.step_s * h[pct][i]!) / 100;
  });
  return [Math.round(requests), Math.round(part)];
}

test('services are healthy, down (with the cause) or in maintenance; an error episode becomes an incident with its cause', async () => {
  const good = await httpUpstream((_req, res) => res.end('ok'));
  const dead = await closedPort();
  const gw = await startGateway(
    {
      upstreams: {
        music: { hosts: [good.address], healthCheck: { enabled: false } },
        covers: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false }, retries: { attempts: 1 } },
        podcasts: { hosts: [good.address], healthCheck: { enabled: false } },
      },
      routes: [
        { name: 'music', match: { path: '/music' }, upstream: 'music' },
        { name: 'covers', match: { path: '/covers' }, upstream: 'covers' },
        { name: 'podcasts', match: { path: '/podcasts' }, upstream: 'podcasts' },
      ],
      maintenance: {
        windows: [
          {
            start: new Date(Date.now() - 60_000).toISOString(),
            end: new Date(Date.now() + 3_600_000).toISOString(),
            message: 'Re-indexing',
            routes: ['podcasts'],
          },
          {
            start: new Date(Date.now() + 86_400_000).toISOString(),
            end: new Date(Date.now() + 90_000_000).toISOString(),
            message: 'Database upgrade',
          },
        ],
      },
    },
    { statusStepMs: 100 },
  );
  cleanups.push(
    () => gw.close(),
    () => good.close(),
  );
  for (let i = 0; i < 10; i++) {
    await fetchRaw(`${gw.url}/music/a`);
    await fetchRaw(`${gw.url}/covers/a`);
  }
  // Wait for the step holding the last request to close (a few 100 ms steps; longer on a busy machine).
  let status: Status;
  const deadline = Date.now() + 3000;
  do {
    await new Promise((r) => setTimeout(r, 150));
    status = (await (await fetch(`${gw.adminUrl}/api/status?history=1`)).json()) as Status;
  } while ((status.incidents[0]?.errors ?? 0) < 10 && Date.now() < deadline);
  const byName = Object.fromEntries(status.services.map((s) => [s.name, s]));
  assert.equal(byName.music!.state, 'healthy', 'music answers');
  assert.equal(byName.music!.last_minute.requests, 10, 'music counted its ten requests');
  assert.equal(byName.covers!.state, 'down', 'covers refuses every connection');
  assert.match(byName.covers!.reason!, /100% of requests failed in the last minute \(connection_refused\)/);
  assert.equal(byName.podcasts!.state, 'maintenance', 'podcasts is in its window');
  assert.equal(byName.podcasts!.reason, 'Re-indexing', "the window's message is the reason");
  assert.equal(status.overall, 'partial_outage', 'one service of three down');
  assert.equal(status.maintenance.active[0]!.message, 'Re-indexing', 'the active window');
  assert.equal(status.maintenance.scheduled[0]!.message, 'Database upgrade', 'the window ahead');
  assert.deepEqual(
    status.incidents.map((i) => [i.route, i.cause, i.ongoing, i.errors]),
    [['covers', 'connection_refused', true, 10]],
  );
  // The 20 requests may fall into one step or several, each with its own mix: what the
  // chart must show is the episode as a whole, ten of twenty failing.
  const history = status.history!;
  const [requests, failed] = chartCounts(history, 'error_pct');
  assert.equal(requests, 20, `the hour's chart holds the 20 requests: rps ${history.rps}`);
  assert.equal(failed, 10, `and shows half of them failing: error % ${history.error_pct}`);
  assert.ok(status.upstreams, 'the admin view has the hosts');
  assert.ok(
    gw.logs.some((l) => l.msg === 'incident: elevated error rate' && l.route === 'covers'),
    'the incident was logged',
  );
});

test('an incident closes after a calm minute; the p99 time to first byte is read within 10%', () => {
  const timeline = new Timeline(1000);
  const changes: string[] = [];
  const detector = new IncidentDetector(timeline, (i, opened) =>
    changes.push(`${opened ? 'open' : 'close'} ${i.route} ${i.cause}`),
  );
  for (let i = 0; i < 100; i++) timeline.record('api', 'ok', '', i + 1); // 1..100 ms
  for (let i = 0; i < 10; i++) timeline.record('api', 'failed', 'http_response_timeout', 10_000);
  timeline.closeStep();
  assert.deepEqual(changes, ['open api http_response_timeout']);
  const p = timeline.series('api')[0]!;
  assert.equal(p.requests, 110);
  assert.ok(p.ttfbP99! >= 9000 && p.ttfbP99! <= 11000, `p99 ${p.ttfbP99}`);
  // A minute and a half of clean traffic: the incident closes.
  for (let s = 0; s < 90; s++) {
    for (let i = 0; i < 20; i++) timeline.record('api', 'ok', '', 50);
    timeline.closeStep();
  }
  assert.deepEqual(changes, ['open api http_response_timeout', 'close api http_response_timeout']);
  const [incident] = detector.list();
  assert.equal(incident!.end !== null, true);
  assert.equal(incident!.errors, 10);
  const clean = timeline.series('api').slice(-1)[0]!;
  assert.ok(clean.ttfbP99! >= 45 && clean.ttfbP99! <= 55, `p99 of 50 ms answers reads ${clean.ttfbP99}`);
});

test('the status page is served with its chart library, and open pages get every new step over server-sent events', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(
    {
      upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
      routes: [{ name: 'music', upstream: 'music' }],
    },
    { statusStepMs: 200 },
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const page = await fetchRaw(`${gw.adminUrl}/status`);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  const html = page.body.toString();
  assert.match(html, /<script src="\/status\/uplot\.js"><\/script>/);
  assert.match(html, /window\.GANGWAY_STATUS=\{"name":"gangway"/);
  assert.doesNotMatch(html, /(src|href)="https?:/, 'nothing is loaded from elsewhere');
  const lib = await fetchRaw(`${gw.adminUrl}/status/uplot.js`);
  assert.equal(lib.status, 200);
  assert.match(lib.body.toString(), /uPlot/);

  const events: Array<Record<string, unknown>> = [];
  const stream = request(`${gw.adminUrl}/status/events`, (res) => {
    assert.equal(res.headers['content-type'], 'text/event-stream');
    let buf = '';
    res.on('data', (c: Buffer) => {
      buf += c.toString();
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = /^data: (.*)$/m.exec(frame);
        if (data) events.push(JSON.parse(data[1]!) as Record<string, unknown>);
      }
    });
  });
  stream.end();
  cleanups.push(() => stream.destroy());
  for (let i = 0; i < 5; i++) await fetchRaw(`${gw.url}/x`);
  const deadline = Date.now() + 3000;
  while (events.filter((e) => e.point).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(events[0]!.history, 'the first event carries the hour so far');
  const points = events.filter((e) => e.point).map((e) => e.point as { rps: number[] });
  assert.ok(points.length >= 2, `live steps arrived (${points.length})`);
  assert.ok(
    points.some((p) => p.rps[0]! > 0),
    'a step shows the requests made',
  );
});

test(
  'an overload spike: requests shed at the limit are counted apart and make ' + 'the service busy, never an incident',
  async () => {
    // One request at a time, 300 ms each: a burst of 30 finds the limit full and is shed at once.
    let busy = 0;
    const up = await httpUpstream((req, res) => {
      req.resume();
      busy++;
      setTimeout(() => {
        busy--;
        res.end('ok');
      }, 300);
    });
    const gw = await startGateway(
      {
        upstreams: {
          music: {
            hosts: [up.address],
            healthCheck: { enabled: false },
            concurrency: { min: 1, max: 1, maxWait: '50ms' },
          },
        },
        routes: [{ name: 'music', title: 'Music', upstream: 'music' }],
      },
      { statusStepMs: 100 },
    );
    cleanups.push(
      () => gw.close(),
      () => up.close(),
    );
    const answers = await Promise.all(Array.from({ length: 30 }, () => fetchRaw(`${gw.url}/track`)));
    const shed = answers.filter((a) => a.status === 503 && a.headers['retry-after'] !== undefined).length;
    assert.ok(shed >= 20, `most of the burst was shed (${answers.map((a) => a.status)})`);
    assert.equal(shed + answers.filter((a) => a.status === 200).length, 30, 'the rest were answered');
    const status = await statusWhen(gw, (s) => s.services[0]!.last_minute.requests === 30);
    const music = status.services[0]!;
    assert.deepEqual(
      { ...music.last_minute, ttfb_p99_ms: 0 },
      {
        requests: 30,
        errors: 0,
        shed,
        prevented: 0,
        error_rate: 0,
        shed_rate: Math.round((shed / 30) * 1e4) / 1e4,
        ttfb_p99_ms: 0,
      },
      'the shed requests are counted, and not as errors',
    );
    assert.equal(music.state, 'busy');
    assert.equal(music.reason_code, 'shedding');
    assert.equal(status.overall, 'busy', 'busy, not an outage');
    // With shed requests counted as failures, 20 of 30 would have opened one at once.
    assert.deepEqual(status.incidents, [], 'no incident');
    assert.deepEqual(chartCounts(status.history!, 'shed_pct'), [30, shed], 'the chart shows the shed requests');
    assert.deepEqual(chartCounts(status.history!, 'error_pct'), [30, 0], 'and no failure');
    const page = (await fetchRaw(`${gw.adminUrl}/status`)).body.toString();
    assert.match(page, new RegExp(`${shed} requests asked to retry later`));
    assert.match(page, /<span class="badge s-busy">Busy<\/span>/);
    assert.equal(busy, 0);
  },
);

test(
  'a stream cut part way is a failure the listener saw: counted as an error, ' + 'and five of them open an incident',
  async () => {
    // 200 with a length, half the body, then a reset: no validator, so it cannot be resumed.
    const up = await httpUpstream((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': '20000' });
      res.write(Buffer.alloc(10_000), () => setTimeout(() => res.socket?.resetAndDestroy(), 5));
    });
    const gw = await startGateway(
      {
        upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
        routes: [{ name: 'music', title: 'Music', upstream: 'music' }],
      },
      { statusStepMs: 100 },
    );
    cleanups.push(
      () => gw.close(),
      () => up.close(),
    );
    for (let i = 0; i < 5; i++) {
      const r = await fetchRaw(`${gw.url}/track/${i}.wav`);
      assert.equal(r.status, 200);
      assert.equal(r.complete, false, 'the listener sees the stream break');
    }
    const status = await statusWhen(gw, (s) => (s.incidents[0]?.errors ?? 0) >= 5);
    const music = status.services[0]!;
    assert.equal(music.last_minute.errors, 5, 'every cut stream is an error, though its status was 200');
    assert.equal(music.last_minute.shed, 0);
    assert.equal(music.last_minute.top_failure, 'http_response_incomplete');
    assert.equal(music.state, 'down');
    assert.deepEqual(
      status.incidents.map((i) => [i.route, i.service, i.cause, i.errors]),
      [['music', 'Music', 'http_response_incomplete', 5]],
    );
    const page = (await fetchRaw(`${gw.adminUrl}/status`)).body.toString();
    assert.match(page, /<strong>Music<\/strong> · Ongoing since <time datetime="[^"]+">/);
    assert.match(page, /Upstream response broke off \(5 of 5 requests failed, at worst 100%\)/);
  },
);

test(
  'the public view names services by their titles and leaves upstream names, ' +
    "host counts and addresses out; the operator's view keeps them",
  async () => {
    const good = await httpUpstream((_req, res) => res.end('ok'));
    const dead = await closedPort();
    const hosts = [good.address, `127.0.0.1:${dead}`];
    const gw = await startGateway({
      upstreams: {
        'backend-7': { hosts, healthCheck: { interval: '100ms', unhealthyThreshold: 1 } },
      },
      routes: [
        { name: 'tracks', title: 'Music', match: { path: '/music' }, upstream: 'backend-7' },
        { match: { path: '/' }, upstream: 'backend-7' },
      ],
      status: { path: '/_status' },
    });
    cleanups.push(
      () => gw.close(),
      () => good.close(),
    );
    // The dead host fails its first health check and leaves rotation.
    const admin = await statusWhen(gw, (s) => s.services[0]!.servers?.in_rotation === 1);
    assert.deepEqual(
      admin.services.map((v) => [v.name, v.title, v.upstream, v.servers, v.state, v.reason]),
      [
        ['tracks', 'Music', 'backend-7', { in_rotation: 1, total: 2 }, 'degraded', '1 of 2 servers out of rotation'],
        ['/', '/', 'backend-7', { in_rotation: 1, total: 2 }, 'degraded', '1 of 2 servers out of rotation'],
      ],
      'the operator sees routes, upstreams and servers',
    );
    const adminPage = (await fetchRaw(`${gw.adminUrl}/status`)).body.toString();
    assert.match(
      adminPage,
      /<strong>Music<\/strong><span class="detail">route tracks · upstream backend-7 · 1\/2 servers<\/span>/,
    );

    const json = (await (await fetch(`${gw.url}/_status/status.json`)).json()) as Status & Record<string, unknown>;
    assert.deepEqual(
      json.services.map((v) => [v.name, v.title, v.state, v.reason, Object.keys(v).sort()]),
      [
        [
          'tracks',
          'Music',
          'degraded',
          'Running with reduced capacity',
          ['last_minute', 'name', 'reason', 'reason_code', 'state', 'title'],
        ],
        [
          '/',
          '/',
          'degraded',
          'Running with reduced capacity',
          ['last_minute', 'name', 'reason', 'reason_code', 'state', 'title'],
        ],
      ],
      'listeners see titles and states, no upstream or server counts',
    );
    assert.equal(json.upstreams, undefined);
    assert.equal(json.routes, undefined);
    const publicPage = (await fetchRaw(`${gw.url}/_status`)).body.toString();
    assert.match(publicPage, /<strong>Music<\/strong>/);
    assert.match(publicPage, /<script src="\/_status\/uplot\.js"><\/script>/);
    for (const [what, text] of [
      ['JSON', JSON.stringify(json)],
      ['page', publicPage],
    ]) {
      assert.doesNotMatch(text!, /backend-7/, `no upstream name in the public ${what}`);
      assert.doesNotMatch(text!, /\b[12]\/2\b|servers/, `no host counts in the public ${what}`);
      for (const h of hosts)
        assert.doesNotMatch(text!, new RegExp(h.replace(/\./g, '\\.')), `no address in the public ${what}`);
    }
    // Error pages link to the public page.
    const failed = await fetchRaw(`${gw.url}/music/x`, { headers: { accept: 'text/html' } });
    assert.equal(failed.status, 200, 'the good host answers');
    const gone = await startGateway({
      upstreams: { music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } } },
      routes: [{ upstream: 'music' }],
      status: { path: '/_status' },
    });
    cleanups.push(() => gone.close());
    const page = await fetchRaw(`${gone.url}/track`, { headers: { accept: 'text/html' } });
    assert.match(page.body.toString(), /<a href="\/_status">Service status →<\/a>/);
    assert.equal(page.headers.link, '</_status>; rel="status"');
  },
);

test(
  "counts follow each language's plural rules, on the page the server renders " +
    'and in every live update; responsiveness is called time to first byte',
  async () => {
    const good = await httpUpstream((_req, res) => res.end('ok'));
    const dead = await closedPort();
    const gw = await startGateway(
      {
        upstreams: {
          music: { hosts: [good.address], healthCheck: { enabled: false } },
          covers: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false }, retries: { attempts: 1 } },
        },
        routes: [
          { name: 'music', title: 'Music', match: { path: '/music' }, upstream: 'music' },
          { name: 'covers', title: 'Covers', match: { path: '/covers' }, upstream: 'covers' },
        ],
      },
      { statusStepMs: 100 },
    );
    cleanups.push(
      () => gw.close(),
      () => good.close(),
    );
    await fetchRaw(`${gw.url}/music/a`);
    await fetchRaw(`${gw.url}/music/b`);
    assert.equal((await fetchRaw(`${gw.url}/covers/a`)).status, 502);
    await statusWhen(gw, (s) => s.services.every((v) => v.last_minute.requests > 0));
    const page = async (lang: string): Promise<string> =>
      (await fetchRaw(`${gw.adminUrl}/status`, { headers: { 'accept-language': lang } })).body.toString();
    const en = await page('en');
    assert.match(en, />2 requests, 0 errors</);
    assert.match(en, />1 request, 1 error</);
    assert.match(en, /1\/1 server</);
    const de = await page('de-DE');
    assert.match(de, />2 Anfragen, 0 Fehler</);
    assert.match(de, />1 Anfrage, 1 Fehler</);
    assert.match(de, /Dienst hat die Verbindung abgelehnt/, 'the cause in words, in German');
    for (const html of [en, de]) {
      assert.doesNotMatch(
        html.replace(/<script>window\.GANGWAY_STATUS=.*?<\/script>/s, ''),
        /\b1 (requests|errors|Anfragen)\b/,
      );
    }
    assert.match(en, /<th scope="col">Time to first byte \(p99\)<\/th>/);
    assert.match(en, /<figcaption>Time to first byte, p99<\/figcaption>/);
    assert.doesNotMatch(en, /response time/i);
    assert.match(de, /<th scope="col">Zeit bis zum ersten Byte \(p99\)<\/th>/);
    const json = JSON.stringify(await (await fetch(`${gw.adminUrl}/api/status?history=1`)).json());
    assert.match(json, /"ttfb_p99_ms":/);
    assert.doesNotMatch(json, /"p99_ms"|response_time/, 'the JSON names the measure');

    // A live update brings the sections rendered again, in the language the page asked for.
    const sections = await new Promise<Record<string, string>>((resolve, reject) => {
      const stream = request(`${gw.adminUrl}/status/events?lang=de`, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          const data = /^data: (.*)$/m.exec(buf);
          if (data) {
            stream.destroy();
            resolve((JSON.parse(data[1]!) as { sections: Record<string, string> }).sections);
          }
        });
      });
      stream.on('error', reject);
      stream.end();
    });
    assert.match(sections.services!, />1 Anfrage, 1 Fehler</);
    assert.match(sections.overall!, /Einige Dienste sind ausgefallen/);

    // The rules are the language's own, numbers are written its way, and `=N` comes first.
    const pattern = '{n, plural, =0 {brak plików} one {# plik} few {# pliki} many {# plików} other {# pliku}}';
    assert.deepEqual(
      [0, 1, 2, 5, 22, 5005].map((n) => formatMessage('pl', pattern, { n })),
      ['brak plików', '1 plik', '2 pliki', '5 plików', '22 pliki', '5005 plików'],
    );
    assert.equal(formatMessage('en', '{n, plural, one {# request} other {# requests}}', { n: 5002 }), '5,002 requests');
    assert.equal(formatMessage('de', '{n, plural, one {# Anfrage} other {# Anfragen}}', { n: 5002 }), '5.002 Anfragen');
    assert.equal(formatMessage('en', '{n} of {m}', { n: 1 }), '1 of {m}', 'an unknown name stays as written');
  },
);
