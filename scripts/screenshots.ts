/**
 * `npm run screenshots`: renders the error page (light, dark, German) and the status page in
 * headless Chromium against a real gateway with a failing and a healthy service, and writes
 * the images to docs/screenshots/ for the README.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, watchedPage } from '../test/support/browser.js';
import { closedPort, fetchRaw, httpUpstream, startGateway } from '../test/support/harness.js';

const OUT = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const dead = await closedPort();
const good = await httpUpstream((_req, res) => setTimeout(() => res.end('ok'), 5 + Math.random() * 20));
const gw = await startGateway({
  upstreams: {
    music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } },
    podcasts: { hosts: [good.address], healthCheck: { enabled: false } },
  },
  routes: [{ name: 'podcasts', match: { path: '/podcasts' }, upstream: 'podcasts' }, { name: 'music', match: { path: '/music' }, upstream: 'music' }],
  errors: { statusPage: '/status', page: { brand: { name: 'Tunes' } } },
  maintenance: { windows: [{ start: new Date(Date.now() + 86_400_000).toISOString(), end: new Date(Date.now() + 90_000_000).toISOString(), message: 'Database upgrade', routes: ['podcasts'] }] },
}, { statusStepMs: 1000 });
const browser = await launchBrowser();
try {
  for (let i = 0; i < 12; i++) {
    for (let j = 0; j < 10 + i; j++) await fetchRaw(`${gw.url}/podcasts/episode/${j}`);
    if (i > 5) for (let j = 0; j < 6; j++) await fetchRaw(`${gw.url}/music/track/${j}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const shots: Array<[string, string, 'light' | 'dark', string]> = [
    ['error-page.png', `${gw.url}/music/track/42`, 'light', 'en-US'],
    ['error-page-dark.png', `${gw.url}/music/track/42`, 'dark', 'en-US'],
    ['error-page-de.png', `${gw.url}/music/track/42`, 'light', 'de-DE'],
    ['status-page.png', `${gw.adminUrl}/status`, 'light', 'en-US'],
  ];
  for (const [file, url, colorScheme, locale] of shots) {
    const { page, problems } = await watchedPage(browser, { colorScheme, locale, viewport: { width: 960, height: 900 } });
    await page.setExtraHTTPHeaders({ 'accept-language': locale });
    await page.goto(url);
    if (url.endsWith('/status')) await page.waitForSelector('body[data-live="1"]');
    await page.screenshot({ path: join(OUT, file), fullPage: true });
    if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`);
    process.stdout.write(`docs/screenshots/${file}\n`);
    await page.context().close();
  }
} finally {
  await browser.close();
  await gw.close();
  await good.close();
}
