/**
 * The error page and the status page in real headless Chromium: they render with no failed
 * request and no console error, in light and dark, readable at 200% zoom with AA contrast;
 * the error page's countdown retries by itself and lands on the real page once the upstream
 * is back; the status page updates live, in English and in German.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { browserUnavailable, launchBrowser, watchedPage } from './support/browser.js';
import { closedPort, fetchRaw, httpUpstream, startGateway } from './support/harness.js';

const skip = browserUnavailable();
const cleanups: Array<() => unknown> = [];
let browser: Browser;
before(async () => {
  if (!skip) browser = await launchBrowser();
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await browser?.close();
});

/** WCAG contrast ratio of an element's text against the page background, in the page. */
const CONTRAST = `(sel) => {
  const lum = (c) => { const [r, g, b] = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  return [...document.querySelectorAll(sel)].map((el) => {
    const fg = lum(getComputedStyle(el).color);
    let bgEl = el; let bg = 'rgba(0, 0, 0, 0)';
    while (bgEl && (bg = getComputedStyle(bgEl).backgroundColor) === 'rgba(0, 0, 0, 0)') bgEl = bgEl.parentElement;
    if (bg === 'rgba(0, 0, 0, 0)') bg = getComputedStyle(document.documentElement).backgroundColor;
    const b = lum(bg); const [hi, lo] = fg > b ? [fg, b] : [b, fg];
    return (hi + 0.05) / (lo + 0.05);
  });
}`;

/** Why an element would pass for a button: a border, a fill, padding, a pointer, or a place in the tab order. */
const BUTTON_LIKE = `(sel) => {
  const el = document.querySelector(sel); const s = getComputedStyle(el); const why = [];
  for (const side of ['Top', 'Right', 'Bottom', 'Left']) if (parseFloat(s['border' + side + 'Width']) > 0 && s['border' + side + 'Style'] !== 'none') why.push('border-' + side.toLowerCase());
  if (s.backgroundColor !== 'rgba(0, 0, 0, 0)' || s.backgroundImage !== 'none') why.push('a fill');
  if (parseFloat(s.paddingTop) + parseFloat(s.paddingBottom) > 0) why.push('padding');
  if (s.boxShadow !== 'none') why.push('a shadow');
  if (s.cursor === 'pointer') why.push('a pointer');
  if (el.tabIndex >= 0) why.push('focusable');
  return why;
}`;

/** The support block's rows: where each term and its value start and end. */
const SUPPORT_ROWS = `[...document.querySelectorAll('footer dl > div')].map((row) => {
  const dt = row.querySelector('dt').getBoundingClientRect(); const dd = row.querySelector('dd').getBoundingClientRect();
  return { dtLeft: dt.left, dtBottom: dt.bottom, ddLeft: dd.left, ddTop: dd.top };
})`;

