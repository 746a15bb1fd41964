/**
 * The error page and the status page in real headless Chromium: they render with no failed
 * request and no console error, in light and dark, readable at 200% zoom with AA contrast;
 * the error page's countdown retries by itself and lands on the real page once the upstream
 * is back; the status page updates live, in English and in German.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
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
      assert.deepEqual(problems, []);
      await page.context().close();
    }
  }
});

test('the error page counts down, retries by itself and lands on the real page once the service is back', {
  skip,
}, async () => {
  const port = await closedPort();
  const gw = await startGateway({
    upstreams: { music: { hosts: [`127.0.0.1:${port}`], healthCheck: { enabled: false } } },
    routes: [{ upstream: 'music' }],
  });
  cleanups.push(() => gw.close());
  const { page, problems } = await watchedPage(browser);
  await page.goto(`${gw.url}/music/track/1`);
  const first = Number(await page.locator('#count').textContent());
  await page.waitForTimeout(1200);
  assert.ok(Number(await page.locator('#count').textContent()) < first, 'the countdown runs');
  // The service comes back while the page waits.
  const up = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>Track</title><h1>Now playing</h1>');
  });
  await new Promise<void>((r) => up.listen(port, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        up.closeAllConnections();
        up.close(r);
      }),
  );
  await page.waitForSelector('text=Now playing', { timeout: 15_000 });
  assert.equal(await page.title(), 'Track');
  assert.deepEqual(
    problems.filter((p) => !/status of 502/.test(p)),
    [],
    "the only errors were the page's own 502 checks",
  );
  await page.context().close();
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

test('the status page fits a desktop and a phone: axis labels whole, no sideways scrolling, a services table that reads', {
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
