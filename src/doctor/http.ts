/**
 * The HTTP rung: one GET of the URL (through the proxy when one applies), timed to the
 * first byte, and everything the answer says about the path it took: each hop's
 * Proxy-Status (RFC 9209), Via, Retry-After, the request id to quote, and the status page
 * the service advertises (Link rel="status", or a problem document's status_page).
 */
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { parseProxyStatus } from '../faults/proxy-status.js';
import { parseRetryAfter } from '../http/retry-after.js';

export interface Hop {
  proxy: string;
  error?: string;
  details?: string;
  status?: number;
}

export interface HttpAttempt {
  ok: boolean;
  ms: number;
  status?: number;
  error?: string;
  hops: Hop[];
  via?: string;
  /** Seconds, from Retry-After (delay or date). */
  retryAfter?: number;
  requestId?: string;
  statusPage?: string;
  /** The problem document's type, when the answer was one (RFC 9457). */
  problemType?: string;
}

export function dispatcherFor(proxy: URL | undefined, timeoutMs: number): Dispatcher {
  const timeouts = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: timeoutMs } };
  return proxy ? new ProxyAgent({ uri: proxy.href, ...timeouts }) : new Agent(timeouts);
}

export async function fetchOnce(url: URL, dispatcher: Dispatcher): Promise<HttpAttempt> {
  const started = performance.now();
  try {
    const res = await request(url, {
      dispatcher,
      method: 'GET',
      headers: { accept: 'application/problem+json, text/html;q=0.9, */*;q=0.8', 'user-agent': 'gangway-doctor' },
    });
    const ms = performance.now() - started;
    const text = await res.body.text().catch(() => '');
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    const hops = parseProxyStatus(header('proxy-status') ?? '').map((m) => ({
      proxy: m.proxy,
      error: m.error,
      details: m.details,
      status: m.receivedStatus,
    }));
    let problem: { type?: string; status_page?: string } | undefined;
    if (header('content-type')?.includes('json')) {
      try {
        problem = JSON.parse(text) as typeof problem;
      } catch {
        /* not JSON after all */
      }
    }
    const link = /<([^>]+)>\s*;\s*rel="?status"?/i.exec(header('link') ?? '')?.[1];
    return {
      ok: true,
      ms,
      status: res.statusCode,
      hops,
      via: header('via'),
      retryAfter: parseRetryAfter(header('retry-after')),
      requestId: header('x-request-id'),
      statusPage: link ?? problem?.status_page,
      problemType: problem?.type,
    };
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; message?: string };
    return { ok: false, ms: performance.now() - started, hops: [], error: e.cause?.code ?? e.code ?? e.message };
  }
}

export interface StatusPageSummary {
  overall?: string;
  services?: Array<{ name: string; state: string; reason?: string }>;
}

/** Reads an advertised status page as JSON (Gangway's answers JSON on Accept); undefined when it cannot. */
export async function readStatusPage(
  href: string,
  base: URL,
  dispatcher: Dispatcher,
): Promise<StatusPageSummary | undefined> {
  try {
    const res = await request(new URL(href, base), { dispatcher, headers: { accept: 'application/json' } });
    const body = await res.body.text();
    if (res.statusCode !== 200) return undefined;
    const json = JSON.parse(body) as StatusPageSummary;
    return typeof json.overall === 'string' ? json : undefined;
  } catch {
    return undefined;
  }
}
