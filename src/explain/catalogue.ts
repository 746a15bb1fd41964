/**
 * Every word a person reads on the gateway's error answers and its status page, in every
 * language it speaks: the pages' own phrases, each failure kind's title and explanation, and
 * the steps of each kind of advice (one step per line). English is complete and the fallback; other languages
 * may leave keys out. Operators override or add any key per language in the configuration
 * (`errors.page.texts`), and unknown keys there are refused, so a typo cannot hide.
 *
 * A count is written as a plural (`{count, plural, one {# minute} other {# minutes}}`, see
 * ./plural.ts), never as "{n} minutes", so every language picks its own form. Durations read
 * "in {duration}" in every text that uses them, which lets German give them in the dative.
 */
import type { AdviceGroup, FailureKindName } from '../faults/taxonomy.js';
import { formatMessage } from './plural.js';

type KindKeys = `kind.${FailureKindName}.${'title' | 'explanation'}`;
type AdviceKeys = `advice.${AdviceGroup}`;
type PageKeys =
  | 'side.service'
  | 'side.client'
  | 'side.maintenance'
  | 'headline.service'
  | 'headline.client'
  | 'headline.maintenance'
  | 'headline.overloaded'
  | 'what_to_do'
  | 'when'
  | 'retry.in'
  | 'retry.now'
  | 'retry.checking'
  | 'retry.still'
  | 'retry.manual'
  | 'retry.auto'
  | 'retry.auto_later'
  | 'retry.offline'
  | 'back_at'
  | 'back_unknown'
  | 'reply.try_again'
  | 'reply.try_again_at'
  | 'duration.seconds'
  | 'duration.minutes'
  | 'duration.hours'
  | 'duration.days'
  | 'duration.about'
  | 'operator_message'
  | 'reference'
  | 'request_id'
  | 'time'
  | 'error'
  | 'status_page'
  | 'service_fallback';

/**
 * The status page's words. Counts are written `{n, plural, one {# request} other {# requests}}`
 * (ICU MessageFormat's plural, see ./message.ts): each language has its own plural forms.
 */
type StatusKeys =
  | 'status.title'
  | 'status.live'
  | 'status.services'
  | 'status.col_service'
  | 'status.col_state'
  | 'status.col_last_minute'
  | 'status.col_p99'
  | 'status.maintenance'
  | 'status.incidents'
  | 'status.last_hour'
  | 'status.chart_rps'
  | 'status.chart_errors'
  | 'status.chart_p99'
  | 'status.series_failed'
  | 'status.series_shed'
  | 'status.noscript'
  | 'status.no_maintenance'
  | 'status.no_incidents'
  | 'status.certificates'
  | 'status.no_certificates'
  | 'status.certificate_listener'
  | 'status.certificate_left'
  | 'status.certificate_expired'
  | 'status.certificate_soon'
  | 'status.store'
  | 'status.store_reachable'
  | 'status.store_unreachable'
  | 'status.now'
  | 'status.scheduled'
  | 'status.all_services'
  | 'status.until'
  | 'status.ongoing_since'
  | 'status.line_requests'
  | 'status.line_shed'
  | 'status.line_prevented'
  | 'status.line_servers'
  | 'status.incident'
  | 'status.reason.maintenance'
  | 'status.reason.no_servers'
  | 'status.reason.failing'
  | 'status.reason.servers_out'
  | 'status.reason.reduced'
  | 'status.reason.shedding'
  | 'status.reason.queueing'
  | 'overall.operational'
  | 'overall.busy'
  | 'overall.degraded'
  | 'overall.partial_outage'
  | 'overall.major_outage'
  | 'overall.maintenance'
  | 'state.healthy'
  | 'state.busy'
  | 'state.degraded'
  | 'state.down'
  | 'state.maintenance';

export type TextKey = KindKeys | AdviceKeys | PageKeys | StatusKeys;
export type Catalogue = Record<TextKey, string>;

