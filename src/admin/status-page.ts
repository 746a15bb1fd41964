/**
 * The status page: a self-contained HTML page (its chart library, uPlot, is served from the
 * same place — no outside requests), rendered on the server so it reads without JavaScript,
 * in the reader's language (the error page's catalogue), then kept live over server-sent events: every time the timeline closes a step, each open
 * page receives the new status and the new chart point. Served on the admin listener at
 * /status, and on the main listener at `status.path` when configured (public view: no host
 * addresses).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { languagesOf, text, type TextKey, type TextOverrides } from '../explain/catalogue.js';
import { chooseLanguage } from '../explain/language.js';
import { escapeHtml } from '../explain/page.js';
import { buildStatus, historyOf, type StatusSources } from './status-model.js';

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
  const path = (req.url ?? '/').split('?')[0]!;
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
      const status = buildStatus(src, { public: isPublic, history: false });
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
    case '/events':
      openEventStream(sources, res, isPublic);
      return true;
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

function openEventStream(sources: () => StatusSources, res: ServerResponse, isPublic: boolean): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const timeline = sources().timeline;
  const push = (history: boolean): void => {
    const s = sources();
    const status = buildStatus(s, { public: isPublic, history });
    if (!history) {
      const last = s.timeline.series(undefined, 1);
      status.point = historyOf(s.timeline, last);
    }
    res.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`);
  };
  push(true);
  const stop = timeline.onStep(() => push(false));
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS).unref();
  res.once('close', () => {
    stop();
    clearInterval(heartbeat);
  });
}

/** The status page's words the browser needs, in the page's language. */
const CLIENT_KEYS = [
  'status.no_maintenance',
  'status.no_incidents',
  'status.now',
  'status.scheduled',
  'status.all_services',
  'status.until',
  'status.ongoing_since',
  'status.line_requests',
  'status.line_servers',
  'status.incident',
  'overall.operational',
  'overall.degraded',
  'overall.partial_outage',
  'overall.major_outage',
  'overall.maintenance',
  'state.healthy',
  'state.degraded',
  'state.down',
  'state.maintenance',
] as const satisfies readonly TextKey[];

