/**
 * The status page's HTML in the reader's language, rendered on the server: the whole page on
 * the first load (it reads without JavaScript), and its live sections again for every step,
 * which the page's script swaps in. Every word and every count — plurals by the language's own
 * rules, numbers and durations written its way — is worded here and nowhere else. Times are
 * written in UTC inside `<time datetime>`, which the script turns into the reader's clock.
 */
import { FAILURES } from '../faults/taxonomy.js';
import { text, type TextKey, type TextOverrides } from '../explain/catalogue.js';
import { formatMessage, type MessageVars, numbersFor } from '../explain/message.js';
import { escapeHtml } from '../explain/page.js';
import { EXPIRY_WARNING_DAYS } from '../listen/certificate.js';
import { STATUS_SCRIPT, STATUS_STYLE } from './status-client.js';
import { percent, reasonText, type MaintenanceStatus, type ServiceStatus, type StatusReport } from './status-model.js';

/** The parts of the page a live update replaces, by element id; certificates in the operator's view only. */
export type StatusSections = Record<'updated' | 'overall' | 'services' | 'maintenance' | 'incidents', string> & {
  certificates?: string;
};

/** Words in one language, escaped for HTML. */
class Words {
  constructor(
    readonly lang: string,
    private readonly overrides: TextOverrides,
  ) {}

  raw(key: TextKey): string {
    return text(this.lang, key, this.overrides);
  }

  say(key: TextKey, vars?: MessageVars): string {
    return escapeHtml(formatMessage(this.lang, this.raw(key), vars));
  }

  /** A failure kind as a listener reads it: its title ("Upstream refused the connection"). */
  cause(kind: string): string {
    if (Object.hasOwn(FAILURES, kind)) return this.raw(`kind.${kind as keyof typeof FAILURES}.title`);
    // `status_503`: the service's own 5xx, passed on.
    if (kind.startsWith('status_')) return this.raw('kind.upstream_error_status.title');
    return kind;
  }
}

export function renderStatusPage(status: StatusReport, base: string, lang: string, overrides: TextOverrides): string {
  const w = new Words(lang, overrides);
  const s = renderSections(status, lang, overrides);
  const script = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c');
  const columns = (['status.col_service', 'status.col_state', 'status.col_last_minute', 'status.col_p99'] as const)
    .map((key) => `<th scope="col">${w.say(key)}</th>`)
    .join('');
  const figure = (caption: TextKey, id: string, key = ''): string =>
    `<figure><figcaption>${w.say(caption)}</figcaption>${key}<div id="${id}" class="chart"></div></figure>`;
  const failedAndShed = `<ul class="key"><li class="k-failed">${w.say('status.series_failed')}</li>
<li class="k-shed">${w.say('status.series_shed')}</li></ul>`;
  return `<!doctype html>
<html lang="${escapeHtml(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,">
<title>${w.say('status.title')} · ${escapeHtml(status.name)}</title>
<link rel="stylesheet" href="${base}/uplot.css">
<style>${STATUS_STYLE}</style></head>
<body><header><h1>${w.say('status.title')}</h1>
<p class="muted">${w.say('status.live')} · <span id="updated">${s.updated}</span></p></header>
<main>
<section id="overall" aria-live="polite">${s.overall}</section>
<section aria-labelledby="svc"><h2 id="svc">${w.say('status.services')}</h2>
<table class="services"><thead><tr>${columns}</tr></thead><tbody id="services">${s.services}</tbody></table></section>
<section aria-labelledby="mnt"><h2 id="mnt">${w.say('status.maintenance')}</h2>
<ul id="maintenance">${s.maintenance}</ul></section>
<section aria-labelledby="inc"><h2 id="inc">${w.say('status.incidents')}</h2>
<ul id="incidents">${s.incidents}</ul></section>
${
  s.certificates === undefined
    ? ''
    : `<section aria-labelledby="crt"><h2 id="crt">${w.say('status.certificates')}</h2>
<ul id="certificates">${s.certificates}</ul></section>`
}
<section aria-labelledby="charts"><h2 id="charts">${w.say('status.last_hour')}</h2>
${figure('status.chart_rps', 'chart-rps')}
${figure('status.chart_errors', 'chart-err', failedAndShed)}
${figure('status.chart_p99', 'chart-ttfb')}
</section>
</main>
<noscript><p>${w.say('status.noscript')}</p></noscript>
<script src="${base}/uplot.js"></script>
<script>window.GANGWAY_STATUS=${script(status)};window.GANGWAY_STATUS_BASE=${script(base)};</script>
<script>${STATUS_SCRIPT}</script>
</body></html>
`;
}