const en: Catalogue = {
  'side.service': 'The problem is on our side',
  'side.client': 'The problem may be on your side',
  'side.maintenance': 'Planned maintenance',
  'headline.service': 'The {service} service is not answering right now',
  'headline.overloaded': 'The {service} service is very busy right now',
  'headline.maintenance': 'The {service} service is down for maintenance',
  'headline.client': 'This request could not be served',
  what_to_do: 'What you can do',
  when: 'When to come back',
  'retry.in': 'Next check in {duration}.',
  'retry.now': 'Try again now',
  'retry.checking': 'Checking whether the service is back…',
  'retry.still': 'Still unavailable. Next check in {duration}.',
  'retry.manual': 'Reload this page in {duration}.',
  'retry.auto':
    'This page checks by itself, often at first and then at least once a minute, ' +
    'and reloads as soon as the service answers.',
  'retry.auto_later': 'This page checks by itself when the wait is over, and reloads as soon as the service answers.',
  'retry.offline': 'Your device is offline. This page checks again as soon as the connection is back.',
  back_at: 'Expected back at {time}, in {duration}.',
  back_unknown: 'No end has been announced yet; this page keeps checking.',
  'reply.try_again': 'Try again in {duration}.',
  'reply.try_again_at': 'Try again after {time} (in {duration}).',
  'duration.seconds': '{count, plural, one {# second} other {# seconds}}',
  'duration.minutes': '{count, plural, one {# minute} other {# minutes}}',
  'duration.hours': '{count, plural, one {# hour} other {# hours}}',
  'duration.days': '{count, plural, one {# day} other {# days}}',
  'duration.about': 'about {duration}',
  operator_message: 'Message from the operators',
  reference: 'For support, quote',
  request_id: 'Request id',
  time: 'Time',
  error: 'Error',
  status_page: 'Service status',
  service_fallback: 'requested',
  'status.title': 'Service status',
  'status.live': 'Live',
  'status.services': 'Services',
  'status.col_service': 'Service',
  'status.col_state': 'State',
  'status.col_last_minute': 'Last minute',
  'status.col_p99': 'Time to first byte (p99)',
  'status.maintenance': 'Maintenance',
  'status.incidents': 'Incidents observed by the gateway',
  'status.last_hour': 'The last hour',
  'status.chart_rps': 'Requests per second',
  'status.chart_errors': 'Failed, and asked to retry later (% of requests)',
  'status.chart_p99': 'Time to first byte, p99',
  'status.series_failed': 'Failed or broke off',
  'status.series_shed': 'Asked to retry later (busy)',
  'status.noscript': 'Without JavaScript this page shows the state when it was loaded; reload it for news.',
  'status.no_maintenance': 'None in progress or scheduled.',
  'status.no_incidents': 'No incidents in the last hour.',
  'status.certificates': 'Certificates',
  'status.no_certificates': 'No listener speaks HTTPS.',
  'status.certificate_listener': 'listener {listener}',
  'status.certificate_left': 'valid until {until} · {days, plural, one {# day} other {# days}} left',
  'status.certificate_expired': 'expired on {until}: clients refuse it',
  'status.certificate_soon': 'Renew it: fewer than {warn} days left',
  'status.store': 'Shared state',
  'status.store_reachable':
    '{kind} reachable since {since} · shared by {instances, plural, one {# instance} other {# instances}}',
  'status.store_unreachable':
    "{kind} unreachable since {since}: rate limits use this instance's share, the last known maintenance holds, " +
    "the charts lack the other instances' traffic since then",
  'status.now': 'Now',
  'status.scheduled': 'Scheduled',
  'status.all_services': 'all services',
  'status.until': 'until',
  'status.ongoing_since': 'Ongoing since',
  'status.line_requests':
    '{requests, plural, one {# request} other {# requests}}, {errors, plural, one {# error} other {# errors}}',
  'status.line_shed': '{shed, plural, one {# request} other {# requests}} asked to retry later',
  'status.line_prevented':
    '{prevented, plural, one {# error} other {# errors}} prevented by serving the last good answer',
  'status.line_servers': 'route {route} · upstream {upstream} · {up}/{total, plural, one {# server} other {# servers}}',
  'status.incident':
    '{cause} ({errors} of {requests, plural, one {# request} other {# requests}} failed, at worst {peak})',
  'status.reason.maintenance': 'Planned maintenance',
  'status.reason.no_servers': 'No server of this service is available',
  'status.reason.failing': '{rate} of requests failed in the last minute ({cause})',
  'status.reason.servers_out': '{out} of {total, plural, one {# server} other {# servers}} out of rotation',
  'status.reason.reduced': 'Running with reduced capacity',
  'status.reason.shedding': 'Very busy: some requests are asked to retry a little later',
  'status.reason.queueing': 'At its limit: requests wait their turn',
  'overall.operational': 'All services are operating normally',
  'overall.busy': 'Some services are very busy',
  'overall.degraded': 'Some services are degraded',
  'overall.partial_outage': 'Some services are down',
  'overall.major_outage': 'Services are down',
  'overall.maintenance': 'Planned maintenance in progress',
  'state.healthy': 'Healthy',
  'state.busy': 'Busy',
  'state.degraded': 'Degraded',
  'state.down': 'Down',
  'state.maintenance': 'Maintenance',
  'advice.unreachable':
    'Nothing is wrong with your connection, browser or DNS: refreshing, clearing ' +
    'caches, changing DNS or turning off a VPN will not help.\nWait a moment: ' +
    'the service is usually back within a minute.\nIf it lasts, check the service ' +
    'status or contact support with the reference below.',
  'advice.incomplete':
    'Try again: the next attempt may be served by another server.\nNothing is wrong with your connection.',
  'advice.upgrade': 'Try again shortly.\nIf it persists, the service does not offer this protocol here.',
  'advice.overloaded':
    'Nothing is wrong on your side, and refreshing right away will not help.\nWait a few seconds before trying again.',
  'advice.maintenance': 'Nothing is wrong on your side.\nCome back when the maintenance is over.',
  'advice.misconfigured':
    'This is a configuration fault on our side; retrying will not help until it is fixed.\nContact support with the reference below.',
  'advice.slow_down':
    'Wait until the time given, then continue at a slower pace.\nIf a program or extension makes requests for you, it may be making too many.',
  'advice.check_address':
    'Check the address you followed or typed.\nIf a link brought you here, the link may be out of date.',
  'advice.fix_request':
    'If a program sent this request, it needs fixing.\nA browser extension, proxy or security software on your side may be rewriting requests: try without it.',
  'advice.slow_connection':
    'Your connection may be slow or unstable: try again.\nIf you are on a VPN or proxy, try without it.',
  'advice.smaller_body': 'Send a smaller file or less data.',
  'advice.shorter_address': 'Use a shorter address; long query strings are a common cause.',
  'advice.clear_cookies': "Clear this site's cookies and try again.",
  'advice.nothing': 'Nothing to do; the gateway stopped the exchange with the service.',
  'kind.dns_error.title': 'Upstream name did not resolve',
  'kind.dns_error.explanation':
    'Our gateway could not find the address of the {service} service: its name did not resolve.',
  'kind.dns_timeout.title': 'Upstream name lookup timed out',
  'kind.dns_timeout.explanation': 'Our gateway could not look up the address of the {service} service in time.',
  'kind.connection_refused.title': 'Upstream refused the connection',
  'kind.connection_refused.explanation':
    'Our gateway could not reach the {service} service: its server refused the connection, usually because it is down or restarting.',
  'kind.tls_certificate_error.title': "The service's servers could not prove who they are",
  'kind.tls_certificate_error.explanation':
    "Our gateway reached the {service} service but could not verify its server's " +
    "certificate, so it did not send your request. The service's servers could " +
    'not prove who they are to each other: a fault on our side, not yours.',
  'kind.tls_protocol_error.title': "The service's servers could not agree on a secure connection",
  'kind.tls_protocol_error.explanation':
    'Our gateway reached the {service} service but the two could not set up ' +
    'a secure (TLS) connection, so your request was not sent. A fault on our ' +
    'side, not yours.',
  'kind.tls_alert_received.title': "The service's server refused our gateway's secure connection",
  'kind.tls_alert_received.explanation':
    "The {service} service's server ended the secure (TLS) connection with an " +
    'alert before your request was sent: our gateway and the service disagree ' +
    'about certificates or settings. A fault on our side, not yours.',
  'kind.destination_unreachable.title': 'Upstream unreachable',
  'kind.destination_unreachable.explanation': 'Our gateway has no network route to the {service} service.',
  'kind.connection_timeout.title': 'Upstream did not accept the connection in time',
  'kind.connection_timeout.explanation':
    'Our gateway could not connect to the {service} service in time; its server is overloaded or unreachable.',
  'kind.connection_terminated_reused.title': 'Upstream closed a reused connection',
  'kind.connection_terminated_reused.explanation':
    'The {service} service closed the connection just as our gateway sent your request on it, before answering.',
  'kind.connection_terminated.title': 'Upstream closed the connection without answering',
  'kind.connection_terminated.explanation':
    'The {service} service dropped the connection before sending any answer; it may have crashed while handling your request.',
  'kind.http_response_timeout.title': 'Upstream did not answer in time',
  'kind.http_response_timeout.explanation':
    'The {service} service accepted your request but did not start answering in time.',
  'kind.http_protocol_error.title': 'Upstream sent an invalid response',
  'kind.http_protocol_error.explanation':
    'The {service} service answered with something that is not valid HTTP, so our gateway could not pass it on.',
  'kind.http_response_incomplete.title': 'Upstream response broke off',
  'kind.http_response_incomplete.explanation':
    'The {service} service stopped sending part way through the response; the stream was cut so the incomplete body is not mistaken for a whole one.',
  'kind.http_upgrade_failed.title': 'Upstream refused the protocol upgrade',
  'kind.http_upgrade_failed.explanation':
    'The {service} service did not accept the protocol upgrade (such as WebSocket) the request asked for.',
  'kind.upstream_error_status.title': 'The service answered with an error',
  'kind.upstream_error_status.explanation':
    'Every server of the {service} service that our gateway tried answered with ' +
    'an error of its own (it may be overloaded or restarting), so there was ' +
    'no answer to pass on.',
  'kind.destination_unavailable.title': 'No healthy server available',
  'kind.destination_unavailable.explanation':
    'Every server of the {service} service is down or out of rotation right now.',
  'kind.connection_limit_reached.title': 'Service overloaded',
  'kind.connection_limit_reached.explanation':
    'The {service} service is busier than it can handle, so our gateway turned this request away at once rather than make you wait for a timeout.',
  'kind.maintenance.title': 'Down for maintenance',
  'kind.maintenance.explanation': 'The operators have switched the {service} service off for planned maintenance.',
  'kind.proxy_loop_detected.title': 'Request loop detected',
  'kind.proxy_loop_detected.explanation':
    'This request came back through our gateway a second time; the service is misconfigured and would loop forever.',
  'kind.proxy_internal_error.title': 'Gateway error',
  'kind.proxy_internal_error.explanation': 'Our gateway failed while handling the exchange with the {service} service.',
  'kind.rate_limited.title': 'Too many requests',
  'kind.rate_limited.explanation':
    'This client sent more requests than the {service} service accepts from one client in a short time.',
  'kind.destination_not_found.title': 'No such service here',
  'kind.destination_not_found.explanation': 'This address does not lead to any service behind our gateway.',
  'kind.bad_request.title': 'Malformed request',
  'kind.bad_request.explanation': 'The request was not valid HTTP, so it was not passed on.',
  'kind.request_timeout.title': 'Request took too long to arrive',
  'kind.request_timeout.explanation':
    'Your request did not arrive completely in time, so the gateway stopped waiting for it.',
  'kind.request_body_too_large.title': 'Request body too large',
  'kind.request_body_too_large.explanation': 'The request body is larger than this service accepts.',
  'kind.uri_too_long.title': 'Address too long',
  'kind.uri_too_long.explanation': 'The requested address is longer than this service accepts.',
  'kind.request_header_too_large.title': 'Request headers too large',
  'kind.request_header_too_large.explanation':
    "The request's headers are larger than this service accepts; oversized cookies are the usual cause.",
  'kind.client_closed.title': 'Client went away',
  'kind.client_closed.explanation': 'The client closed its connection before the response was complete.',
};

