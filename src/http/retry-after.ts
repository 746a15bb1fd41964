/**
 * Retry-After (RFC 9110 §10.2.3), read the same way by the gateway (an upstream asking to be
 * left alone) and by the doctor (a service telling a person when to come back).
 */

/** No answer means "come back in more than a year": longer values are read as a year. */
const MAX_SECONDS = 365 * 86_400;

/** Seconds from a Retry-After value (delay-seconds or an HTTP date); undefined when unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed), MAX_SECONDS);
  // An HTTP date names a weekday; a bare number with a sign, a fraction or a unit is not one.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  // IMF-fixdate and RFC 850 dates say GMT; asctime dates do not, and are GMT all the same (§5.6.7).
  const at = Date.parse(/\b(GMT|UTC)$/i.test(trimmed) ? trimmed : `${trimmed} GMT`);
  return Number.isNaN(at) ? undefined : Math.min(MAX_SECONDS, Math.max(0, Math.round((at - now) / 1000)));
}