test('the error page renders cleanly in light and dark, at 200% zoom, with AA contrast', { skip }, async () => {
  const dead = await closedPort();
  const gw = await startGateway({
    upstreams: { music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
    errors: { statusPage: '/status' },
  });
  cleanups.push(() => gw.close());
  for (const colorScheme of ['light', 'dark'] as const) {
    // 500 CSS pixels wide is a 1000-pixel window at 200% zoom.
    for (const width of [1000, 500]) {
      const { page, problems } = await watchedPage(browser, { colorScheme, viewport: { width, height: 800 } });
      const res = await page.goto(`${gw.url}/music/track/1`);
      assert.equal(res!.status(), 502);
      assert.equal(await page.locator('h1').textContent(), 'The music service is not answering right now');
      assert.equal(await page.locator('#count').isVisible(), true);
      const overflow = (await page.evaluate(
        'document.documentElement.scrollWidth - document.documentElement.clientWidth',
      )) as number;
      assert.ok(overflow <= 0, `no sideways scrolling at ${width}px (${overflow}px over)`);
      const ratios = (await page.evaluate(
        `(${CONTRAST})('h1, h2, p, li, dt, dd, code, .side, button, a')`,
      )) as number[];
      const worst = Math.min(...ratios);
      assert.ok(worst >= 4.5, `${colorScheme}: lowest contrast ${worst.toFixed(2)}:1 is below AA`);
      assert.deepEqual(await page.evaluate(`(${BUTTON_LIKE})('.side')`), [], 'whose side it is reads as a label');
      assert.notDeepEqual(await page.evaluate(`(${BUTTON_LIKE})('#now')`), [], 'the real button still looks like one');
      assert.deepEqual(problems, []);
      await page.context().close();
    }
  }
});

/** A page for the address the error page stands in for, served once the service is back. */
function trackServer(): Server {
  return createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>Track</title><h1>Now playing</h1>');
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
}

test('a service back after 16 s is back on screen within 25 s: the page honours Retry-After and backs off gently', {
  skip,
}, async () => {
  const port = await closedPort();
  const gw = await startGateway({
    upstreams: { music: { hosts: [`127.0.0.1:${port}`], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
  });
  cleanups.push(() => gw.close());
  const { page, problems } = await watchedPage(browser);
  const checks: number[] = [];
  page.on('request', (r) => {
    if (r.resourceType() === 'fetch') checks.push(performance.now());
  });
  const loaded = performance.now();
  const res = await page.goto(`${gw.url}/music/track/1`);
  assert.equal(res!.headers()['retry-after'], '5');
  assert.match(String(await page.locator('#retry').textContent()), /^Next check in \d seconds?\.$/);
  const first = await page.locator('#count').textContent();
  await page.waitForTimeout(1200);
  assert.notEqual(await page.locator('#count').textContent(), first, 'the countdown runs');

  // The service comes back 16 s after the page was shown.
  const up = trackServer();
  await new Promise((r) => setTimeout(r, loaded + 16_000 - performance.now()));
  await new Promise<void>((r) => up.listen(port, '127.0.0.1', r));
  cleanups.push(() => closeServer(up));
  await page.waitForSelector('text=Now playing', { timeout: loaded + 25_000 - performance.now() });
  const back = (performance.now() - loaded) / 1000;
  assert.equal(await page.title(), 'Track');
  assert.ok(back <= 25, `back on screen after ${back.toFixed(1)} s`);
  // Retry-After 5: no check sooner than that after the page or after the last check.
  const gaps = checks.map((t, i) => (t - (i === 0 ? loaded : checks[i - 1]!)) / 1000);
  assert.ok(gaps.length >= 2, `checked ${gaps.length} times`);
  assert.ok(
    gaps.every((g) => g >= 4.9),
    `checks ${gaps.map((g) => g.toFixed(1)).join(', ')} s apart`,
  );
  assert.deepEqual(
    problems.filter((p) => !/status of 502/.test(p)),
    [],
    "the only errors were the page's own 502 checks",
  );
  await page.context().close();
});

test('a page waiting out a long maintenance checks at once when the network comes back or its tab is back in front', {
  skip,
}, async () => {
  const up = trackServer();
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(up));
  const gw = await startGateway({
    upstreams: {
      music: { hosts: [`127.0.0.1:${(up.address() as AddressInfo).port}`], healthCheck: { enabled: false } },
    },
    routes: [{ upstream: 'music' }],
  });
  cleanups.push(() => gw.close());
  const maintenance = async (enabled: boolean) => {
    const until = new Date(Date.now() + 10 * 60_000).toISOString();
    const res = await fetch(`${gw.adminUrl}/api/maintenance`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(enabled ? { enabled, until } : { enabled }),
    });
    assert.equal(res.status, 200);
  };
  const { page, problems } = await watchedPage(browser, { locale: 'de-DE', timezoneId: 'Europe/Berlin' });
  await page.setExtraHTTPHeaders({ 'accept-language': 'de-DE,de;q=0.9' });
  const expectedBack = async () => String(await page.locator('#when + p').textContent());

  // The network: offline, then back while the page still has ten minutes to wait.
  await maintenance(true);
  await page.goto(`${gw.url}/music/track/1`);
  assert.match(
    await expectedBack(),
    /^Voraussichtlich wieder verfügbar: \d\d:\d\d MES?Z, in (etwa )?10 Minuten\.$/,
    "the reader's own clock and zone",
  );
  await page.context().setOffline(true);
  await page.waitForSelector('#retry:has-text("Ihr Gerät ist offline")', { timeout: 2000 });
  await maintenance(false);
  const online = performance.now();
  await page.context().setOffline(false);
  await page.waitForSelector('text=Now playing', { timeout: 5000 });
  assert.ok(performance.now() - online < 4000, 'checked as soon as the network was back');

  // The tab: another one in front, then this one again. Playwright makes every page think it
  // has the focus; without that, bringing a tab to the front focuses its window for real.
  await maintenance(true);
  await page.goto(`${gw.url}/music/track/1`);
  const shown = performance.now();
  await (await page.context().newCDPSession(page)).send('Emulation.setFocusEmulationEnabled', { enabled: false });
  const other = await page.context().newPage();
  await other.goto('about:blank');
  await other.bringToFront();
  await maintenance(false);
  // An early check still waits 5 s after the last one.
  await page.waitForTimeout(shown + 5200 - performance.now());
  assert.match(await expectedBack(), /in (etwa )?10 Minuten/, 'no check while the tab is in the background');
  const front = performance.now();
  await page.bringToFront();
  await page.waitForSelector('text=Now playing', { timeout: 5000 });
  assert.ok(performance.now() - front < 3000, 'checked as soon as the tab was back in front');
  assert.deepEqual(
    problems.filter((p) => !/status of 503|ERR_INTERNET_DISCONNECTED/.test(p)),
    [],
    "the only errors were the page's own checks",
  );
  await page.context().close();
});

test('on a phone the error page and the maintenance page fit, and the support block lines up', { skip }, async () => {
  const dead = await closedPort();
  const up = trackServer();
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(up));
  const gw = await startGateway({
    upstreams: {
      music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } },
      podcasts: { hosts: [`127.0.0.1:${(up.address() as AddressInfo).port}`], healthCheck: { enabled: false } },
    },
    routes: [
      { name: 'podcasts', match: { path: '/podcasts' }, upstream: 'podcasts' },
      { name: 'music', match: { path: '/music' }, upstream: 'music' },
    ],
    maintenance: {
      windows: [
        {
          start: new Date(Date.now() - 60_000).toISOString(),
          end: new Date(Date.now() + 298_000).toISOString(),
          message: 'Moving to new servers.',
          routes: ['podcasts'],
        },
      ],
    },
  });
  cleanups.push(() => gw.close());
  for (const path of ['/music/track/1', '/podcasts/episode/1']) {
    const { page, problems } = await watchedPage(browser, { viewport: { width: 390, height: 844 } });
    await page.goto(`${gw.url}${path}`);
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    )) as number;
    assert.ok(overflow <= 0, `${path}: no sideways scrolling (${overflow}px over)`);
    const rows = (await page.evaluate(SUPPORT_ROWS)) as Array<{
      dtLeft: number;
      dtBottom: number;
      ddLeft: number;
      ddTop: number;
    }>;
    assert.equal(rows.length, 4);
    assert.equal(new Set(rows.map((r) => r.ddLeft)).size, 1, `${path}: every value starts at the same place`);
    for (const r of rows) assert.ok(r.ddTop >= r.dtBottom - 1, `${path}: every value sits under its term`);
    assert.deepEqual(await page.evaluate(`(${BUTTON_LIKE})('.side')`), []);
    assert.deepEqual(problems, []);
    await page.context().close();
  }
});

