/**
 * Targeted cache control (RFC 9213): an origin may say one thing to browsers in Cache-Control
 * and another to the caches in front of it in CDN-Cache-Control ("browsers: no-cache; the
 * gateway: keep it a minute"). The cache's policy is built from CDN-Cache-Control when it has
 * a value, ignoring Cache-Control and Expires (§2.1); clients still get the origin's own
 * Cache-Control and Expires, kept aside under names no real field can have, and the targeted
 * field itself is passed on untouched.
 */
type Fields = Record<string, string | string[] | undefined>;

const TARGETED = 'cdn-cache-control';
/** Field names cannot contain NUL: these keys never collide with an upstream's. */
const KEPT_CACHE_CONTROL = '\u0000cache-control';
const KEPT_EXPIRES = '\u0000expires';

/** The fields the cache's freshness rules read. */
export function policyFields(fields: Fields): Fields {
  const targeted = fields[TARGETED];
  const value = Array.isArray(targeted) ? targeted.join(', ') : targeted;
  if (value === undefined || value.trim() === '') return fields;
  const out: Fields = { ...fields, 'cache-control': value };
  delete out.expires;
  if (fields['cache-control'] !== undefined) out[KEPT_CACHE_CONTROL] = fields['cache-control'];
  if (fields.expires !== undefined) out[KEPT_EXPIRES] = fields.expires;
  return out;
}

/** The fields a client gets from a stored response's: the origin's own Cache-Control and Expires back. */
export function clientFields(fields: Fields): Fields {
  if (fields[TARGETED] === undefined) return fields;
  const out: Fields = { ...fields };
  delete out[KEPT_CACHE_CONTROL];
  delete out[KEPT_EXPIRES];
  out['cache-control'] = fields[KEPT_CACHE_CONTROL];
  out.expires = fields[KEPT_EXPIRES];
  return out;
}