function renderStatusPage(
  status: Record<string, unknown>,
  base: string,
  lang: string,
  overrides: TextOverrides,
): string {
  const t = (key: TextKey): string => escapeHtml(text(lang, key, overrides));
  const words = Object.fromEntries(CLIENT_KEYS.map((k) => [k, text(lang, k, overrides)]));
  const script = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,"><title>${t('status.title')} · ${escapeHtml(String(status.name))}</title>
<link rel="stylesheet" href="${base}/uplot.css">
<style>${STYLE}</style></head>
<body><header><h1>${t('status.title')}</h1><p class="muted">${t('status.live')} · <span id="updated">${escapeHtml(String(status.generated_at))}</span></p></header>
<main>
<section id="overall" class="banner" aria-live="polite"></section>
<section aria-labelledby="svc"><h2 id="svc">${t('status.services')}</h2><div class="table-wrap"><table><thead><tr><th scope="col">${t('status.col_service')}</th><th scope="col">${t('status.col_state')}</th><th scope="col">${t('status.col_last_minute')}</th><th scope="col">${t('status.col_p99')}</th></tr></thead><tbody id="services"></tbody></table></div></section>
<section aria-labelledby="mnt"><h2 id="mnt">${t('status.maintenance')}</h2><ul id="maintenance"></ul></section>
<section aria-labelledby="inc"><h2 id="inc">${t('status.incidents')}</h2><ul id="incidents"></ul></section>
<section aria-labelledby="charts"><h2 id="charts">${t('status.last_hour')}</h2>
<figure><figcaption>${t('status.chart_rps')}</figcaption><div id="chart-rps" class="chart"></div></figure>
<figure><figcaption>${t('status.chart_errors')}</figcaption><div id="chart-err" class="chart"></div></figure>
<figure><figcaption>${t('status.chart_p99')}</figcaption><div id="chart-p99" class="chart"></div></figure>
</section>
</main>
<noscript><p>${t('status.noscript')}</p></noscript>
<script src="${base}/uplot.js"></script>
<script>window.GANGWAY_STATUS=${script(status)};window.GANGWAY_STATUS_BASE=${script(base)};window.GANGWAY_WORDS=${script(words)};</script>
<script>${CLIENT}</script>
</body></html>
`;
}

const STYLE = `:root{--fg:#1b1f24;--muted:#4d5761;--bg:#fff;--card:#f4f6f8;--line:#d0d7de;--ok:#166534;--warn:#8a4b00;--bad:#b42318;--plan:#6b21a8;--ok-bg:#dcfce7;--warn-bg:#fef3c7;--bad-bg:#fee4e2;--plan-bg:#f3e8ff}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a8b3bf;--bg:#0d1117;--card:#161b22;--line:#30363d;--ok:#86efac;--warn:#fcd34d;--bad:#fca5a5;--plan:#d8b4fe;--ok-bg:#052e16;--warn-bg:#3a2a05;--bad-bg:#450a0a;--plan-bg:#2e1065}}
*{box-sizing:border-box}html{font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0 auto;max-width:60rem;padding:1.5rem 1.25rem 3rem}h1{margin:0;font-size:1.6rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}
.muted{color:var(--muted);margin:.2rem 0 1rem}.banner{padding:1rem 1.25rem;border-radius:.5rem;font-weight:600;font-size:1.15rem}
.s-operational,.s-healthy{color:var(--ok);background:var(--ok-bg)}.s-degraded{color:var(--warn);background:var(--warn-bg)}
.s-partial_outage,.s-major_outage,.s-down{color:var(--bad);background:var(--bad-bg)}.s-maintenance{color:var(--plan);background:var(--plan-bg)}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;font-size:.9rem}.reason{display:block;color:var(--muted);font-size:.9rem}
ul{padding-left:1.2rem}li{margin:.3rem 0}figure{margin:1rem 0}figcaption{color:var(--muted);font-size:.9rem;margin-bottom:.3rem}
.chart{width:100%;min-height:160px}.u-legend{color:var(--fg)}`;

/** The browser side: renders the status object, draws the charts and applies each event. */
const CLIENT = `(function(){
var S=window.GANGWAY_STATUS,base=window.GANGWAY_STATUS_BASE,charts={},hist=null;
var W=window.GANGWAY_WORDS;
function w(key,vars){return W[key].replace(/\\{(\\w+)\\}/g,function(m,k){return vars&&k in vars?vars[k]:m})}
function el(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs)e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=text;return e}
function when(iso){return iso?new Date(iso).toLocaleString(document.documentElement.lang):''}
function render(s){
 document.getElementById('updated').textContent=when(s.generated_at);
 var o=document.getElementById('overall');o.className='banner s-'+s.overall;o.textContent=W['overall.'+s.overall]||s.overall;
 var tb=document.getElementById('services');tb.textContent='';
 s.services.forEach(function(v){var tr=el('tr');var name=el('td');name.appendChild(el('strong',{},v.name));name.appendChild(el('span',{class:'reason'},w('status.line_servers',{upstream:v.upstream,up:v.servers.in_rotation,total:v.servers.total})));tr.appendChild(name);
  var st=el('td');st.appendChild(el('span',{class:'badge s-'+v.state},W['state.'+v.state]||v.state));if(v.reason)st.appendChild(el('span',{class:'reason'},v.reason));tr.appendChild(st);
  tr.appendChild(el('td',{},w('status.line_requests',{requests:v.last_minute.requests,errors:v.last_minute.errors})));tr.appendChild(el('td',{},v.last_minute.p99_ms==null?'–':v.last_minute.p99_ms+' ms'));tb.appendChild(tr)});
 var m=document.getElementById('maintenance');m.textContent='';
 s.maintenance.active.forEach(function(a){m.appendChild(el('li',{},W['status.now']+': '+(a.routes==='all'?W['status.all_services']:a.routes.join(', '))+(a.until?' '+W['status.until']+' '+when(a.until):'')+(a.message?' — '+a.message:'')))});
 s.maintenance.scheduled.forEach(function(a){m.appendChild(el('li',{},W['status.scheduled']+': '+(a.routes==='all'?W['status.all_services']:a.routes.join(', '))+', '+when(a.start)+' – '+when(a.end)+(a.message?' — '+a.message:'')))});
 if(!m.children.length)m.appendChild(el('li',{},W['status.no_maintenance']));
 var inc=document.getElementById('incidents');inc.textContent='';
 s.incidents.forEach(function(i){inc.appendChild(el('li',{class:i.ongoing?'ongoing':''},(i.ongoing?W['status.ongoing_since']+' ':'')+when(i.start)+(i.end?' – '+when(i.end):'')+': '+w('status.incident',{route:i.route,cause:i.cause,errors:i.errors,requests:i.requests,peak:Math.round(i.peak_error_rate*100)})))});
 if(!inc.children.length)inc.appendChild(el('li',{},W['status.no_incidents']));
}
function chart(id,key,label,color){var box=document.getElementById(id);var w=box.clientWidth||600;
 var opts={width:w,height:160,legend:{show:false},scales:{x:{time:true}},axes:[{stroke:getComputedStyle(document.body).color},{stroke:getComputedStyle(document.body).color}],series:[{},{label:label,stroke:color,width:2,fill:color+'22'}]};
 charts[key]=new uPlot(opts,[hist.t,hist[key]],box)}
function draw(){if(!window.uPlot||!hist)return;
 if(!charts.rps){chart('chart-rps','rps','req/s','#2563eb');chart('chart-err','error_pct','errors %','#dc2626');chart('chart-p99','p99_ms','p99 ms','#7c3aed');return}
 ['rps','error_pct','p99_ms'].forEach(function(k){charts[k].setData([hist.t,hist[k]])})}
function append(p){['t','rps','error_pct','p99_ms'].forEach(function(k){hist[k]=hist[k].concat(p[k]);if(hist[k].length>720)hist[k]=hist[k].slice(-720)})}
render(S);
if(window.EventSource){var es=new EventSource(base+'/events');es.addEventListener('status',function(ev){var s=JSON.parse(ev.data);if(s.history)hist=s.history;else if(s.point&&hist)append(s.point);render(s);draw();document.body.setAttribute('data-live','1')})}
window.addEventListener('resize',function(){for(var k in charts)charts[k].setSize({width:charts[k].root.parentNode.clientWidth,height:160})});
})();`;