test('the status page renders its charts with no failed request and updates live', { skip }, async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(
    {
      upstreams: { music: { hosts: [up.address], healthCheck: { enabled: false } } },
      routes: [{ name: 'music', upstream: 'music' }],
    },
    { statusStepMs: 300 },
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  for (let i = 0; i < 5; i++) await fetchRaw(`${gw.url}/x`);
  await new Promise((r) => setTimeout(r, 400));
  const { page, problems } = await watchedPage(browser, { colorScheme: 'dark' });
  await page.goto(`${gw.adminUrl}/status`);
  await page.waitForSelector('body[data-live="1"]');
  assert.equal(await page.locator('#overall').textContent(), 'All services are operating normally');
  assert.equal(await page.locator('canvas').count(), 3, 'three charts drawn');
  for (let i = 0; i < 7; i++) await fetchRaw(`${gw.url}/x`);
  // The page learns of the new requests from the event stream alone: no reload.
  await page.waitForFunction(
    `document.querySelectorAll('#services td')[2].textContent === '12 requests, 0 errors'`,
    undefined,
    { timeout: 10_000 },
  );
  const ratios = (await page.evaluate(`(${CONTRAST})('h1, h2, td, th, li, figcaption, .badge, .banner')`)) as number[];
  assert.ok(Math.min(...ratios) >= 4.5, `lowest contrast ${Math.min(...ratios).toFixed(2)}:1`);
  assert.deepEqual(problems, []);
  await page.context().close();

  // The same page for a German reader: headings from the server, live parts from the script.
  const german = await watchedPage(browser, { locale: 'de-DE' });
  await german.page.setExtraHTTPHeaders({ 'accept-language': 'de-DE,de;q=0.9' });
  await german.page.goto(`${gw.adminUrl}/status`);
  await german.page.waitForSelector('body[data-live="1"]');
  assert.equal(await german.page.locator('h1').textContent(), 'Dienststatus');
  assert.equal(await german.page.locator('#overall').textContent(), 'Alle Dienste arbeiten normal');
  assert.match(String(await german.page.locator('#services td').nth(2).textContent()), /^\d+ Anfragen, 0 Fehler$/);
  assert.deepEqual(german.problems, []);
  await german.page.context().close();
});

