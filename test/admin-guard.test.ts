/**
 * The admin API cannot be driven by a web page: a request naming a host other than an IP
 * address, localhost or a configured name is refused (DNS rebinding), a change from another
 * site or origin is refused, and a change must be JSON. The bearer scheme is
 * case-insensitive (RFC 9110 §11.1).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** One admin request with full control of its headers (fetch would set Host and Origin itself). */
function admin(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, setHost: headers.host === undefined }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const SWITCH_ON = JSON.stringify({ enabled: true, message: 'from a test' });
const SWITCH_OFF = JSON.stringify({ enabled: false });

async function setup(top: Record<string, unknown> = {}) {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(minimalConfig([up.address], { top }));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  return gw;
}

test('DNS rebinding: a request naming another host is refused, reads and writes alike', async () => {
  const gw = await setup();
  for (const host of ['evil.example', 'evil.example:9901', 'localhost.evil.example', 'gangway.internal']) {
    const read = await admin(gw.adminUrl, 'GET', '/api/status', { host });
    assert.equal(read.status, 403, `GET with Host: ${host} is refused`);
    const write = await admin(
      gw.adminUrl,
      'PUT',
      '/api/maintenance',
      { host, 'content-type': 'application/json' },
      SWITCH_ON,
    );
    assert.equal(write.status, 403, `PUT with Host: ${host} is refused`);
  }
  const port = new URL(gw.adminUrl).port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, '10.0.0.7:9901', 'LOCALHOST']) {
    assert.equal((await admin(gw.adminUrl, 'GET', '/healthz', { host })).status, 200, `Host: ${host} is answered`);
  }
  const maintenance = (await (await fetch(`${gw.adminUrl}/api/maintenance`)).json()) as {
    switch: { enabled: boolean };
  };
  assert.equal(maintenance.switch.enabled, false, 'no refused write took effect');
});

test('names in adminHosts are answered', async () => {
  const gw = await setup({ adminHosts: ['gangway-admin.monitoring.svc'] });
  const r = await admin(gw.adminUrl, 'GET', '/metrics', { host: 'Gangway-Admin.monitoring.svc:9901' });
  assert.equal(r.status, 200, 'a configured name (any case, any port) is answered');
});

test('cross-site writes are refused: another origin, Sec-Fetch-Site, a form content type', async () => {
  const gw = await setup();
  const host = new URL(gw.adminUrl).host;
  const json = { host, 'content-type': 'application/json' };
  const refused: Array<[Record<string, string>, number, string]> = [
    [{ ...json, origin: 'http://evil.example' }, 403, 'another origin'],
    [{ ...json, origin: 'null' }, 403, 'an opaque origin'],
    [{ ...json, 'sec-fetch-site': 'cross-site' }, 403, 'a cross-site fetch'],
    [{ ...json, 'sec-fetch-site': 'same-site' }, 403, 'a same-site fetch from another origin'],
    [{ host, 'content-type': 'text/plain' }, 415, 'a text body'],
    [{ host, 'content-type': 'application/x-www-form-urlencoded' }, 415, 'a form'],
    [{ host }, 415, 'no content type'],
  ];
  for (const [headers, status, what] of refused) {
    assert.equal((await admin(gw.adminUrl, 'PUT', '/api/maintenance', headers, SWITCH_ON)).status, status, what);
    assert.equal((await admin(gw.adminUrl, 'POST', '/api/reload', headers, '{}')).status, status, `${what} (reload)`);
  }
  const state = (await (await fetch(`${gw.adminUrl}/api/maintenance`)).json()) as { switch: { enabled: boolean } };
  assert.equal(state.switch.enabled, false, 'nothing was switched on');
  const same = await admin(
    gw.adminUrl,
    'PUT',
    '/api/maintenance',
    { ...json, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
    SWITCH_OFF,
  );
  assert.equal(same.status, 200, 'a same-origin JSON change is accepted');
  const tool = await admin(
    gw.adminUrl,
    'PUT',
    '/api/maintenance',
    { ...json, 'content-type': 'application/json; charset=utf-8' },
    SWITCH_OFF,
  );
  assert.equal(tool.status, 200, 'a tool sending JSON (no Origin) is accepted');
});

test('the bearer scheme is case-insensitive', async () => {
  const token = 'a-token-of-sixteen-chars';
  const gw = await setup({ adminToken: token });
  const host = new URL(gw.adminUrl).host;
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    const r = await admin(
      gw.adminUrl,
      'PUT',
      '/api/maintenance',
      { host, 'content-type': 'application/json', authorization: `${scheme} ${token}` },
      SWITCH_OFF,
    );
    assert.equal(r.status, 200, `${scheme} is accepted`);
  }
  const wrong = await admin(
    gw.adminUrl,
    'PUT',
    '/api/maintenance',
    { host, 'content-type': 'application/json', authorization: 'Basic abc' },
    SWITCH_OFF,
  );
  assert.equal(wrong.status, 401, 'another scheme is not');
});
