/**
 * The gateway's own answers: a failure kind becomes a status line, RFC 9209 Proxy-Status,
 * Retry-After, `Cache-Control: no-store`, the request id, and a body in the form the client
 * asked for (RFC 9457 problem+json, HTML or text). Built here, written by whichever client
 * side asked (proxy/local-reply.ts).
 *
 * The text form is read in a terminal, so it says when to try again (nothing there retries by
 * itself), in the reader's language down to its labels, and gives the status page as a whole
 * URL to copy. Problem+json and the Link field keep the configured reference: a program
 * resolves a relative one against the request's URL (RFC 9457 §3.1, RFC 8288 §3.2). A gRPC
 * call gets a gRPC status instead of a body (the kind's `grpc` code in the taxonomy).
 */
import { serializeProxyStatus } from '../faults/proxy-status.js';
import { FAILURES, GRPC_CODES, type FailureKind, type FailureKindName } from '../faults/taxonomy.js';
import { encodeGrpcMessage } from '../http/grpc.js';
import { languagesOf, text } from './catalogue.js';
import { chooseLanguage } from './language.js';
import { clockTime, humanDuration } from './duration.js';
import { chooseErrorForm } from './negotiate.js';
import { parseAuthority } from '../http/host.js';
import { renderErrorPage, type PageSettings } from './page.js';

export interface ReplyFacts {
  kind: FailureKindName;
  proxyName: string;
  requestId: string;
  /** The upstream pool involved, named to the client (never a host address). */
  service?: string;
  /** Request path, used as the problem's `instance`. */
  path?: string;
  /** The authority the client named (Host): makes a relative status page a whole URL in the text form. */
  authority?: string;
  /** The scheme the client used; the listeners speak plain HTTP today. */
  scheme?: 'http' | 'https';
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
  /** False when Retry-After is a guess (maintenance switched on without an end): no end time is promised. */
  endKnown?: boolean;
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
  /**
   * The request is a gRPC call: the answer is a gRPC status (trailers-only: HTTP 200, the status
   * in `grpc-status` and `grpc-message`) instead of a page, whatever Accept says.
   */
  grpc?: boolean;
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
  const service = f.service ?? text(lang, 'service_fallback', page.texts);
  const t = (key: Parameters<typeof text>[1], vars?: Record<string, string | number>): string =>
    text(lang, key, page.texts, { service, ...vars });
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

  if (f.grpc === true) return grpcReply(f, kind, headers, explanation, retryAfter, details);
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
      endKnown: f.endKnown !== false,
      retriable: f.method === 'GET' || f.method === 'HEAD',
      requestId: f.requestId,
      time: new Date(),
      statusPage: f.statusPage,
      proxyStatus,
      settings: page,
    });
  } else {
    headers.push(['content-type', 'text/plain; charset=utf-8']);
    const now = new Date();
    const statusPage = f.statusPage && wholeUrl(f.statusPage, f.authority, f.scheme ?? 'http');
    body =
      `${status} ${title}\n\n${explanation}\n\n${t('what_to_do')}:\n${advice.map((a) => `- ${a}\n`).join('')}\n` +
      (retryAfter !== undefined
        ? `${t('when')}: ${tryAgain(t, retryAfter, lang, page, now, f.endKnown !== false)}\n`
        : '') +
      (statusPage ? `${t('status_page')}: ${statusPage}\n` : '') +
      `\n${t('reference')}:\n` +
      `  ${t('error')}: ${status} ${f.kind}\n` +
      `  ${t('request_id')}: ${f.requestId}\n` +
      `  ${t('time')}: ${now.toISOString().replace('T', ' ').slice(0, 19)} UTC\n` +
      // A field name, the same in every language.
      `  Proxy-Status: ${proxyStatus}\n`;
  }
  return { status, headers, body };
}

const DEFAULT_PAGE: PageSettings = { brand: {}, texts: {}, autoRetry: true };

/**
 * The answer to a gRPC call: trailers-only (gRPC over HTTP/2 §Responses), HTTP 200 with the
 * status in the header block and no body, so every gRPC client reads a status rather than
 * failing to parse a page. Proxy-Status and the request id stay for the operator's tools;
 * Retry-After stays, and `grpc-retry-pushback-ms` says the same to a client whose retry policy
 * reads it (gRFC A6). The message is the explanation a person would read, naming the service,
 * with the kind (and, for a trusted client, the cause) after it for whoever debugs the call.
 */
function grpcReply(
  f: ReplyFacts,
  kind: FailureKind,
  common: Array<[string, string]>,
  explanation: string,
  retryAfter: number | undefined,
  details: string | undefined,
): LocalReply {
  const headers: Array<[string, string]> = [
    ['content-type', 'application/grpc'],
    ['grpc-status', String(GRPC_CODES[kind.grpc])],
    ['grpc-message', encodeGrpcMessage(`${explanation} (${f.kind}${details ? `; ${details}` : ''})`)],
  ];
  for (const field of common) {
    const name = field[0];
    // A page's negotiation fields mean nothing to a gRPC client.
    if (name !== 'content-language' && name !== 'vary') headers.push(field);
  }
  if (retryAfter !== undefined) headers.push(['grpc-retry-pushback-ms', String(retryAfter * 1000)]);
  return { status: 200, headers, body: '' };
}

/** "Try again in 5 seconds." — or, for a long wait, the clock time too. */
function tryAgain(
  t: (key: 'reply.try_again' | 'reply.try_again_at', vars: Record<string, string>) => string,
  retryAfter: number,
  lang: string,
  page: PageSettings,
  now: Date,
  /** Retry-After is when something ends, not a guess: a clock time may be given. */
  endKnown: boolean,
): string {
  const duration = humanDuration(retryAfter, lang, page.texts);
  if (retryAfter < 60 || !endKnown) return t('reply.try_again', { duration });
  const time = clockTime(new Date(now.getTime() + retryAfter * 1000), lang, now);
  return t('reply.try_again_at', { duration, time });
}

/**
 * The status page as a URL a person can copy: as configured when it is whole, else resolved
 * against the authority the client named — only when that is a well-formed host (it is the
 * client's own word, and must not turn the link into something else). Undefined otherwise.
 */
function wholeUrl(reference: string, authority: string | undefined, scheme: 'http' | 'https'): string | undefined {
  if (/^https?:\/\//i.test(reference)) return reference;
  if (authority === undefined || !reference.startsWith('/') || reference.startsWith('//')) return undefined;
  const parsed = parseAuthority(authority);
  if (!parsed.ok) return undefined;
  const port = parsed.port === undefined ? '' : `:${parsed.port}`;
  try {
    return new URL(reference, `${scheme}://${parsed.host}${port}`).href;
  } catch {
    return undefined;
  }
}
