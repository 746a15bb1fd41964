/**
 * The HTML error page for browsers. Self-contained (inline style and script, no external
 * request of any kind), responsive, light and dark, readable at 200% zoom, in the reader's
 * language. It says what happened, whose side it is on, what to do (steps for this kind of
 * failure only), when to come back, and what to quote to support.
 *
 * For a GET navigation with a Retry-After it checks by itself whether the service is back: a
 * countdown, then a background GET of the same address, and a reload once that answers with
 * anything but a 5xx or 429 (the schedule is SCHEDULE below). Waits are said as people say
 * them ("about 5 minutes") and times with their zone, in the reader's language and zone once
 * the script runs. Without JavaScript a `<meta http-equiv=refresh>` reloads once per
 * Retry-After. Operators can brand it, override any text, or replace the whole template.
 */
import { text, type TextKey, type TextOverrides } from './catalogue.js';
import { clockOptions, clockTime, durationParts, durationWords, humanDuration } from './duration.js';
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
  /** Whether Retry-After is the known end of a maintenance, or a guess of when to look again. */
  endKnown?: boolean;
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

/** Statuses the page keeps checking through: the service is still not there. */
const STILL_DOWN = [429, 500, 502, 503, 504];

/**
 * The page's schedule. It never checks sooner than the latest Retry-After asks; past that, the
 * wait grows with how long the page has been waiting (30% of it), so a service back after 16 s
 * is on screen about 5 s later (the old doubling, 5 → 10 → 20 s, took until 35 s), and a long
 * outage is not polled every few seconds. The growth stops at a minute, so "at least once a
 * minute" stays true; a longer Retry-After (a maintenance window's end) is waited out whole.
 * A random extra of up to a fifth (at most 10 s), never less, keeps many readers' pages from
 * checking in step without coming before the Retry-After.
 */
const SCHEDULE = {
  growth: 0.3,
  capSeconds: 60,
  jitter: 0.2,
  jitterMaxSeconds: 10,
  /** An early check (the tab is back in front) waits at least this long, or the Retry-After if shorter, after the last. */
  gapSeconds: 5,
  /** After the network comes back, a moment for it to settle before checking. */
  settleMs: 1000,
};

