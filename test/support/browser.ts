/**
 * Real headless Chromium (Debian's `chromium`) through playwright-core, with every failed
 * request and console error of a page collected so a test can insist there were none.
 * Without Chromium the browser tests skip — except under CI=true, where that is a failure.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (process.env.CI === 'true') throw new Error(`${why}: required under CI`);
  return why;
}

export function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...extraArgs,
    ],
  });
}

export interface WatchedPage {
  page: Page;
  problems: string[];
}

/** A new page whose failed requests, page errors and console errors are collected in `problems`. */
export async function watchedPage(
  browser: Browser,
  options: {
    colorScheme?: 'light' | 'dark';
    locale?: string;
    timezoneId?: string;
    viewport?: { width: number; height: number };
  } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    colorScheme: options.colorScheme ?? 'light',
    locale: options.locale ?? 'en-US',
    timezoneId: options.timezoneId,
    viewport: options.viewport ?? { width: 1000, height: 900 },
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium reports an error status of the document itself as a console error: for an
    // error page that status is the point, not a problem.
    if (m.location().url === page.url() && /the server responded with a status of/.test(m.text())) return;
    problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  return { page, problems };
}
