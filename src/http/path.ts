/**
 * The path policy: one normal form of a request's path, computed before routing, so that a
 * route's prefix means what it says whatever the origin behind it does with dots, encoded
 * characters, backslashes or path parameters. The normal form is what is routed and what is
 * forwarded.
 *
 *   - Percent-encodings are checked (two hex digits) and normalised (RFC 3986 §6.2.2): an
 *     encoded unreserved character is decoded ("%7E" → "~", "%2e" → "."), other encodings get
 *     upper-case hex ("%2f" → "%2F").
 *   - Empty segments are merged ("//" → "/"), as nginx does, because origins disagree on them.
 *   - Dot segments are removed (RFC 3986 §5.2.4): "/a/./b/../c" → "/a/c". A path that climbs
 *     above the root is refused.
 *   - Refused (400) as ambiguous, because some origin would read them as separators or dot
 *     segments that the router did not see: a raw or encoded backslash ("\", "%5C"), an encoded
 *     NUL or control character, a dot segment hidden behind an encoded slash ("..%2F", "%2F.."),
 *     and a dot segment with path parameters ("..;x", ".;") that servlet containers strip.
 *   - An encoded slash elsewhere ("a%2Fb") is data and stays encoded; characters outside
 *     RFC 3986 are refused.
 *
 * Operators may only make the policy stricter: refuse any dot segment instead of removing it,
 * and refuse any encoded slash.
 */

export interface PathPolicy {
  /** Refuse a path with any dot segment (even one that would normalise harmlessly). */
  rejectDotSegments: boolean;
  /** Refuse any encoded slash ("%2F"). */
  rejectEncodedSlash: boolean;
}

export const DEFAULT_PATH_POLICY: PathPolicy = { rejectDotSegments: false, rejectEncodedSlash: false };

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: string };

/** pchar minus "%" (checked apart) and "/" (the separator): unreserved, sub-delims, ":" and "@". */
const PCHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@")
  PCHAR[c.charCodeAt(0)] = 1;
/** PCHAR without ";" (path parameters can hide dot segments): the characters of a path already in normal form. */
const PLAIN = PCHAR.slice();
PLAIN[0x3b] = 0;
const HEX = '0123456789ABCDEF';

/**
 * The normal form of `path` (the part of a request target before "?"), or why it is refused.
 * A path already in normal form comes back as the same string, and quickly.
 */
export function normalizePath(path: string, policy: PathPolicy = DEFAULT_PATH_POLICY): NormalizedPath {
  if (path.charCodeAt(0) !== 0x2f /* / */) return refuse('the path does not start with "/"');
  if (isNormal(path)) return { ok: true, path };
  // Pass 1: check every character, normalise percent-encodings, split into segments.
  const segments: string[] = [];
  let segment = '';
  let dotted = false;
  for (let i = 1; i <= path.length; i++) {
    const c = path[i];
    if (c === undefined || c === '/') {
      if (segment !== '' || c === undefined) segments.push(segment);
      segment = '';
      continue;
    }
    if (c === '%') {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return refuse('a "%" not followed by two hex digits');
      const code = hi * 16 + lo;
      i += 2;
      if (code < 0x20 || code === 0x7f) return refuse('an encoded control character');
      if (code === 0x5c) return refuse('an encoded backslash');
      const ch = String.fromCharCode(code);
      if (isUnreserved(code)) {
        segment += ch;
        if (ch === '.') dotted = true;
      } else {
        if (code === 0x2f && policy.rejectEncodedSlash) return refuse('an encoded slash');
        segment += `%${HEX[hi]}${HEX[lo]}`;
      }
      continue;
    }
    if (c === '\\') return refuse('a backslash');
    if (PCHAR[c.charCodeAt(0)] !== 1) return refuse(`the character ${JSON.stringify(c)}`);
    if (c === '.') dotted = true;
    segment += c;
  }
  // A trailing slash survives as an empty last segment; a path of only "/" is one empty segment.
  if (!dotted) return { ok: true, path: joined(segments, path) };
  // Pass 2: dot segments, and the disguised ones some origin would read as dot segments.
  const out: string[] = [];
  for (let k = 0; k < segments.length; k++) {
    const s = segments[k]!;
    const last = k === segments.length - 1;
    if (s === '.' || s === '..') {
      if (policy.rejectDotSegments) return refuse('a dot segment');
      if (s === '..') {
        if (out.length === 0) return refuse('a path that climbs above the root');
        out.pop();
      }
      // "/a/b/.." and "/a/." name a directory: keep the trailing slash.
      if (last) out.push('');
      continue;
    }
    if (hidesDotSegment(s)) return refuse(`an ambiguous segment ${JSON.stringify(s)}`);
    out.push(s);
  }
  if (out.length === 0) out.push('');
  return { ok: true, path: `/${out.join('/')}` };
}

/**
 * The common case, checked without building anything: plain characters only (no "%", ";" or
 * "\\"), no empty segment, no dot segment. Anything else takes the full walk.
 */
function isNormal(path: string): boolean {
  let afterSlash = true;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x2f /* / */) {
      if (afterSlash) return false;
      afterSlash = true;
      continue;
    }
    if (c >= 128 || PLAIN[c] !== 1) return false;
    if (c === 0x2e /* . */ && afterSlash) {
      const next = path.charCodeAt(i + 1);
      if (Number.isNaN(next) || next === 0x2f) return false;
      if (next === 0x2e) {
        const after = path.charCodeAt(i + 2);
        if (Number.isNaN(after) || after === 0x2f) return false;
      }
    }
    afterSlash = false;
  }
  return true;
}

/**
 * Segments some origin would read as "." or "..": around an encoded slash, or before path
 * parameters (";" raw or encoded: an origin may decode before it strips them).
 */
function hidesDotSegment(s: string): boolean {
  if (!s.includes('.')) return false;
  for (const part of s.split('%2F')) {
    const bare = part.split(PARAMETERS)[0];
    if (bare === '.' || bare === '..') return true;
  }
  return false;
}

const PARAMETERS = /;|%3B/;

/** The value of a hex digit's character code, or -1 (also for the NaN past the end). */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

/** The path from its segments: the original string when nothing changed. */
function joined(segments: string[], original: string): string {
  const path = `/${segments.join('/')}`;
  return path === original ? original : path;
}

function refuse(reason: string): NormalizedPath {
  return { ok: false, reason };
}
