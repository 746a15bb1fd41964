/**
 * Maintenance: scheduled windows and the operator's switch answer 503 with Retry-After
 * counting down to the window's end and the operator's message; staff pass; the admin API
 * switch needs the token when one is set; a non-loopback admin API without a token is refused.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/index.js';
import { fetchRaw, httpUpstream, minimalConfig, rawExchange, startGateway } from './support/harness.js';

/** Admin changes are JSON (the admin API refuses anything a web form could send). */
const JSON_BODY = { 'content-type': 'application/json' };

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(extra: Record<string, unknown> = {}) {
  let reached = 0;
  const up = await httpUpstream((_req, res) => {
    reached++;
    res.end('music');
  });
  const gw = await startGateway(minimalConfig([up.address], extra));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  return { gw, reached: () => reached };
}

test("a scheduled window answers 503 with Retry-After to its end and the operator's message; staff pass", async () => {
  const start = new Date(Date.now() - 60_000).toISOString();
  const end = new Date(Date.now() + 90_000).toISOString();
  const { gw, reached } = await setup({
    top: {
      maintenance: {
        windows: [{ start, end, message: 'Back at 03:00 UTC.' }],
        allow: { header: 'x-staff', headerValue: 'yes' },
      },
    },
  });
  const res = await fetchRaw(`${gw.url}/track`, { headers: { accept: 'application/json' } });
  assert.equal(res.status, 503);
  assert.equal(
    res.headers['proxy-status'],
    'gangway; error=destination_unavailable; details="maintenance: upstream music"',
  );
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(retryAfter > 80 && retryAfter <= 90, `Retry-After ${retryAfter} counts down to the window's end`);
  const problem = JSON.parse(res.body.toString()) as { detail: string; title: string };
  assert.equal(problem.title, 'Down for maintenance');
  assert.match(problem.detail, /planned maintenance\. Back at 03:00 UTC\.$/);
  assert.equal(reached(), 0);
  const staff = await fetchRaw(`${gw.url}/track`, { headers: { 'x-staff': 'yes' } });
  assert.equal(staff.status, 200);
});

test('the admin switch: PUT turns maintenance on for some routes until a time, GET shows it, PUT turns it off', async () => {
  const { gw } = await setup();
  const until = new Date(Date.now() + 30_000).toISOString();
  const put = await fetch(`${gw.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: JSON_BODY,
    body: JSON.stringify({ enabled: true, until, message: 'Upgrading the catalogue.', routes: ['/'] }),
  });
  assert.equal(put.status, 200);
  const during = await fetchRaw(`${gw.url}/track`);
  assert.equal(during.status, 503);
  assert.ok(Number(during.headers['retry-after']) <= 30);
  assert.match(during.body.toString(), /Upgrading the catalogue\./);
  assert.match(await (await fetch(`${gw.adminUrl}/metrics`)).text(), /gangway_maintenance_active\{route="\/"\} 1/);
  const state = (await (await fetch(`${gw.adminUrl}/api/maintenance`)).json()) as {
    switch: { enabled: boolean; until: string };
  };
  assert.equal(state.switch.enabled, true);
  assert.equal(state.switch.until, until);
  const bad = await fetch(`${gw.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: JSON_BODY,
    body: JSON.stringify({ enabled: 'yes', routes: ['nope'] }),
  });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /"path": "enabled"/);
  assert.equal(
    (
      await fetch(`${gw.adminUrl}/api/maintenance`, {
        method: 'PUT',
        headers: JSON_BODY,
        body: JSON.stringify({ enabled: false }),
      })
    ).status,
    200,
  );
  assert.equal((await fetchRaw(`${gw.url}/track`)).status, 200);
});