/** Columns of canvas pixels at a chart's left and right edges that have ink: a label cut off by the edge. */
const INK_AT_EDGES = `() => [...document.querySelectorAll('.chart canvas')].map((c) => {
  const ctx = c.getContext('2d');
  const inked = (x) => { const d = ctx.getImageData(x, 0, 1, c.height).data; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true; return false; };
  return { chart: c.closest('.chart').id, left: inked(0) || inked(1), right: inked(c.width - 1) || inked(c.width - 2) };
})`;

/** Each services cell's words and the lines they are laid out on. */
const CELL_LINES = `() => [...document.querySelectorAll('#services td')].map((td) => {
  const tops = new Set();
  const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const r = document.createRange();
    r.selectNodeContents(walk.currentNode);
    for (const rect of r.getClientRects()) if (rect.width > 0) tops.add(Math.round(rect.top));
  }
  return { text: td.innerText.trim(), words: td.innerText.trim().split(/\\s+/).length, lines: tops.size };
})`;

test('the status page fits a desktop and a phone: axis labels whole, no sideways ' +
  'scrolling, a services table that reads', {
  skip,
}, async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(
    {
      upstreams: {
        music: { hosts: [up.address], healthCheck: { enabled: false } },
        podcasts: { hosts: [up.address], healthCheck: { enabled: false } },
      },
      routes: [
        { name: 'podcasts', title: 'Podcasts', match: { path: '/podcasts' }, upstream: 'podcasts' },
        { name: 'music', title: 'Music', upstream: 'music' },
      ],
      status: { path: '/status' },
    },
    { statusStepMs: 1000 },
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  for (let i = 0; i < 20; i++) await fetchRaw(`${gw.url}/podcasts/episode/${i}`);
  // The widest labels a listener met: a p99 of 15 s ("15,000" lost its first digit) and a
  // thousand requests shed at once. Recorded straight into the timeline: waiting for fifteen
  // real seconds would prove nothing more about the page.
  const timeline = gw.gateway.metrics.timeline;
  for (let step = 0; step < 4; step++) {
    for (let i = 0; i < 100; i++) timeline.record('music', 'ok', '', step > 1 ? 15_000 : 120);
    for (let i = 0; i < 1000; i++) timeline.record('music', 'shed', 'connection_limit_reached', 1);
    timeline.closeStep();
  }
  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 },
  ]) {
    const { page, problems } = await watchedPage(browser, { viewport });
    await page.goto(`${gw.url}/status`);
    await page.waitForSelector('body[data-live="1"]');
    assert.equal(await page.locator('canvas').count(), 3, `${viewport.width}px: three charts drawn`);
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    )) as number;
    assert.ok(overflow <= 0, `${viewport.width}px: no sideways scrolling (${overflow}px over)`);
    const edges = (await page.evaluate(`(${INK_AT_EDGES})()`)) as Array<{
      chart: string;
      left: boolean;
      right: boolean;
    }>;
    assert.deepEqual(
      edges.filter((e) => e.left || e.right),
      [],
      `${viewport.width}px: no axis label runs off a chart's edge`,
    );
    for (const cell of (await page.evaluate(`(${CELL_LINES})()`)) as Array<{
      text: string;
      words: number;
      lines: number;
    }>) {
      if (cell.words < 3) continue;
      assert.ok(
        cell.lines <= Math.ceil(cell.words / 2),
        `${viewport.width}px: "${cell.text}" is laid out on ${cell.lines} lines for ${cell.words} words`,
      );
    }
    assert.match(
      String(await page.locator('#services').textContent()),
      /Music.*Busy.*4,000 requests asked to retry later.*16\.4\ss/s,
    );
    assert.deepEqual(problems, []);
    await page.context().close();
  }
});
