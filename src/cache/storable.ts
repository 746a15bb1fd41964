/**
 * What the cache keeps, in one place for every way an answer arrives (a client's request, a
 * background revalidation): the shared-cache rules of RFC 9111 (http-cache-semantics), read
 * through targeted cache control, and Gangway's own refusals — partial and not-modified
 * answers, anything with a Set-Cookie (it belongs to one client), `Vary: *`, a declared length
 * over the object limit. And how a stored copy is refreshed by a 304 (RFC 9111 §4.3.4).
 */
import CachePolicy from 'http-cache-semantics';
import type { StoredResponse } from './store.js';
import { varyFieldsOf } from './store.js';
import { policyFields } from './targeted.js';

type Fields = Record<string, string | string[] | undefined>;

/** The policy to store the answer under, or undefined when it must not be stored. */
export function storablePolicy(
  request: CachePolicy.Request,
  status: number,
  fields: Fields,
  maxObjectSize: number,
): CachePolicy | undefined {
  if (status === 206 || status === 304) return undefined;
  if (fields['set-cookie'] !== undefined) return undefined;
  const declared = Number(fields['content-length']);
  if (Number.isFinite(declared) && declared > maxObjectSize) return undefined;
  const policy = new CachePolicy(
    request,
    { status, headers: policyFields(fields) as CachePolicy.Headers },
    { shared: true },
  );
  if (!policy.storable() || varyFieldsOf(fields.vary).includes('*')) return undefined;
  return policy;
}

/** Fields a 304 never replaces in the stored response (they describe the stored body). */
const BODY_FIELDS = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range']);

/**
 * The stored copy's policy after a 304 answered the validators sent from it, with the 304's
 * fields in place of the stored ones; undefined when the 304 names another version (a
 * different validator) and the copy cannot be trusted any more.
 */
export function afterNotModified(
  stored: StoredResponse,
  request: CachePolicy.Request,
  notModified: Fields,
): CachePolicy | undefined {
  const fields = policyFields(notModified) as CachePolicy.Headers;
  const { policy, matches } = stored.policy.revalidatedPolicy(request, { status: 304, headers: fields });
  if (matches) return policy;
  if (fields.etag !== undefined || fields['last-modified'] !== undefined) return undefined;
  // A 304 need not repeat Last-Modified (RFC 9110 §15.4.5), and this one answers the validators
  // taken from this very copy: it is current, with whatever fields the 304 brings.
  const merged: CachePolicy.Headers = { ...stored.policy.toObject().resh };
  for (const k of Object.keys(merged)) if (k in fields && !BODY_FIELDS.has(k)) merged[k] = fields[k];
  return new CachePolicy(request, { status: stored.status, headers: merged }, { shared: true });
}
