/**
 * The error page over HTTP/2, in real headless Chromium: a browser reaching an HTTPS listener
 * negotiates h2, and when the upstream is down it gets the same explained page as over
 * HTTP/1.1 — status, heading, countdown — with no failed request and no console error. The
 * page is also captured as a screenshot (/tmp/gangway-h2-error-page.png) for a person to look at.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { createGateway, loadConfigFile } from '../src/index.js';
import { browserUnavailable, launchBrowser, watchedPage } from './support/browser.js';
import { closedPort } from './support/harness.js';

const TLS = join(import.meta.dirname, 'support', 'tls');
const skip = browserUnavailable();
const cleanups: Array<() => unknown> = [];
let browser: Browser;
before(async () => {
  // The test certificate is for localhost from a CA the browser does not know.
  if (!skip) browser = await launchBrowser(['--ignore-certificate-errors']);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await browser?.close();
});

test('over HTTP/2 (h2 by ALPN) a browser gets the explained error page when the upstream is down', {
  skip,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-h2-browser-'));
  copyFileSync(join(TLS, 'localhost-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(TLS, 'localhost-key.pem'), join(dir, 'key.pem'));
  const file = join(dir, 'gangway.yaml');
  writeFileSync(
    file,
    `listen: { address: "127.0.0.1:0", tls: { cert: cert.pem, key: key.pem } }
admin: false
upstreams:
  music: { hosts: ["127.0.0.1:${await closedPort()}"], healthCheck: { enabled: false } }
routes:
  - { upstream: music }
`,
  );
  const gw = createGateway(loadConfigFile(file), { logDestination: { write() {} }, processMetrics: false });
  const { proxy } = await gw.listen();
  cleanups.push(() => gw.close());
  const { page, problems } = await watchedPage(browser);
  const res = await page.goto(`https://localhost:${proxy.port}/music/track/1`);
  assert.equal(res!.status(), 502);
  const protocol = await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol");
  assert.equal(protocol, 'h2', 'the page came over HTTP/2');
  assert.equal(await page.locator('h1').textContent(), 'The music service is not answering right now');
  assert.equal(await page.locator('#count').isVisible(), true, 'the countdown to the next try is shown');
  assert.match((await res!.allHeaders())['proxy-status'] ?? '', /error=connection_refused/);
  await page.screenshot({ path: '/tmp/gangway-h2-error-page.png', fullPage: true });
  assert.deepEqual(problems, []);
});
