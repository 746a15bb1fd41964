/**
 * Mid-stream resume. When a GET response breaks after part of its body reached the client,
 * the rest is fetched from another host with `Range` and `If-Range` and spliced in, but only
 * when every assumption about the bytes can be checked first: a strong ETag (or a
 * Last-Modified date), `Accept-Ranges: bytes`, a known total length, and a 206 whose
 * Content-Range starts exactly where the client's copy stops, ends where the original would
 * have, and names the same total and validator. Anything else, and the client's stream is
 * cut so it sees an incomplete body: a resumed response must never carry a wrong byte.
 * The Exchange runs the resume as one more attempt; these are the checks it makes.
 */
/** Resumes allowed per response. */
export const MAX_RESUMES = 2;

/** What must hold for the rest of a response to be fetched elsewhere. */
export interface ResumePlan {
  /** Strong ETag, or undefined when Last-Modified is the validator. */
  etag: string | undefined;
  lastModified: string | undefined;
  /** Offset in the full representation of the response's first body byte. */
  first: number;
  /** Offset of its last body byte (inclusive). */
  last: number;
  /** Length of the full representation. */
  total: number;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/;

/** The headers of an answer, as undici parsed them (lower-case names; a repeated field is an array). */
export type ParsedHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** A field's value when it was sent once; a repeated field is ambiguous and counts as absent. */
function once(headers: ParsedHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** The plan for a response just received, or undefined when it cannot be resumed safely. */
export function planResume(method: string, status: number, headers: ParsedHeaders): ResumePlan | undefined {
  if (method !== 'GET' || (status !== 200 && status !== 206)) return undefined;
  if (headers['transfer-encoding'] !== undefined) return undefined;
  let etag = once(headers, 'etag');
  const lastModified = once(headers, 'last-modified');
  if (etag?.startsWith('W/')) etag = undefined; // weak validators do not promise identical bytes
  if (etag === undefined && lastModified === undefined) return undefined;
  if (status === 200) {
    const ranges = headers['accept-ranges'];
    if (ranges === undefined || !/\bbytes\b/i.test(String(ranges))) return undefined;
    const length = Number(once(headers, 'content-length'));
    if (!Number.isSafeInteger(length) || length <= 0) return undefined;
    return { etag, lastModified, first: 0, last: length - 1, total: length };
  }
  const m = CONTENT_RANGE.exec(once(headers, 'content-range') ?? '');
  if (!m) return undefined;
  return { etag, lastModified, first: Number(m[1]), last: Number(m[2]), total: Number(m[3]) };
}

/** The head of the request for the rest: the client's own, with Range and If-Range instead of its conditionals. */
export function resumeHead(headers: readonly string[], plan: ResumePlan, from: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (
      lower === 'range' ||
      lower === 'if-range' ||
      lower === 'if-none-match' ||
      lower === 'if-modified-since' ||
      lower === 'if-match' ||
      lower === 'if-unmodified-since'
    )
      continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  out.push('range', `bytes=${from}-${plan.last}`, 'if-range', plan.etag ?? plan.lastModified!);
  return out;
}

/** Why an answer to a resume cannot be spliced in, or undefined when it continues the body exactly. */
export function resumeMismatch(
  plan: ResumePlan,
  from: number,
  status: number,
  headers: ParsedHeaders,
): string | undefined {
  if (status !== 206) return `answered ${status}, not 206`;
  const contentRange = once(headers, 'content-range');
  const etag = once(headers, 'etag');
  const lastModified = once(headers, 'last-modified');
  const m = contentRange === undefined ? null : CONTENT_RANGE.exec(contentRange);
  if (!m) return `Content-Range ${contentRange ?? 'missing'}`;
  const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (first !== from || last !== plan.last || total !== plan.total) {
    return `Content-Range ${contentRange} does not continue bytes ${from}-${plan.last}/${plan.total}`;
  }
  if (plan.etag !== undefined ? etag !== plan.etag : lastModified !== plan.lastModified) {
    return `validator changed (${etag ?? lastModified ?? 'none'})`;
  }
  return undefined;
}
