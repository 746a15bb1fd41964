/**
 * Retry-After (RFC 9110 §10.2.3), read the same way by the gateway (an upstream asking to be
 * left alone) and by the doctor (a service telling a person when to come back).
 */

/** Seconds from a Retry-After value (delay-seconds or an HTTP date); undefined when unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  // An HTTP date names a weekday; a bare number with a sign, a fraction or a unit is not one.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.round((at - now) / 1000));
}