const de: Partial<Catalogue> = {
  'side.service': 'Das Problem liegt bei uns',
  'side.client': 'Das Problem liegt möglicherweise bei Ihnen',
  'side.maintenance': 'Geplante Wartung',
  'headline.service': 'Der Dienst {service} antwortet gerade nicht',
  'headline.overloaded': 'Der Dienst {service} ist gerade stark ausgelastet',
  'headline.maintenance': 'Der Dienst {service} wird gerade gewartet',
  'headline.client': 'Diese Anfrage konnte nicht bearbeitet werden',
  what_to_do: 'Was Sie tun können',
  when: 'Wann es weitergeht',
  'retry.in': 'Nächste Prüfung in {duration}.',
  'retry.now': 'Jetzt erneut versuchen',
  'retry.checking': 'Prüfe, ob der Dienst wieder da ist…',
  'retry.still': 'Noch nicht verfügbar. Nächste Prüfung in {duration}.',
  'retry.manual': 'Laden Sie diese Seite in {duration} neu.',
  'retry.auto':
    'Diese Seite prüft von selbst, anfangs oft und dann mindestens einmal pro ' +
    'Minute, und lädt neu, sobald der Dienst antwortet.',
  'retry.auto_later':
    'Diese Seite prüft von selbst, wenn die Wartezeit vorbei ist, und lädt neu, sobald der Dienst antwortet.',
  'retry.offline': 'Ihr Gerät ist offline. Diese Seite prüft erneut, sobald die Verbindung wieder da ist.',
  back_at: 'Voraussichtlich wieder verfügbar: {time}, in {duration}.',
  back_unknown: 'Ein Ende wurde noch nicht angekündigt; diese Seite prüft weiter.',
  'reply.try_again': 'Versuchen Sie es in {duration} erneut.',
  'reply.try_again_at': 'Versuchen Sie es ab {time} erneut (in {duration}).',
  // After "in", so in the dative: "in 1 Tag", "in 2 Tagen".
  'duration.seconds': '{count, plural, one {# Sekunde} other {# Sekunden}}',
  'duration.minutes': '{count, plural, one {# Minute} other {# Minuten}}',
  'duration.hours': '{count, plural, one {# Stunde} other {# Stunden}}',
  'duration.days': '{count, plural, one {# Tag} other {# Tagen}}',
  'duration.about': 'etwa {duration}',
  operator_message: 'Nachricht der Betreiber',
  reference: 'Für den Support bitte angeben',
  request_id: 'Anfrage-ID',
  time: 'Zeit',
  error: 'Fehler',
  status_page: 'Dienststatus',
  service_fallback: 'angefragte',
  'status.title': 'Dienststatus',
  'status.live': 'Live',
  'status.services': 'Dienste',
  'status.col_service': 'Dienst',
  'status.col_state': 'Zustand',
  'status.col_last_minute': 'Letzte Minute',
  'status.col_p99': 'Zeit bis zum ersten Byte (p99)',
  'status.maintenance': 'Wartung',
  'status.incidents': 'Vom Gateway beobachtete Störungen',
  'status.last_hour': 'Die letzte Stunde',
  'status.chart_rps': 'Anfragen pro Sekunde',
  'status.chart_errors': 'Fehlgeschlagen und auf später verwiesen (% der Anfragen)',
  'status.chart_p99': 'Zeit bis zum ersten Byte, p99',
  'status.series_failed': 'Fehlgeschlagen oder abgebrochen',
  'status.series_shed': 'Auf später verwiesen (ausgelastet)',
  'status.noscript': 'Ohne JavaScript zeigt diese Seite den Stand beim Laden; für Neuigkeiten bitte neu laden.',
  'status.no_maintenance': 'Keine laufende oder geplante Wartung.',
  'status.no_incidents': 'Keine Störungen in der letzten Stunde.',
  'status.certificates': 'Zertifikate',
  'status.no_certificates': 'Kein Listener spricht HTTPS.',
  'status.certificate_listener': 'Listener {listener}',
  'status.certificate_left': 'gültig bis {until} · noch {days, plural, one {# Tag} other {# Tage}}',
  'status.certificate_expired': 'abgelaufen am {until}: Clients lehnen es ab',
  'status.certificate_soon': 'Erneuern: weniger als {warn} Tage übrig',
  'status.store': 'Gemeinsamer Zustand',
  'status.store_reachable':
    '{kind} erreichbar seit {since} · geteilt von {instances, plural, one {# Instanz} other {# Instanzen}}',
  'status.store_unreachable':
    '{kind} nicht erreichbar seit {since}: Ratenlimits nutzen den Anteil dieser Instanz, ' +
    'die zuletzt bekannte Wartung gilt weiter, den Diagrammen fehlt seither der Verkehr der anderen Instanzen',
  'status.now': 'Jetzt',
  'status.scheduled': 'Geplant',
  'status.all_services': 'alle Dienste',
  'status.until': 'bis',
  'status.ongoing_since': 'Andauernd seit',
  'status.line_requests':
    '{requests, plural, one {# Anfrage} other {# Anfragen}}, {errors, plural, one {# Fehler} other {# Fehler}}',
  'status.line_shed': '{shed, plural, one {# Anfrage} other {# Anfragen}} auf später verwiesen',
  'status.line_prevented':
    '{prevented, plural, one {# Fehler} other {# Fehler}} durch die letzte gute Antwort verhindert',
  'status.line_servers': 'Route {route} · Upstream {upstream} · {up}/{total, plural, one {# Server} other {# Server}}',
  'status.incident':
    '{cause} ({errors} von {requests, plural, one {# Anfrage} other {# Anfragen}} fehlgeschlagen, höchstens {peak})',
  'status.reason.maintenance': 'Geplante Wartung',
  'status.reason.no_servers': 'Kein Server dieses Dienstes ist verfügbar',
  'status.reason.failing': '{rate} der Anfragen sind in der letzten Minute fehlgeschlagen ({cause})',
  'status.reason.servers_out': '{out} von {total, plural, one {# Server} other {# Servern}} außer Betrieb',
  'status.reason.reduced': 'Läuft mit verringerter Kapazität',
  'status.reason.shedding': 'Stark ausgelastet: manche Anfragen werden gebeten, es etwas später erneut zu versuchen',
  'status.reason.queueing': 'An der Belastungsgrenze: Anfragen warten, bis sie an der Reihe sind',
  'overall.operational': 'Alle Dienste arbeiten normal',
  'overall.busy': 'Einige Dienste sind stark ausgelastet',
  'overall.degraded': 'Einige Dienste sind beeinträchtigt',
  'overall.partial_outage': 'Einige Dienste sind ausgefallen',
  'overall.major_outage': 'Dienste sind ausgefallen',
  'overall.maintenance': 'Geplante Wartung läuft',
  'state.healthy': 'In Ordnung',
  'state.busy': 'Ausgelastet',
  'state.degraded': 'Beeinträchtigt',
  'state.down': 'Ausgefallen',
  'state.maintenance': 'Wartung',
  'advice.unreachable':
    'Mit Ihrer Verbindung, Ihrem Browser und Ihrem DNS ist alles in Ordnung: ' +
    'Neu laden, Cache leeren, DNS wechseln oder VPN ausschalten hilft nicht.\nWarten ' +
    'Sie einen Moment: Meist ist der Dienst innerhalb einer Minute zurück.\nDauert ' +
    'es länger, sehen Sie im Dienststatus nach oder wenden Sie sich mit der ' +
    'Referenz unten an den Support.',
  'advice.incomplete':
    'Versuchen Sie es erneut: Der nächste Versuch wird womöglich von einem anderen Server bedient.\nMit Ihrer Verbindung ist alles in Ordnung.',
  'advice.upgrade':
    'Versuchen Sie es gleich noch einmal.\nBleibt der Fehler, bietet der Dienst dieses Protokoll hier nicht an.',
  'advice.overloaded':
    'Bei Ihnen ist alles in Ordnung, und sofortiges Neuladen hilft nicht.\nWarten ' +
    'Sie ein paar Sekunden, bevor Sie es erneut versuchen.',
  'advice.maintenance': 'Bei Ihnen ist alles in Ordnung.\nKommen Sie nach dem Ende der Wartung wieder.',
  'advice.misconfigured':
    'Das ist ein Konfigurationsfehler bei uns; erneute Versuche helfen erst, wenn er behoben ist.\nWenden Sie sich mit der Referenz unten an den Support.',
  'advice.slow_down':
    'Warten Sie bis zur angegebenen Zeit und machen Sie dann langsamer weiter.\nFalls ein Programm oder eine Erweiterung Anfragen für Sie stellt, stellt es womöglich zu viele.',
  'advice.check_address':
    'Prüfen Sie die Adresse, die Sie aufgerufen oder eingegeben haben.\nHat ein Link Sie hierher geführt, ist er womöglich veraltet.',
  'advice.fix_request':
    'Hat ein Programm diese Anfrage gesendet, muss es korrigiert werden.\nEine Browser-Erweiterung, ein Proxy oder Sicherheitssoftware auf Ihrer Seite verändert womöglich Anfragen: Versuchen Sie es ohne.',
  'advice.slow_connection':
    'Ihre Verbindung ist womöglich langsam oder instabil: Versuchen Sie es erneut.\nNutzen Sie ein VPN oder einen Proxy, versuchen Sie es ohne.',
  'advice.smaller_body': 'Senden Sie eine kleinere Datei oder weniger Daten.',
  'advice.shorter_address': 'Verwenden Sie eine kürzere Adresse; lange Abfrageparameter sind eine häufige Ursache.',
  'advice.clear_cookies': 'Löschen Sie die Cookies dieser Website und versuchen Sie es erneut.',
  'advice.nothing': 'Nichts zu tun; das Gateway hat den Austausch mit dem Dienst beendet.',
  'kind.dns_error.title': 'Name des Dienstes nicht auflösbar',
  'kind.dns_error.explanation':
    'Unser Gateway konnte die Adresse des Dienstes {service} nicht finden: sein Name ließ sich nicht auflösen.',
  'kind.dns_timeout.title': 'Namensauflösung des Dienstes zu langsam',
  'kind.dns_timeout.explanation':
    'Unser Gateway konnte die Adresse des Dienstes {service} nicht rechtzeitig nachschlagen.',
  'kind.connection_refused.title': 'Dienst hat die Verbindung abgelehnt',
  'kind.connection_refused.explanation':
    'Unser Gateway konnte den Dienst {service} nicht erreichen: sein Server hat die Verbindung abgelehnt, meist weil er ausgefallen ist oder neu startet.',
  'kind.tls_certificate_error.title': 'Die Server des Dienstes konnten sich nicht ausweisen',
  'kind.tls_certificate_error.explanation':
    'Unser Gateway hat den Dienst {service} erreicht, konnte das Zertifikat ' +
    'seines Servers aber nicht prüfen und hat Ihre Anfrage deshalb nicht gesendet. ' +
    'Die Server des Dienstes konnten sich einander nicht ausweisen: ein Fehler ' +
    'auf unserer Seite, nicht auf Ihrer.',
  'kind.tls_protocol_error.title': 'Die Server des Dienstes konnten keine sichere Verbindung aufbauen',
  'kind.tls_protocol_error.explanation':
    'Unser Gateway hat den Dienst {service} erreicht, aber beide konnten keine ' +
    'sichere (TLS-)Verbindung aufbauen; Ihre Anfrage wurde nicht gesendet. Ein ' +
    'Fehler auf unserer Seite, nicht auf Ihrer.',
  'kind.tls_alert_received.title': 'Der Server des Dienstes hat die sichere Verbindung abgelehnt',
  'kind.tls_alert_received.explanation':
    'Der Server des Dienstes {service} hat die sichere (TLS-)Verbindung mit ' +
    'einer Warnung beendet, bevor Ihre Anfrage gesendet wurde: Gateway und Dienst ' +
    'sind sich über Zertifikate oder Einstellungen uneinig. Ein Fehler auf unserer ' +
    'Seite, nicht auf Ihrer.',
  'kind.destination_unreachable.title': 'Dienst nicht erreichbar',
  'kind.destination_unreachable.explanation': 'Unser Gateway hat keinen Netzwerkweg zum Dienst {service}.',
  'kind.connection_timeout.title': 'Dienst hat die Verbindung nicht rechtzeitig angenommen',
  'kind.connection_timeout.explanation':
    'Unser Gateway konnte sich nicht rechtzeitig mit dem Dienst {service} verbinden; sein Server ist überlastet oder nicht erreichbar.',
  'kind.connection_terminated_reused.title': 'Dienst hat eine wiederverwendete Verbindung geschlossen',
  'kind.connection_terminated_reused.explanation':
    'Der Dienst {service} hat die Verbindung genau in dem Moment geschlossen, als unser Gateway Ihre Anfrage darüber schickte – noch vor einer Antwort.',
  'kind.connection_terminated.title': 'Dienst hat die Verbindung ohne Antwort getrennt',
  'kind.connection_terminated.explanation':
    'Der Dienst {service} hat die Verbindung getrennt, bevor er irgendetwas geantwortet hat; er ist womöglich bei der Bearbeitung Ihrer Anfrage abgestürzt.',
  'kind.http_response_timeout.title': 'Dienst hat nicht rechtzeitig geantwortet',
  'kind.http_response_timeout.explanation':
    'Der Dienst {service} hat Ihre Anfrage angenommen, aber nicht rechtzeitig mit der Antwort begonnen.',
  'kind.http_protocol_error.title': 'Dienst hat eine ungültige Antwort gesendet',
  'kind.http_protocol_error.explanation':
    'Der Dienst {service} hat mit etwas geantwortet, das kein gültiges HTTP ist; unser Gateway konnte es daher nicht weitergeben.',
  'kind.http_response_incomplete.title': 'Antwort des Dienstes abgebrochen',
  'kind.http_response_incomplete.explanation':
    'Der Dienst {service} hat mitten in der Antwort aufgehört zu senden; der Datenstrom wurde abgebrochen, damit die unvollständigen Daten nicht für vollständige gehalten werden.',
  'kind.http_upgrade_failed.title': 'Dienst hat den Protokollwechsel abgelehnt',
  'kind.http_upgrade_failed.explanation':
    'Der Dienst {service} hat den angefragten Protokollwechsel (etwa zu WebSocket) nicht angenommen.',
  'kind.upstream_error_status.title': 'Der Dienst hat mit einem Fehler geantwortet',
  'kind.upstream_error_status.explanation':
    'Jeder Server des Dienstes {service}, den unser Gateway versucht hat, hat ' +
    'selbst mit einem Fehler geantwortet (vielleicht ist er überlastet oder ' +
    'startet neu), daher gab es keine Antwort zum Weitergeben.',
  'kind.destination_unavailable.title': 'Kein funktionierender Server verfügbar',
  'kind.destination_unavailable.explanation':
    'Alle Server des Dienstes {service} sind gerade ausgefallen oder außer Betrieb genommen.',
  'kind.connection_limit_reached.title': 'Dienst überlastet',
  'kind.connection_limit_reached.explanation':
    'Der Dienst {service} hat gerade mehr zu tun, als er bewältigen kann; unser Gateway hat diese Anfrage deshalb sofort abgewiesen, statt Sie auf eine Zeitüberschreitung warten zu lassen.',
  'kind.maintenance.title': 'Wartungsarbeiten',
  'kind.maintenance.explanation': 'Die Betreiber haben den Dienst {service} für eine geplante Wartung abgeschaltet.',
  'kind.proxy_loop_detected.title': 'Anfrageschleife erkannt',
  'kind.proxy_loop_detected.explanation':
    'Diese Anfrage kam ein zweites Mal durch unser Gateway; der Dienst ist falsch konfiguriert und würde endlos im Kreis leiten.',
  'kind.proxy_internal_error.title': 'Fehler im Gateway',
  'kind.proxy_internal_error.explanation':
    'Unser Gateway ist beim Austausch mit dem Dienst {service} selbst gescheitert.',
  'kind.rate_limited.title': 'Zu viele Anfragen',
  'kind.rate_limited.explanation':
    'Von diesem Gerät kamen in kurzer Zeit mehr Anfragen, als der Dienst {service} von einem Nutzer annimmt.',
  'kind.destination_not_found.title': 'Kein Dienst unter dieser Adresse',
  'kind.destination_not_found.explanation': 'Diese Adresse führt zu keinem Dienst hinter unserem Gateway.',
  'kind.bad_request.title': 'Fehlerhafte Anfrage',
  'kind.bad_request.explanation': 'Die Anfrage war kein gültiges HTTP und wurde deshalb nicht weitergeleitet.',
  'kind.request_timeout.title': 'Anfrage kam zu langsam an',
  'kind.request_timeout.explanation':
    'Ihre Anfrage ist nicht rechtzeitig vollständig angekommen; das Gateway hat aufgehört, darauf zu warten.',
  'kind.request_body_too_large.title': 'Anfrage zu groß',
  'kind.request_body_too_large.explanation': 'Die gesendeten Daten sind größer, als dieser Dienst annimmt.',
  'kind.uri_too_long.title': 'Adresse zu lang',
  'kind.uri_too_long.explanation': 'Die angefragte Adresse ist länger, als dieser Dienst annimmt.',
  'kind.request_header_too_large.title': 'Kopfzeilen der Anfrage zu groß',
  'kind.request_header_too_large.explanation':
    'Die Kopfzeilen der Anfrage sind größer, als dieser Dienst annimmt; meist sind zu große Cookies die Ursache.',
  'kind.client_closed.title': 'Verbindung vom Gerät beendet',
  'kind.client_closed.explanation': 'Das Gerät hat die Verbindung geschlossen, bevor die Antwort vollständig war.',
};

