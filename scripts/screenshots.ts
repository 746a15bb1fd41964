/**
 * `npm run screenshots`: renders the error page (./error-page-screenshots.ts) and the status page in
 * headless Chromium against a real gateway with a failing, a busy and a healthy service, then the
 * demo's operator console and player while replicas are being broken, and writes the images
 * to docs/screenshots/ for the README (the status page on a desktop and on a phone).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemo } from '../src/demo/run.js';
import { launchBrowser, watchedPage } from '../test/support/browser.js';
import { shootErrorPages } from './error-page-screenshots.js';
import { closedPort, fetchRaw, httpUpstream, startGateway } from '../test/support/harness.js';

const OUT = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const dead = await closedPort();
const good = await httpUpstream((_req, res) => setTimeout(() => res.end('ok'), 5 + Math.random() * 20));
// One answer at a time, 150 ms each: a burst finds it at its limit and most are asked to retry later.
const slow = await httpUpstream((_req, res) => setTimeout(() => res.end('ok'), 150));
const gw = await startGateway(
  {
    upstreams: {
      music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } },
      podcasts: { hosts: [good.address], healthCheck: { enabled: false } },
      books: {
        hosts: [slow.address],
        healthCheck: { enabled: false },
        concurrency: { min: 1, max: 1, maxWait: '50ms' },
      },
    },
    routes: [
      { name: 'podcasts', title: 'Podcasts', match: { path: '/podcasts' }, upstream: 'podcasts' },
      { name: 'audiobooks', title: 'Audiobooks', match: { path: '/audiobooks' }, upstream: 'books' },
      { name: 'music', title: 'Music', match: { path: '/music' }, upstream: 'music' },
    ],
    status: { path: '/status' },
    errors: { statusPage: '/status', page: { brand: { name: 'Tunes' } } },
    maintenance: {
      windows: [
        {
          start: new Date(Date.now() + 86_400_000).toISOString(),
          end: new Date(Date.now() + 90_000_000).toISOString(),
          message: 'Database upgrade',
          routes: ['podcasts'],
        },
      ],
    },
  },
  { statusStepMs: 1000 },
);
const browser = await launchBrowser();
try {
  for (let i = 0; i < 12; i++) {
    for (let j = 0; j < 10 + i; j++) await fetchRaw(`${gw.url}/podcasts/episode/${j}`);
    if (i > 5) for (let j = 0; j < 6; j++) await fetchRaw(`${gw.url}/music/track/${j}`);
    if (i > 3) await Promise.all(Array.from({ length: 8 }, (_, j) => fetchRaw(`${gw.url}/audiobooks/${j}`)));
    await new Promise((r) => setTimeout(r, 1000));
  }
  for (const file of await shootErrorPages(browser, OUT)) process.stdout.write(`docs/screenshots/${file}\n`);
  // The status page as listeners see it (the public view), on a desktop and on a phone.
  const shots: Array<[string, string, 'light' | 'dark', string, { width: number; height: number }]> = [
    ['status-page.png', `${gw.url}/status`, 'light', 'en-US', { width: 1280, height: 800 }],
    ['status-page-phone.png', `${gw.url}/status`, 'light', 'en-US', { width: 390, height: 844 }],
  ];
  for (const [file, url, colorScheme, locale, viewport] of shots) {
    const { page, problems } = await watchedPage(browser, { colorScheme, locale, viewport });
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
  await slow.close();
}

// The demo: a listener playing a track while the operator breaks replicas.
const ports: number[] = [];
while (ports.length < 6) {
  const p = await closedPort();
  if (!ports.includes(p)) ports.push(p);
}
const demo = await startDemo({
  listen: `127.0.0.1:${ports[0]}`,
  admin: `127.0.0.1:${ports[1]}`,
  consolePort: ports[2],
  replicaPorts: ports.slice(3),
  quiet: true,
});
const demoBrowser = await launchBrowser(['--autoplay-policy=no-user-gesture-required']);
try {
  const listener = await watchedPage(demoBrowser, { viewport: { width: 720, height: 640 } });
  await listener.page.goto(demo.urls.player);
  await listener.page.waitForFunction('window.demo.tracks !== undefined');
  await listener.page.click('#tracks button >> nth=1');
  const console = await watchedPage(demoBrowser, { viewport: { width: 1200, height: 900 } });
  await console.page.goto(demo.urls.console);
  await console.page.waitForSelector('body[data-live="1"]');
  const traffic = setInterval(() => {
    void fetch(`${demo.urls.player}api/tracks`)
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  }, 40);
  await console.page.waitForTimeout(4000);
  await console.page.click('#r0 button:has-text("Kill")');
  await console.page.waitForTimeout(2500);
  await console.page.click('#r1 button:has-text("503 storm")');
  await console.page.waitForTimeout(5000);
  clearInterval(traffic);
  await console.page.screenshot({ path: join(OUT, 'console.png'), fullPage: true });
  process.stdout.write('docs/screenshots/console.png\n');
  await listener.page.screenshot({ path: join(OUT, 'player.png'), fullPage: true });
  process.stdout.write('docs/screenshots/player.png\n');
  const problems = [...listener.problems, ...console.problems];
  if (problems.length > 0) throw new Error(problems.join('; '));
} finally {
  await demoBrowser.close();
  await demo.close();
}