test('with an admin token, changes need it', async () => {
  const { gw } = await setup({ top: { adminToken: 'correct-horse-battery-staple' } });
  const anonymous = await fetch(`${gw.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: JSON_BODY,
    body: JSON.stringify({ enabled: true }),
  });
  assert.equal(anonymous.status, 401);
  const wrong = await fetch(`${gw.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: { ...JSON_BODY, authorization: 'Bearer wrong-token-wrong-token' },
    body: JSON.stringify({ enabled: true }),
  });
  assert.equal(wrong.status, 401);
  assert.equal((await fetchRaw(`${gw.url}/track`)).status, 200, 'nothing changed');
  const right = await fetch(`${gw.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: { ...JSON_BODY, authorization: 'Bearer correct-horse-battery-staple' },
    body: JSON.stringify({ enabled: true }),
  });
  assert.equal(right.status, 200);
  assert.equal((await fetchRaw(`${gw.url}/track`)).status, 503);
});

test('an admin API beyond loopback without a token is refused at configuration time', () => {
  const previous = process.env.GANGWAY_ADMIN_TOKEN;
  delete process.env.GANGWAY_ADMIN_TOKEN;
  try {
    assert.throws(
      () =>
        parseConfigText(
          'admin: "0.0.0.0:9901"\nupstreams: { music: { hosts: ["127.0.0.1:7001"] } }\nroutes: [{ upstream: music }]\n',
          'gangway.yaml',
        ),
      /gangway\.yaml:1:8 admin: the admin API would listen on 0\.0\.0\.0, beyond loopback, with no admin token/,
    );
  } finally {
    if (previous !== undefined) process.env.GANGWAY_ADMIN_TOKEN = previous;
  }
});

test('upgrades (WebSocket) are held back by maintenance too', async () => {
  const { gw } = await setup();
  await fetch(`${gw.adminUrl}/api/maintenance`, {
    method: 'PUT',
    headers: JSON_BODY,
    body: JSON.stringify({ enabled: true }),
  });
  const answer = await rawExchange(
    gw.url,
    'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  );
  assert.match(answer, /^HTTP\/1.1 503 /);
  assert.match(answer, /retry-after: 300/);
});

test('draining a host: it gets no new requests while its stream under way finishes, then returns on request', async () => {
  let streamDone = false;
  const servedBy: string[] = [];
  const mk = async (name: string) => {
    const up = await httpUpstream((req, res) => {
      servedBy.push(name);
      if (req.url === '/long') {
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345');
        setTimeout(() => {
          res.end('67890');
          streamDone = true;
        }, 400);
        return;
      }
      res.end(name);
    });
    cleanups.push(() => up.close());
    return up;
  };
  const a = await mk('a');
  const b = await mk('b');
  const gw = await startGateway(minimalConfig([a.address, b.address], { upstream: { balance: 'round-robin' } }));
  cleanups.push(() => gw.close());
  const long = fetchRaw(`${gw.url}/long`); // round-robin: the first request goes to a
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(servedBy, ['a']);
  const drained = await fetch(`${gw.adminUrl}/api/drain`, {
    method: 'PUT',
    headers: JSON_BODY,
    body: JSON.stringify({ upstream: 'music', host: a.address, drain: true }),
  });
  assert.equal(drained.status, 200);
  assert.equal(((await drained.json()) as { state: string }).state, 'draining');
  for (let i = 0; i < 10; i++) assert.equal((await fetchRaw(`${gw.url}/x`)).body.toString(), 'b');
  const finished = await long;
  assert.equal(finished.complete, true);
  assert.equal(finished.body.toString(), '1234567890');
  assert.equal(streamDone, true);
  await fetch(`${gw.adminUrl}/api/drain`, {
    method: 'PUT',
    headers: JSON_BODY,
    body: JSON.stringify({ upstream: 'music', host: a.address, drain: false }),
  });
  const after = new Set<string>();
  for (let i = 0; i < 6; i++) after.add((await fetchRaw(`${gw.url}/x`)).body.toString());
  assert.ok(after.has('a'), 'back in rotation');
  assert.equal(
    (
      await fetch(`${gw.adminUrl}/api/drain`, {
        method: 'PUT',
        headers: JSON_BODY,
        body: JSON.stringify({ upstream: 'music', host: '127.0.0.9:1', drain: true }),
      })
    ).status,
    404,
  );
});

test('maintenance switched on without an end promises no end time: the page says none was announced', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(minimalConfig([up.address]));
  try {
    const put = await fetch(`${gw.adminUrl}/api/maintenance`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: true }),
    });
    assert.equal(put.status, 200);
    const page = await fetch(`${gw.url}/`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 503);
    const html = await page.text();
    assert.match(html, /No end has been announced yet/);
    assert.doesNotMatch(html, /Expected back at/);
    const text = await (await fetch(`${gw.url}/`, { headers: { accept: 'text/plain' } })).text();
    assert.doesNotMatch(text, /after \d/, 'the text form gives no clock time either');
  } finally {
    await gw.close();
    await up.close();
  }
});
