/**
 * The status page and GET /api/status: each service healthy, degraded, down or in
 * maintenance with the reason, maintenance now and ahead, incidents the gateway observed
 * (elevated error rates with start, end and cause), the last hour as chart columns, live
 * updates over server-sent events, and a public copy on the main listener without host
 * addresses. Rendering in a real browser is in test/browser.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { IncidentDetector } from '../src/observe/incidents.js';
import { Timeline } from '../src/observe/timeline.js';
import { closedPort, fetchRaw, httpUpstream, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Status {
  overall: string;
  services: Array<{
    name: string;
    state: string;
    reason?: string;
    servers: { in_rotation: number; total: number };
    last_minute: { requests: number; errors: number };
  }>;
  maintenance: { active: Array<{ message?: string }>; scheduled: Array<{ start: string; message?: string }> };
  incidents: Array<{ route: string; cause: string; ongoing: boolean; errors: number }>;
  history?: { step_s: number; t: number[]; rps: number[]; error_pct: number[]; p99_ms: Array<number | null> };
  upstreams?: unknown;
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
  const step = history.step_s;
  let requests = 0;
  let failed = 0;
  history.rps.forEach((rps, i) => {
    requests += rps * step;
    failed += (rps * step * history.error_pct[i]!) / 100;
  });
  assert.equal(Math.round(requests), 20, `the hour's chart holds the 20 requests: rps ${history.rps}`);
  assert.equal(Math.round(failed), 10, `and shows half of them failing: error % ${history.error_pct}`);
  assert.ok(status.upstreams, 'the admin view has the hosts');
  assert.ok(
    gw.logs.some((l) => l.msg === 'incident: elevated error rate' && l.route === 'covers'),
    'the incident was logged',
  );
});

test('an incident closes after a calm minute; response-time p99 is read within 10%', () => {
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
  assert.ok(p.p99! >= 9000 && p.p99! <= 11000, `p99 ${p.p99}`);
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
  assert.ok(clean.p99! >= 45 && clean.p99! <= 55, `p99 of 50 ms answers reads ${clean.p99}`);
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

test('a public status page on the main listener leaves host addresses out, and error pages link to it', async () => {
  const dead = await closedPort();
  const gw = await startGateway({
    upstreams: { music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
    status: { path: '/_status' },
  });
  cleanups.push(() => gw.close());
  const page = await fetchRaw(`${gw.url}/_status`);
  assert.equal(page.status, 200);
  assert.match(page.body.toString(), /<script src="\/_status\/uplot\.js"><\/script>/);
  const json = (await (await fetch(`${gw.url}/_status/status.json`)).json()) as Status & Record<string, unknown>;
  assert.equal(json.upstreams, undefined);
  assert.doesNotMatch(JSON.stringify(json), new RegExp(`127\\.0\\.0\\.1:${dead}`));
  const failed = await fetchRaw(`${gw.url}/track`, { headers: { accept: 'text/html' } });
  assert.match(failed.body.toString(), /<a href="\/_status">Service status →<\/a>/);
  assert.equal(failed.headers.link, '</_status>; rel="status"');
});
