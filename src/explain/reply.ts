/**
 * The gateway's own answers: a failure kind becomes a status line, RFC 9209 Proxy-Status,
 * Retry-After, `Cache-Control: no-store`, the request id, and a body in the form the client
 * asked for (RFC 9457 problem+json, HTML or text). Built here, written by whichever client
 * side asked (proxy/local-reply.ts).
 */
import { serializeProxyStatus } from '../faults/proxy-status.js';
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';
import { languagesOf, text } from './catalogue.js';
import { chooseLanguage } from './language.js';
import { chooseErrorForm } from './negotiate.js';
import { renderErrorPage, type PageSettings } from './page.js';

export interface ReplyFacts {
  kind: FailureKindName;
  proxyName: string;
  requestId: string;
  /** The upstream pool involved, named to the client (never a host address). */
  service?: string;
  /** Request path, used as the problem's `instance`. */
  path?: string;
  accept?: string;
  acceptLanguage?: string;
  /** The request method: a GET page may retry by itself. */
  method?: string;
  /** The operator's page settings (config errors.page). */
  page?: PageSettings;
  /** Whether this client may see next-hop and the low-level error. */
  revealDetails: boolean;
  /** The host that failed (shown only when revealDetails). */
  nextHop?: string;
  /** The low-level error text (shown only when revealDetails). */
  cause?: string;
  /** Overrides the taxonomy's suggested Retry-After, in seconds. */
  retryAfter?: number;
  statusPage?: string;
  /** An operator's message added to the explanation (e.g. from a maintenance window). */
  message?: string;
  /** Replaces the default Proxy-Status details ("upstream NAME"). */
  details?: string;
  /** More response header fields (e.g. RateLimit). */
  headers?: Array<[string, string]>;
  /**
   * An upstream's own error status this reply explains in its place: the status is kept and
   * Proxy-Status names it as received (RFC 9209 `received-status`) instead of an error of ours.
   */
  receivedStatus?: number;
}

export interface LocalReply {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

export function buildReply(f: ReplyFacts): LocalReply {
  const kind = FAILURES[f.kind];
  const status = f.receivedStatus ?? kind.status ?? 502;
  const page = f.page ?? DEFAULT_PAGE;
  const lang = chooseLanguage(f.acceptLanguage, languagesOf(page.texts));
  const t = (key: Parameters<typeof text>[1]): string =>
    text(lang, key, page.texts, { service: f.service ?? text(lang, 'service_fallback', page.texts) });
  const title = t(`kind.${f.kind}.title`);
  const explanation = t(`kind.${f.kind}.explanation`) + (f.message ? ` ${f.message}` : '');
  const advice = t(`advice.${kind.advice}`).split('\n');
  const retryAfter = f.retryAfter ?? kind.retryAfter ?? undefined;

  const details =
    f.details ??
    (f.revealDetails && f.cause
      ? `${f.service ? `upstream ${f.service}: ` : ''}${f.cause}`
      : f.service
        ? `upstream ${f.service}`
        : undefined);
  const proxyStatus = serializeProxyStatus({
    proxy: f.proxyName,
    error: f.receivedStatus === undefined ? kind.error : undefined,
    receivedStatus: f.receivedStatus,
    nextHop: f.revealDetails ? f.nextHop : undefined,
    details,
  });

  const headers: Array<[string, string]> = [
    ['proxy-status', proxyStatus],
    ['cache-control', 'no-store'],
    ['x-request-id', f.requestId],
    ['content-language', lang],
    ['vary', 'Accept, Accept-Language'],
  ];
  if (retryAfter !== undefined) headers.push(['retry-after', String(retryAfter)]);
  if (f.statusPage) headers.push(['link', `<${f.statusPage}>; rel="status"`]);
  if (f.headers) headers.push(...f.headers);

  const form = chooseErrorForm(f.accept);
  let body: string;
  if (form === 'problem') {
    headers.push(['content-type', 'application/problem+json']);
    body = JSON.stringify({
      type: `urn:gangway:failure:${f.kind}`,
      title,
      status,
      detail: explanation,
      instance: f.path,
      request_id: f.requestId,
      proxy_status: proxyStatus,
      retry_after: retryAfter,
      side: kind.side,
      advice,
      status_page: f.statusPage,
    });
  } else if (form === 'html') {
    headers.push(['content-type', 'text/html; charset=utf-8']);
    body = renderErrorPage({
      lang,
      status,
      kind: f.kind,
      service: f.service,
      message: f.message,
      retryAfter,
      retriable: f.method === 'GET' || f.method === 'HEAD',
      requestId: f.requestId,
      time: new Date(),
      statusPage: f.statusPage,
      proxyStatus,
      settings: page,
    });
  } else {
    headers.push(['content-type', 'text/plain; charset=utf-8']);
    body =
      `${status} ${title}\n\n${explanation}\n${advice.join('\n')}\n\n` +
      (retryAfter !== undefined ? `Retry after: ${retryAfter} s\n` : '') +
      `Request id: ${f.requestId}\nProxy-Status: ${proxyStatus}\n` +
      (f.statusPage ? `Status page: ${f.statusPage}\n` : '');
  }
  return { status, headers, body };
}

const DEFAULT_PAGE: PageSettings = { brand: {}, texts: {}, autoRetry: true };
