/**
 * The HTML error page for browsers. Self-contained (inline style and script, no external
 * request of any kind), responsive, light and dark, readable at 200% zoom, in the reader's
 * language. It says what happened, whose side it is on, what to do (steps for this kind of
 * failure only), when to come back, and what to quote to support.
 *
 * For a GET navigation with a Retry-After it tries again by itself: a countdown, then a
 * background GET of the same address; once that answers with anything but a 5xx or 429 the
 * page reloads, otherwise it waits the new Retry-After, doubling each time (at most 5 min).
 * Without JavaScript a `<meta http-equiv=refresh>` does the same, once per Retry-After.
 * Operators can brand it, override any text, or replace the whole template.
 */
import { text, type TextOverrides } from './catalogue.js';
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';

/** The operator's settings for the page (config `errors.page`). */
export interface PageSettings {
  brand: { name?: string; accent?: string; logo?: string };
  texts: TextOverrides;
  /** A whole HTML template with {{placeholders}}, when the operator supplied one. */
  template?: string;
  autoRetry: boolean;
}

export interface ErrorPageFacts {
  lang: string;
  status: number;
  kind: FailureKindName;
  service: string | undefined;
  /** The operator's message, e.g. from a maintenance window. */
  message?: string;
  retryAfter?: number;
  /** A GET navigation: the page may retry it by itself. */
  retriable: boolean;
  requestId: string;
  time: Date;
  statusPage?: string;
  proxyStatus: string;
  settings: PageSettings;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Statuses the page keeps retrying through: the service is still not there. */
const STILL_DOWN = [429, 500, 502, 503, 504];
const MAX_DELAY_S = 300;

export function renderErrorPage(f: ErrorPageFacts): string {
  const { lang, settings } = f;
  const kind = FAILURES[f.kind];
  const t = (key: Parameters<typeof text>[1], vars?: Record<string, string | number>): string =>
    text(lang, key, settings.texts, vars);
  const service = f.service ?? t('service_fallback');
  const headline =
    kind.side === 'maintenance'
      ? t('headline.maintenance', { service })
      : f.kind === 'connection_limit_reached'
        ? t('headline.overloaded', { service })
        : kind.side === 'service'
          ? t('headline.service', { service })
          : t(`kind.${f.kind}.title`);
  const title = t(`kind.${f.kind}.title`);
  const explanation = t(`kind.${f.kind}.explanation`, { service });
  const steps = t(`advice.${kind.advice}`)
    .split('\n')
    .map((s) => `<li>${escapeHtml(s)}</li>`)
    .join('');
  const autoRetry = settings.autoRetry && f.retriable && f.retryAfter !== undefined;
  const backAt = f.retryAfter !== undefined ? new Date(f.time.getTime() + f.retryAfter * 1000) : undefined;
  const iso = f.time.toISOString();

  let when = '';
  if (f.retryAfter !== undefined) {
    const at = backAt!.toISOString();
    const back =
      kind.side === 'maintenance'
        ? `<p>${escapeHtml(t('back_at', { time: '\u0000' })).replace('\u0000', `<time datetime="${at}" data-local>${at.slice(11, 16)} UTC</time>`)}</p>`
        : '';
    const retry = autoRetry
      ? `<p id="retry" role="status">${escapeHtml(t('retry.in', { seconds: '\u0000' })).replace('\u0000', `<span id="count">${f.retryAfter}</span>`)}</p><p><button id="now" type="button">${escapeHtml(t('retry.now'))}</button></p>`
      : `<p>${escapeHtml(t('retry.manual', { seconds: f.retryAfter }))}</p>`;
    when = `<section aria-labelledby="when"><h2 id="when">${escapeHtml(t('when'))}</h2>${back}${retry}</section>`;
  }
  const message = f.message
    ? `<aside class="message" aria-label="${escapeHtml(t('operator_message'))}"><p>${escapeHtml(f.message)}</p></aside>`
    : '';
  const statusLink = f.statusPage
    ? `<p><a href="${escapeHtml(f.statusPage)}">${escapeHtml(t('status_page'))} →</a></p>`
    : '';
  const reference =
    `<dl><div><dt>${escapeHtml(t('error'))}</dt><dd>${f.status} · <code>${f.kind}</code></dd></div>` +
    `<div><dt>${escapeHtml(t('request_id'))}</dt><dd><code>${escapeHtml(f.requestId)}</code></dd></div>` +
    `<div><dt>${escapeHtml(t('time'))}</dt><dd><time datetime="${iso}">${iso.replace('T', ' ').slice(0, 19)} UTC</time></dd></div>` +
    `<div><dt>Proxy-Status</dt><dd><code>${escapeHtml(f.proxyStatus)}</code></dd></div></dl>`;
  const head =
    (autoRetry ? `<noscript><meta http-equiv="refresh" content="${f.retryAfter}"></noscript>` : '') +
    `<style>${style(settings.brand.accent)}</style>`;
  const script = autoRetry
    ? retryScript(f.retryAfter!, t('retry.checking'), t('retry.still', { seconds: '\u0000' }))
    : '';
  const brand = brandHtml(settings.brand);
  const side = `<p class="side side-${kind.side}"><strong>${escapeHtml(t(`side.${kind.side}`))}</strong></p>`;

  if (settings.template !== undefined) {
    const values: Record<string, string> = {
      lang,
      status: String(f.status),
      title: escapeHtml(title),
      headline: escapeHtml(headline),
      explanation: escapeHtml(explanation),
      message,
      side,
      steps: `<ol>${steps}</ol>`,
      when,
      reference,
      statusLink,
      requestId: escapeHtml(f.requestId),
      time: iso,
      retryAfter: f.retryAfter === undefined ? '' : String(f.retryAfter),
      head,
      script,
      brand,
    };
    return settings.template.replace(/\{\{(\w+)\}\}/g, (m, name: string) => values[name] ?? m);
  }

  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><meta name="color-scheme" content="light dark"><link rel="icon" href="data:,">
<title>${f.status} · ${escapeHtml(headline)}</title>${head}</head>
<body><header>${brand}</header>
<main>
<h1>${escapeHtml(headline)}</h1>
${side}
<p class="explanation">${escapeHtml(explanation)}</p>
${message}
<section aria-labelledby="todo"><h2 id="todo">${escapeHtml(t('what_to_do'))}</h2><ol>${steps}</ol></section>
${when}
${statusLink}
</main>
<footer><h2>${escapeHtml(t('reference'))}</h2>${reference}</footer>
${script}</body></html>
`;
}

function brandHtml(brand: PageSettings['brand']): string {
  if (!brand.name && !brand.logo) return '';
  const logo = brand.logo ? `<img src="${escapeHtml(brand.logo)}" alt="" width="32" height="32">` : '';
  return `<div class="brand">${logo}${brand.name ? `<span>${escapeHtml(brand.name)}</span>` : ''}</div>`;
}

/** Colours chosen for WCAG AA (≥ 4.5:1) on both schemes; the accent is the operator's. */
function style(accent = '#0b57d0'): string {
  return `:root{--fg:#1b1f24;--muted:#4d5761;--bg:#ffffff;--card:#f4f6f8;--line:#d0d7de;--accent:${accent};--ours:#9a3412;--yours:#1d4ed8;--planned:#6b21a8}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a8b3bf;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#8ab4ff;--ours:#fdba74;--yours:#93c5fd;--planned:#d8b4fe}}
*{box-sizing:border-box}html{font:1rem/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0 auto;max-width:44rem;padding:1.5rem 1.25rem 3rem}
header .brand{display:flex;align-items:center;gap:.6rem;font-weight:600;margin-bottom:1.5rem}
h1{font-size:1.75rem;line-height:1.25;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:1.75rem 0 .5rem}
.side{display:inline-block;margin:0 0 1rem;padding:.25rem .75rem;border-radius:1rem;border:2px solid currentColor}
.side-service{color:var(--ours)}.side-client{color:var(--yours)}.side-maintenance{color:var(--planned)}
.explanation{font-size:1.1rem}.message{background:var(--card);border-left:4px solid var(--accent);padding:.5rem 1rem;margin:1rem 0}
ol{padding-left:1.4rem}li{margin:.35rem 0}a{color:var(--accent)}
button{font:inherit;color:#fff;background:var(--accent);border:0;border-radius:.4rem;padding:.55rem 1.1rem;cursor:pointer}
@media (prefers-color-scheme:dark){button{color:#0d1117}}
button:focus-visible,a:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
footer{margin-top:2.5rem;padding-top:1rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9rem}
footer h2{font-size:.95rem;margin-top:0}dl{margin:0}dl div{display:flex;flex-wrap:wrap;gap:.5rem}dt{font-weight:600;min-width:7rem}dd{margin:0;overflow-wrap:anywhere}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}`;
}

function retryScript(retryAfter: number, checking: string, still: string): string {
  const s = (v: string): string => JSON.stringify(v).replace(/</g, '\\u003c');
  return `<script>(function(){
var key='gangway-retry:'+location.pathname+location.search,n=+(sessionStorage.getItem(key)||0),down=${JSON.stringify(STILL_DOWN)};
var box=document.getElementById('retry'),now=document.getElementById('now'),timer;
document.querySelectorAll('time[data-local]').forEach(function(el){try{el.textContent=new Date(el.getAttribute('datetime')).toLocaleTimeString(document.documentElement.lang,{hour:'2-digit',minute:'2-digit'})}catch(e){}});
function wait(seconds){var left=Math.max(1,Math.round(seconds));clearInterval(timer);
 box.innerHTML=${s(escapeHtml(still))}.replace('\\u0000','<span id="count">'+left+'</span>');
 timer=setInterval(function(){left--;var c=document.getElementById('count');if(c)c.textContent=left;if(left<=0){clearInterval(timer);check()}},1000)}
function check(){clearInterval(timer);box.textContent=${s(checking)};n++;sessionStorage.setItem(key,n);
 fetch(location.href,{cache:'no-store',credentials:'same-origin',headers:{accept:'text/html'}}).then(function(r){
  if(down.indexOf(r.status)<0){sessionStorage.removeItem(key);r.text().then(function(){location.reload()},function(){location.reload()});return}
  var ra=+r.headers.get('retry-after');wait(Math.min(${MAX_DELAY_S},Math.max(ra>0?ra:${retryAfter},${retryAfter}*Math.pow(2,Math.min(n,8)))))
 },function(){wait(Math.min(${MAX_DELAY_S},${retryAfter}*Math.pow(2,Math.min(n,8))))})}
now.addEventListener('click',check);
var first=Math.min(${MAX_DELAY_S},${retryAfter}*Math.pow(2,Math.min(n,8)));var c0=document.getElementById('count');if(c0)c0.textContent=first;
var left0=first;timer=setInterval(function(){left0--;var c=document.getElementById('count');if(c)c.textContent=left0;if(left0<=0){clearInterval(timer);check()}},1000);
})();</script>`;
}
