/**
 * Writing a stored response to a client: with its Age brought up to date (RFC 9111 §5.1), the
 * request's own id and Cache-Status; as 304 when the client's validators match it (RFC 9110
 * §13.1: If-None-Match, else If-Modified-Since), as 206 for one byte range of it (or 416 when
 * the range lies outside it; several ranges get the whole body, as RFC 9110 §14.2 allows), and
 * without a body for HEAD.
 */
import type { ClientRequest, ClientResponse } from '../listen/client.js';
import type { StoredResponse } from './store.js';
import { clientFields } from './targeted.js';

/** Header fields a 304 carries from the stored response (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'age']);

export interface ServeOptions {
  requestId: string;
  cacheStatus: string;
  /** More fields the route adds to every answer (RateLimit). */
  extra?: readonly string[];
}

/** Writes the stored answer; returns the body bytes sent. */
export function writeStored(
  req: ClientRequest,
  res: ClientResponse,
  stored: StoredResponse,
  options: ServeOptions,
): number {
  const fields = clientFields(stored.policy.responseHeaders());
  if (stored.originDate !== undefined) fields.date = stored.originDate;
  if (!stored.originWarned) delete fields.warning;
  const status = stored.status;
  const flat: string[] = [];
  const notModified = isNotModified(req, fields) && (req.method === 'GET' || req.method === 'HEAD');
  for (const [name, value] of Object.entries(fields)) {
    if (name === 'content-length' || value === undefined) continue;
    if (notModified && !NOT_MODIFIED_FIELDS.has(name)) continue;
    if (Array.isArray(value)) for (const v of value) flat.push(name, v);
    else flat.push(name, value);
  }
  flat.push('x-request-id', options.requestId, 'cache-status', options.cacheStatus);
  if (options.extra !== undefined) flat.push(...options.extra);
  if (notModified) {
    res.sendHead(304, undefined, flat, true);
    res.finish();
    return 0;
  }
  let body = stored.body;
  let sentStatus = status;
  const range = status === 200 ? rangeOf(req, fields, body.length) : undefined;
  if (range === 'unsatisfiable') {
    flat.length = 0;
    flat.push('content-range', `bytes */${body.length}`, 'x-request-id', options.requestId);
    flat.push('cache-status', options.cacheStatus, 'content-length', '0');
    res.sendHead(416, undefined, flat, true);
    res.finish();
    return 0;
  }
  if (range !== undefined) {
    flat.push('content-range', `bytes ${range.start}-${range.end}/${body.length}`);
    body = body.subarray(range.start, range.end + 1);
    sentStatus = 206;
  }
  flat.push('content-length', String(body.length));
  res.sendHead(sentStatus, undefined, flat, true);
  if (req.method === 'HEAD') {
    res.finish();
    return 0;
  }
  res.finish(body);
  return body.length;
}

type Fields = Readonly<Record<string, string | string[] | undefined>>;

function one(fields: Fields, name: string): string | undefined {
  const v = fields[name];
  return typeof v === 'string' ? v : undefined;
}

/** The client's validators match the stored response (RFC 9110 §13.2.2, steps 3 and 4). */
function isNotModified(req: ClientRequest, fields: Fields): boolean {
  const inm = req.headers['if-none-match'];
  const etag = one(fields, 'etag');
  if (inm !== undefined) {
    if (inm.trim() === '*') return true;
    if (etag === undefined) return false;
    const mine = weak(etag);
    return inm.split(',').some((tag) => weak(tag.trim()) === mine);
  }
  const ims = req.headers['if-modified-since'];
  const lastModified = one(fields, 'last-modified');
  if (ims === undefined || lastModified === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lastModified);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

/** Weak comparison: the opaque tag without its W/ (RFC 9110 §8.8.3.2). */
function weak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/**
 * The one byte range a Range request asks for, when it applies (If-Range matching strongly):
 * undefined to send the whole body.
 */
function rangeOf(
  req: ClientRequest,
  fields: Fields,
  length: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (req.method !== 'GET') return undefined;
  const value = req.headers.range;
  if (value === undefined) return undefined;
  const raw = req.headers['if-range'];
  const ifRange = typeof raw === 'string' ? raw : undefined;
  if (ifRange !== undefined) {
    const etag = one(fields, 'etag');
    const strongMatch = etag !== undefined && !etag.startsWith('W/') && ifRange.trim() === etag;
    const dateMatch = !ifRange.trim().startsWith('"') && ifRange.trim() === one(fields, 'last-modified');
    if (!strongMatch && !dateMatch) return undefined;
  }
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined; // several ranges or another unit: the whole body
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
  if (start >= length || start > end) return 'unsatisfiable';
  return { start, end };
}
