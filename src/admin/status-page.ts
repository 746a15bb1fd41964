/**
 * Serves the status page: a self-contained HTML page (its chart library, uPlot, is served from
 * the same place — no outside requests), rendered on the server in the reader's language so it
 * reads without JavaScript (./status-view.ts), then kept live over server-sent events: every
 * time the timeline closes a step, each open page receives the new status, its sections
 * rendered again in the page's language, and the new chart point (the whole hour when earlier
 * steps changed, as a fleet's late steps do). Served on the admin listener
 * at /status, and on the main listener at `status.path` when configured (the public view: no
 * upstream names, host counts or addresses).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { languagesOf } from '../explain/catalogue.js';
import { chooseLanguage } from '../explain/language.js';
import { buildStatus, historyOf, type StatusSources } from './status-model.js';
import { renderSections, renderStatusPage } from './status-view.js';

const require = createRequire(import.meta.url);
let uplot: { js: string; css: string } | undefined;
export function uplotAssets(): { js: string; css: string } {
  uplot ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplot;
}

const HEARTBEAT_MS = 15_000;

/**
 * Answers a request under `base` ("/status"): the page, its script assets, its JSON and its
 * event stream. Returns false when the path is not the status page's.
 */
export function serveStatusPage(
  sources: () => StatusSources,
  req: IncomingMessage,
  res: ServerResponse,
  base: string,
  isPublic: boolean,
): boolean {
  const [path = '/', query = ''] = (req.url ?? '/').split('?');
  if (path !== base && !path.startsWith(`${base}/`)) return false;
  const sub = path.slice(base.length);
  switch (sub) {
    case '':
    case '/': {
      // Programs (`gangway doctor`, scripts) ask for JSON at the page's own address.
      if (/application\/json/.test(req.headers.accept ?? '') && !/text\/html/.test(req.headers.accept ?? '')) {
        send(
          res,
          200,
          'application/json',
          JSON.stringify(buildStatus(sources(), { public: isPublic, history: false })),
        );
        return true;
      }
      const src = sources();
      // The hour comes with the page so the charts are drawn before the event stream opens.
      const status = buildStatus(src, { public: isPublic, history: true });
      const overrides = src.runtime.config.errors.page.texts;
      const lang = chooseLanguage(req.headers['accept-language'], languagesOf(overrides));
      send(res, 200, 'text/html; charset=utf-8', renderStatusPage(status, base, lang, overrides), 'no-store', lang);
      return true;
    }
    case '/uplot.js':
      send(res, 200, 'text/javascript; charset=utf-8', uplotAssets().js, 'public, max-age=86400');
      return true;
    case '/uplot.css':
      send(res, 200, 'text/css; charset=utf-8', uplotAssets().css, 'public, max-age=86400');
      return true;
    case '/status.json':
      send(res, 200, 'application/json', JSON.stringify(buildStatus(sources(), { public: isPublic, history: true })));
      return true;
    case '/events': {
      // The page says which language it was rendered in; the sections come back in the same.
      const overrides = sources().runtime.config.errors.page.texts;
      const lang = chooseLanguage(new URLSearchParams(query).get('lang') ?? undefined, languagesOf(overrides));
      openEventStream(sources, res, isPublic, lang);
      return true;
    }
    default:
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return true;
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  cache = 'no-store',
  lang?: string,
): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': cache,
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
    ...(lang ? { 'content-language': lang, vary: 'Accept-Language' } : {}),
  });
  res.end(body);
}

function openEventStream(sources: () => StatusSources, res: ServerResponse, isPublic: boolean, lang: string): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  const timeline = sources().timeline;
  const push = (history: boolean): void => {
    const s = sources();
    const status = buildStatus(s, { public: isPublic, history });
    const sections = renderSections(status, lang, s.runtime.config.errors.page.texts);
    const point = history ? undefined : historyOf(s.timeline, s.timeline.series(undefined, 1));
    res.write(`event: status\ndata: ${JSON.stringify({ ...status, point, sections })}\n\n`);
  };
  push(true);
  // A fleet's steps that came late (a clock behind, an outage's backlog) change the past: the hour again.
  let revision = timeline.revision;
  const stop = timeline.onStep(() => {
    push(timeline.revision !== revision);
    revision = timeline.revision;
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS).unref();
  res.once('close', () => {
    stop();
    clearInterval(heartbeat);
  });
}