export function renderErrorPage(f: ErrorPageFacts): string {
  const { lang, settings } = f;
  const kind = FAILURES[f.kind];
  const t = (key: TextKey, vars?: Record<string, string | number>): string => text(lang, key, settings.texts, vars);
  /** The text as HTML, each `{name}` in `holes` replaced by the given HTML. */
  const html = (key: TextKey, holes: Record<string, string>): string => {
    const names = Object.keys(holes);
    const marked = t(key, Object.fromEntries(names.map((n, i) => [n, String.fromCharCode(0xe000 + i)])));
    return names.reduce((out, n, i) => out.split(String.fromCharCode(0xe000 + i)).join(holes[n]!), escapeHtml(marked));
  };
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
  const retryAfter = f.retryAfter;
  const autoRetry = settings.autoRetry && f.retriable && retryAfter !== undefined;
  const iso = f.time.toISOString();

  let when = '';
  if (retryAfter !== undefined) {
    const wait = humanDuration(retryAfter, lang, settings.texts);
    // Maintenance says when it ends (kept up to date by the script); the countdown would say it twice.
    let back = '';
    if (kind.side === 'maintenance' && f.endKnown === false) {
      back = `<p>${escapeHtml(t('back_unknown'))}</p>`;
    } else if (kind.side === 'maintenance') {
      const at = new Date(f.time.getTime() + retryAfter * 1000);
      const atIso = at.toISOString();
      back = `<p>${html('back_at', {
        time: `<time datetime="${atIso}" data-clock>${escapeHtml(clockTime(at, lang, f.time))}</time>`,
        duration: `<span data-until="${atIso}">${escapeHtml(wait)}</span>`,
      })}</p>`;
    }
    let retry: string;
    if (autoRetry) {
      // Past the cap the page waits for the Retry-After alone: "at least once a minute" would not be true.
      const how = t(retryAfter > SCHEDULE.capSeconds ? 'retry.auto_later' : 'retry.auto');
      const countdown = back
        ? ''
        : html('retry.in', { duration: `<span id="count">${escapeHtml(wait)}</span>`, seconds: String(retryAfter) });
      retry =
        `<p>${escapeHtml(how)}</p><p id="retry" role="status">${countdown}</p>` +
        `<p><button id="now" type="button">${escapeHtml(t('retry.now'))}</button></p>`;
    } else {
      retry = `<p>${escapeHtml(t('retry.manual', { duration: wait, seconds: retryAfter }))}</p>`;
    }
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
    (autoRetry ? `<noscript><meta http-equiv="refresh" content="${retryAfter}"></noscript>` : '') +
    `<style>${style(settings.brand.accent)}</style>`;
  const script = autoRetry ? retryScript(lang, retryAfter!, settings.texts) : '';
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

/**
 * Colours chosen for WCAG AA (≥ 4.5:1) on both schemes; the accent is the operator's. Whose side
 * it is reads as a label (a coloured dot and words, no border or fill), so it is not mistaken
 * for a button; the support reference is a two-column table, one column on a phone.
 */
function style(accent = '#0b57d0'): string {
  return `:root{--fg:#1b1f24;--muted:#4d5761;--bg:#ffffff;--card:#f4f6f8;--line:#d0d7de;--accent:${accent};--ours:#9a3412;--yours:#1d4ed8;--planned:#6b21a8}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a8b3bf;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#8ab4ff;--ours:#fdba74;--yours:#93c5fd;--planned:#d8b4fe}}
*{box-sizing:border-box}html{font:1rem/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0 auto;max-width:44rem;padding:1.5rem 1.25rem 3rem}
header .brand{display:flex;align-items:center;gap:.6rem;font-weight:600;margin-bottom:1.5rem}
h1{font-size:1.75rem;line-height:1.25;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:1.75rem 0 .5rem}
.side{display:flex;align-items:center;gap:.5rem;margin:0 0 1rem}.side::before{content:"";flex:none;width:.7rem;height:.7rem;border-radius:50%;background:currentColor}
.side-service{color:var(--ours)}.side-client{color:var(--yours)}.side-maintenance{color:var(--planned)}
.explanation{font-size:1.1rem}.message{background:var(--card);border-left:4px solid var(--accent);padding:.1rem 1rem;margin:1rem 0}
#count,[data-until],time{white-space:nowrap}
ol{padding-left:1.4rem}li{margin:.35rem 0}a{color:var(--accent)}
button{font:inherit;color:#fff;background:var(--accent);border:0;border-radius:.4rem;padding:.55rem 1.1rem;cursor:pointer}
@media (prefers-color-scheme:dark){button{color:#0d1117}}
button:focus-visible,a:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
footer{margin-top:2.5rem;padding-top:1rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9rem}
footer h2{font-size:.95rem;margin-top:0}dl{margin:0}dl div{display:grid;grid-template-columns:8rem minmax(0,1fr);gap:1rem;padding:.15rem 0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}@media (max-width:32rem){dl div{grid-template-columns:minmax(0,1fr);gap:0;padding:.3rem 0}}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}`;
}

/**
 * The page's own retries: a countdown to each check, a background GET of the same address,
 * and a reload once that answers with anything but a 5xx or 429. Timers count to a deadline
 * (a background tab's timers are slowed, and a counter would fall behind); coming back to the
 * tab or back online checks at once rather than finishing a long wait.
 */
function retryScript(lang: string, retryAfter: number, overrides: TextOverrides): string {
  // Each check's body is read to the end: one left unread is cut when the page reloads, and a
  // browser reports that as a failed request.
  const marker = { duration: '\u0000', seconds: '\u0000' };
  const config = {
    lang,
    retryAfter,
    down: STILL_DOWN,
    ...SCHEDULE,
    words: durationWords(lang, overrides),
    texts: {
      still: text(lang, 'retry.still', overrides, marker),
      checking: text(lang, 'retry.checking', overrides),
      offline: text(lang, 'retry.offline', overrides),
    },
    clock: { sameDay: clockOptions(true), otherDay: clockOptions(false) },
  };
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return `<script>(function(){
var C=${json};
var box=document.getElementById('retry'),now=document.getElementById('now');
var started=Date.now(),ra=C.retryAfter,due=0,timer=0,busy=false,last=started,rules={};
var locale=C.lang;
(navigator.languages||[]).some(function(l){if(l.split('-')[0].toLowerCase()===C.lang){locale=l;return true}return false});
${durationParts.toString()}
function plural(lang,n){try{return (rules[lang]=rules[lang]||new Intl.PluralRules(lang)).select(n)}catch(e){return 'other'}}
function duration(seconds){var p=durationParts(seconds),u=C.words.units[p.unit],c=u.cases;
 var w=(c['='+p.count]||c[plural(u.lang,p.count)]||c.other).split('#').join(p.count.toLocaleString(locale));
 return p.about?C.words.about.replace('\\u0000',w):w}
function clock(el){var at=new Date(el.getAttribute('datetime')),today=new Date();
 try{el.textContent=new Intl.DateTimeFormat(locale,at.toDateString()===today.toDateString()?C.clock.sameDay:C.clock.otherDay).format(at)}catch(e){}}
function show(words,seconds){box.textContent='';var bits=words.split('\\u0000');box.appendChild(document.createTextNode(bits[0]));
 if(bits.length>1){var c=document.createElement('span');c.id='count';c.textContent=duration(seconds);box.appendChild(c);box.appendChild(document.createTextNode(bits.slice(1).join('')))}}
function tick(){clearTimeout(timer);var t=Date.now();
 document.querySelectorAll('[data-until]').forEach(function(el){var s=(Date.parse(el.getAttribute('data-until'))-t)/1000;if(s>0)el.textContent=duration(s)});
 if(!due)return;var left=(due-t)/1000;if(left<=0){check();return}
 var c=document.getElementById('count');if(c)c.textContent=duration(left);
 timer=setTimeout(tick,Math.ceil((left*1000)%1000)||1000)}
function wait(seconds,words){due=Date.now()+seconds*1000;if(words)show(words,seconds);tick()}
function nextWait(){var base=Math.max(ra,Math.min(C.capSeconds,C.growth*(Date.now()-started)/1000));
 return base+Math.random()*Math.min(base*C.jitter,C.jitterMaxSeconds)}
function retryAfter(v){if(!v)return 0;if(/^\\s*\\d+\\s*$/.test(v))return +v;var at=Date.parse(v);return isNaN(at)?0:Math.max(0,(at-Date.now())/1000)}
function offline(){clearTimeout(timer);due=0;show(C.texts.offline);timer=setTimeout(check,C.capSeconds*1000)}
function check(){if(busy)return;clearTimeout(timer);due=0;
 if(navigator.onLine===false){offline();return}
 busy=true;last=Date.now();show(C.texts.checking);
 fetch(location.href,{cache:'no-store',credentials:'same-origin',headers:{accept:'text/html'}}).then(function(r){
  var back=C.down.indexOf(r.status)<0,after=retryAfter(r.headers.get('retry-after'));
  function then(){if(back){location.reload();return}busy=false;ra=after||C.retryAfter;wait(nextWait(),C.texts.still)}
  r.text().then(then,then)
 },function(){busy=false;if(navigator.onLine===false)offline();else wait(nextWait(),C.texts.still)})}
function early(){if(busy||document.visibilityState==='hidden'||Date.now()-last<Math.min(ra,C.gapSeconds)*1000)return;check()}
document.querySelectorAll('time[data-clock]').forEach(clock);
now.addEventListener('click',check);
document.addEventListener('visibilitychange',early);
window.addEventListener('focus',early);
window.addEventListener('online',function(){last=0;setTimeout(early,C.settleMs)});
window.addEventListener('offline',function(){if(!busy)offline()});
wait(nextWait(),null);
})();</script>`;
}
