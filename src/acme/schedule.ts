/**
 * When to act on a certificate: renew when a third of its lifetime remains (90-day
 * certificates at 30 days left, 6-day ones at 2), or at a moment the CA suggests through ACME
 * Renewal Information — a random point in its window, so that a fleet of clients does not
 * arrive at once (RFC 9773 §4.2); and, while the CA fails, how long to wait before trying
 * again: exponential backoff with jitter, bounded, never below what the CA's Retry-After asked.
 */

/** The moment a third of the lifetime remains. */
export function renewalAtThird(notBefore: Date, notAfter: Date): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime / 3);
}

/** A uniformly random moment in the CA's suggested window (`random` in [0, 1)). */
export function renewalInWindow(start: Date, end: Date, random = Math.random()): Date {
  return new Date(start.getTime() + random * (end.getTime() - start.getTime()));
}

/**
 * The wait before attempt `failures + 1`: `initial` doubled per failure up to `max`, then
 * drawn from its upper half ("equal jitter": never a burst at zero, never synchronised).
 */
export function retryDelay(failures: number, initial: number, max: number, random = Math.random()): number {
  const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(ceiling / 2 + (random * ceiling) / 2);
}

/**
 * setTimeout holds at most 2^31-1 ms (~24.8 days); a renewal two months away is reached by
 * looking again at most this often (which also picks up a changed ARI window).
 */
export const LONGEST_SLEEP_MS = 6 * 3_600_000;
