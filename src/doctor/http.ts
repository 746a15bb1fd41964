/**
 * The HTTP rung: one GET of the URL (through the proxy when one applies), timed to the
 * first byte, and everything the answer says about the path it took: each hop's
 * Proxy-Status (RFC 9209), Via, Retry-After, the request id to quote, and the status page
 * the service advertises (Link rel="status", or a problem document's status_page). It reads
 * the head of the body only: the answer may be a song or an event stream that never ends.
 */
import type { Readable } from 'node:stream';
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
  /** The status an HTTP proxy answered instead of passing the request on. */
  proxyStatus?: number;
  /** Where a redirect points. */
  location?: string;
  body?: BodyFacts;
}

/** What the doctor saw of a body it did not necessarily read to the end. */
export interface BodyFacts {
  /** Bytes read before the doctor stopped reading. */
  read: number;
  /** Whether the body ended while the doctor was reading. */
  ended: boolean;
  /** Content-Length, when the answer gave one. */
  length?: number;
  contentType?: string;
}

/** Enough of a body for a problem document or an error page; the rest is not the doctor's to fetch. */
const BODY_HEAD_BYTES = 16 * 1024;
/** How long the body may keep coming after the headers: a live stream never ends, a download takes minutes. */
const BODY_WINDOW_MS = 1500;

/**
 * The first `limit` bytes of a body, or what arrives within `windowMs`, whichever comes
 * first; then the body is let go (the connection with it), so a stream cannot hold the doctor.
 */
export function readHead(
  body: Readable,
  limit: number,
  windowMs: number,
): Promise<{ text: string; read: number; ended: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let read = 0;
    let settled = false;
    const done = (ended: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ended) body.destroy();
      resolve({ text: Buffer.concat(chunks).subarray(0, limit).toString('utf8'), read, ended });
    };
    const timer = setTimeout(() => done(false), windowMs);
    body.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      read += chunk.length;
      if (read >= limit) done(false);
    });
    body.once('end', () => done(true));
    body.on('error', () => done(false));
  });
}

export function dispatcherFor(proxy: URL | undefined, timeoutMs: number): Dispatcher {
  const timeouts = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: timeoutMs } };
  return proxy ? new ProxyAgent({ uri: proxy.href, ...timeouts }) : new Agent(timeouts);
}

export async function fetchOnce(url: URL, dispatcher: Dispatcher, timeoutMs: number): Promise<HttpAttempt> {
  const started = performance.now();
  try {
    const res = await request(url, {
      dispatcher,
      method: 'GET',
      headers: { accept: 'application/problem+json, text/html;q=0.9, */*;q=0.8', 'user-agent': 'gangway-doctor' },
    });
    const ms = performance.now() - started;
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    const { text, read, ended } = await readHead(res.body, BODY_HEAD_BYTES, Math.min(BODY_WINDOW_MS, timeoutMs));
    const length = header('content-length') === undefined ? undefined : Number(header('content-length'));
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
      location: header('location'),
      body: {
        read,
        ended: ended || (length !== undefined && read >= length),
        length: Number.isSafeInteger(length) ? length : undefined,
        contentType: header('content-type')?.split(';')[0]?.trim(),
      },
    };
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; message?: string };
    // An HTTP proxy's refusal comes back as an error whose message alone carries the proxy's status.
    const refused = /^Proxy (?:Authentication Required \((\d{3})\)|response \((\d{3})\))/.exec(e.message ?? '');
    const proxyStatus = refused ? Number(refused[1] ?? refused[2]) : undefined;
    return {
      ok: false,
      ms: performance.now() - started,
      hops: [],
      error: proxyStatus ? `the proxy answered ${proxyStatus}` : (e.cause?.code ?? e.code ?? e.message),
      proxyStatus,
    };
  }
}

export interface StatusPageSummary {
  overall?: string;
  services?: Array<{ name: string; state: string; reason?: string }>;
  maintenance?: { active?: Array<{ message?: string; until?: string }> };
}

/** A status page is one JSON document; a larger answer is not one Gangway wrote. */
const STATUS_PAGE_BYTES = 1024 * 1024;

/** Reads an advertised status page as JSON (Gangway's answers JSON on Accept); undefined when it cannot. */
export async function readStatusPage(
  href: string,
  base: URL,
  dispatcher: Dispatcher,
  timeoutMs: number,
): Promise<StatusPageSummary | undefined> {
  try {
    const res = await request(new URL(href, base), { dispatcher, headers: { accept: 'application/json' } });
    const { text, ended } = await readHead(res.body, STATUS_PAGE_BYTES, timeoutMs);
    if (res.statusCode !== 200 || !ended) return undefined;
    const json = JSON.parse(text) as StatusPageSummary;
    return typeof json.overall === 'string' ? json : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The services a status page says are not healthy, those in the same state for the same reason
 * named together: a maintenance of the whole site is one sentence, not one per route.
 */
export function troubledServices(page: StatusPageSummary): Array<{ names: string[]; state: string; reason?: string }> {
  const groups = new Map<string, { names: string[]; state: string; reason?: string }>();
  for (const s of page.services ?? []) {
    if (s.state === 'healthy') continue;
    const key = `${s.state}\n${s.reason ?? ''}`;
    const group = groups.get(key) ?? { names: [], state: s.state, reason: s.reason };
    group.names.push(s.name);
    groups.set(key, group);
  }
  return [...groups.values()];
}