export function renderSections(status: StatusReport, lang: string, overrides: TextOverrides): StatusSections {
  const w = new Words(lang, overrides);
  const titles = new Map(status.services.map((v) => [v.name, v.title]));
  const titled = (routes: MaintenanceStatus['routes']): string =>
    routes === 'all' ? w.say('status.all_services') : escapeHtml(routes.map((r) => titles.get(r) ?? r).join(', '));
  const message = (a: MaintenanceStatus): string => (a.message ? ` — ${escapeHtml(a.message)}` : '');
  const maintenance = [
    ...status.maintenance.active.map((a) => {
      const until = a.until ? ` ${w.say('status.until')} ${time(a.until)}` : '';
      return `<li>${w.say('status.now')}: ${titled(a.routes)}${until}${message(a)}</li>`;
    }),
    ...status.maintenance.scheduled.map(
      (a) =>
        `<li>${w.say('status.scheduled')}: ${titled(a.routes)}, ${time(a.start!)} – ${time(a.end!)}${message(a)}</li>`,
    ),
  ];
  const incidents = status.incidents.map((i) => {
    const service = escapeHtml(titles.get(i.route) ?? i.service);
    const when = i.ongoing ? `${w.say('status.ongoing_since')} ${time(i.start)}` : `${time(i.start)} – ${time(i.end!)}`;
    const what = w.say('status.incident', {
      cause: w.cause(i.cause),
      errors: i.errors,
      requests: i.requests,
      peak: percent(lang, i.peak_error_rate),
    });
    const open = i.ongoing ? ' class="ongoing"' : '';
    return `<li${open}><strong>${service}</strong> · ${when}<span class="detail">${what}</span></li>`;
  });
  return {
    updated: time(status.generated_at, 'seconds'),
    overall: `<div class="banner s-${status.overall}">${w.say(`overall.${status.overall}`)}</div>`,
    services: status.services.map((v) => serviceRow(v, w)).join(''),
    maintenance: maintenance.length > 0 ? maintenance.join('') : `<li>${w.say('status.no_maintenance')}</li>`,
    incidents: incidents.length > 0 ? incidents.join('') : `<li>${w.say('status.no_incidents')}</li>`,
    ...(status.certificates === undefined ? {} : { certificates: certificateItems(status.certificates, w) }),
  };
}

/** The operator's certificates: each listener's names and how long they still hold, the ones to renew marked. */
function certificateItems(certificates: NonNullable<StatusReport['certificates']>, w: Words): string {
  if (certificates.length === 0) return `<li>${w.say('status.no_certificates')}</li>`;
  // `{until}` is a <time> element: the words are escaped first, then it is put in.
  const at = (key: TextKey, until: string, days: number): string =>
    w.say(key, { until: '\u0000', days }).replace('\u0000', time(until));
  return certificates
    .map((c) => {
      const left =
        c.days_left < 0
          ? at('status.certificate_expired', c.not_after, c.days_left)
          : at('status.certificate_left', c.not_after, c.days_left);
      const expired = c.days_left < 0;
      const soon =
        c.expires_soon && !expired
          ? `<span class="reason">${w.say('status.certificate_soon', { warn: EXPIRY_WARNING_DAYS })}</span>`
          : '';
      const listener = w.say('status.certificate_listener', { listener: c.listener });
      const mark = expired ? ' class="expired"' : c.expires_soon ? ' class="soon"' : '';
      return `<li${mark}><strong>${escapeHtml(c.names.join(', '))}</strong> · ${listener}
<span class="detail">${left}</span>${soon}</li>`;
    })
    .join('');
}

function serviceRow(v: ServiceStatus, w: Words): string {
  const m = v.last_minute;
  // The operator's view says which route and upstream this is; the public one has neither.
  const servers = v.servers;
  const detail =
    v.upstream !== undefined && servers !== undefined
      ? `<span class="detail">${w.say('status.line_servers', {
          route: v.name,
          upstream: v.upstream,
          up: servers.in_rotation,
          total: servers.total,
        })}</span>`
      : '';
  const reason = reasonText(
    v,
    w.lang,
    (key) => w.raw(key),
    servers,
    (kind) => w.cause(kind),
  );
  const why = reason ? `<span class="reason">${escapeHtml(reason)}</span>` : '';
  const counts = w.say('status.line_requests', { requests: m.requests, errors: m.errors });
  const shed =
    (m.shed > 0 ? `<span class="detail shed">${w.say('status.line_shed', { shed: m.shed })}</span>` : '') +
    (m.prevented > 0
      ? `<span class="detail prevented">${w.say('status.line_prevented', { prevented: m.prevented })}</span>`
      : '');
  const ttfb = m.ttfb_p99_ms === null ? '–' : escapeHtml(duration(w.lang, m.ttfb_p99_ms));
  return `<tr><td><strong>${escapeHtml(v.title)}</strong>${detail}</td>
<td data-label="${w.say('status.col_state')}"><span class="badge s-${v.state}">${w.say(`state.${v.state}`)}</span>${why}</td>
<td data-label="${w.say('status.col_last_minute')}"><span class="counts">${counts}</span>${shed}</td>
<td data-label="${w.say('status.col_p99')}">${ttfb}</td></tr>`;
}

/**
 * A duration as people read it: "72 ms", "2.5 ms", "16.4 s" ("16,4 s" in German). The unit
 * symbols are SI, the same in every language; Intl's unit names are not ("16.4 sec").
 */
export function duration(lang: string, ms: number): string {
  const { number } = numbersFor(lang);
  if (ms >= 1000) return `${number.format(Math.round(ms / 100) / 10)}\u00a0s`;
  return `${number.format(ms < 10 ? Math.round(ms * 10) / 10 : Math.round(ms))}\u00a0ms`;
}

/** An instant in UTC, which the page's script rewrites in the reader's time zone and language. */
function time(iso: string, precision: 'minutes' | 'seconds' = 'minutes'): string {
  const seconds = precision === 'seconds';
  const shown = `${iso.slice(0, seconds ? 19 : 16).replace('T', ' ')} UTC`;
  return `<time datetime="${escapeHtml(iso)}"${seconds ? ' data-precision="seconds"' : ''}>${escapeHtml(shown)}</time>`;
}