export const CATALOGUES: Readonly<Record<string, Partial<Catalogue>>> = { en, de };
export const TEXT_KEYS: ReadonlySet<string> = new Set(Object.keys(en));

/** Per-language overrides from the configuration: `{ de: { 'headline.service': '…' } }`. */
export type TextOverrides = Readonly<Record<string, Readonly<Record<string, string>>>>;

/**
 * The text for `key` in `lang`: the operator's override, the catalogue's, else English;
 * `{name}` placeholders and plurals are filled from `vars` by the rules of the language the
 * text is actually in (an English fallback counts in English).
 */
export function text(
  lang: string,
  key: TextKey,
  overrides?: TextOverrides,
  vars?: Record<string, string | number>,
): string {
  const words = textWithLanguage(lang, key, overrides);
  return vars === undefined ? words.raw : formatMessage(words.raw, words.lang, vars);
}

/** The unfilled text for `key` and the language it is in: `lang`'s own, else the English fallback. */
export function textWithLanguage(lang: string, key: TextKey, overrides?: TextOverrides): { raw: string; lang: string } {
  const own = overrides?.[lang]?.[key] ?? CATALOGUES[lang]?.[key];
  return own !== undefined ? { raw: own, lang } : { raw: overrides?.en?.[key] ?? en[key], lang: 'en' };
}

const languageSets = new WeakMap<TextOverrides, ReadonlySet<string>>();

/** The languages answers can be given in: the catalogue's, and any the operator wrote texts for (worked out once per configuration). */
export function languagesOf(overrides: TextOverrides): ReadonlySet<string> {
  let set = languageSets.get(overrides);
  if (set === undefined) {
    set = new Set([...Object.keys(CATALOGUES), ...Object.keys(overrides)]);
    languageSets.set(overrides, set);
  }
  return set;
}
