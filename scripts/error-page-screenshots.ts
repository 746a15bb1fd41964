/**
 * The error page's images in docs/screenshots/, part of `npm run screenshots`: the ordinary
 * error (a service refusing connections) and a maintenance window, light, on a desktop
 * (1280×800) and a phone (390×844); the ordinary error dark and in German too. Each runs in a
 * fixed time zone, so the page's clock time (and its zone) is the same from run to run.
 */
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { watchedPage } from '../test/support/browser.js';
import { closedPort, httpUpstream, startGateway } from '../test/support/harness.js';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** Writes the images under `out`; returns their file names. */
export async function shootErrorPages(browser: Browser, out: string): Promise<string[]> {
  const dead = await closedPort();
  const podcasts = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway({
    upstreams: {
      music: { hosts: [`127.0.0.1:${dead}`], healthCheck: { enabled: false } },
      podcasts: { hosts: [podcasts.address], healthCheck: { enabled: false } },
    },
    routes: [
      { name: 'podcasts', match: { path: '/podcasts' }, upstream: 'podcasts' },
      { name: 'music', match: { path: '/music' }, upstream: 'music' },
    ],
    errors: { statusPage: '/status', page: { brand: { name: 'Tunes' } } },
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
  const error = `${gw.url}/music/track/42`;
  const maintenance = `${gw.url}/podcasts/episode/7`;
  const shots: Array<[string, string, 'light' | 'dark', string, string, { width: number; height: number }]> = [
    ['error-page.png', error, 'light', 'en-US', 'America/New_York', DESKTOP],
    ['error-page-phone.png', error, 'light', 'en-US', 'America/New_York', PHONE],
    ['error-page-maintenance.png', maintenance, 'light', 'en-US', 'America/New_York', DESKTOP],
    ['error-page-maintenance-phone.png', maintenance, 'light', 'en-US', 'America/New_York', PHONE],
    ['error-page-dark.png', error, 'dark', 'en-US', 'America/New_York', DESKTOP],
    ['error-page-de.png', error, 'light', 'de-DE', 'Europe/Berlin', DESKTOP],
  ];
  const written: string[] = [];
  try {
    for (const [file, url, colorScheme, locale, timezoneId, viewport] of shots) {
      const { page, problems } = await watchedPage(browser, { colorScheme, locale, timezoneId, viewport });
      await page.setExtraHTTPHeaders({ 'accept-language': locale });
      await page.goto(url);
      await page.screenshot({ path: join(out, file), fullPage: true });
      if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`);
      written.push(file);
      await page.context().close();
    }
  } finally {
    await gw.close();
    await podcasts.close();
  }
  return written;
}
