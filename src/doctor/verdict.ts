/**
 * From evidence to a verdict: whose side the trouble is on, which hop failed, and advice for
 * that verdict only. Each verdict has its own exit code, so scripts can act on it.
 */
import type { Hop } from './http.js';

export const VERDICTS = {
  ok: {
    exit: 0,
    advice: [
      'The service answered normally from here. If a page still fails, it is one page or your browser: try a private window.',
    ],
  },
  transient: {
    exit: 10,
    advice: [
      "It failed, then worked when tried again: a passing fault on the service's side. Retry; if it keeps happening, report it with the request id.",
    ],
  },
  'service-side': {
    exit: 20,
    advice: [
      'Your connection, DNS and browser are fine: refreshing, clearing caches, changing DNS or turning off your VPN will not help.',
      'The service has to fix this. Wait, watch its status page, or report it with the request id below.',
    ],
  },
  'service-maintenance': {
    exit: 21,
    advice: ['The service is down for planned maintenance. Nothing is wrong on your side; come back when it ends.'],
  },
  'service-overloaded': {
    exit: 22,
    advice: [
      'The service is turning requests away because it is overloaded. Nothing is wrong on your side; try again after the time it asks for.',
    ],
  },
  'your-network': {
    exit: 30,
    advice: [
      'Your device is not getting through to the internet: check Wi-Fi or cable, restart the router, or try another network (a phone hotspot).',
      'Other sites failing too confirms it; the service itself is probably fine.',
    ],
  },
  'your-dns': {
    exit: 31,
    advice: [
      "Your DNS resolver cannot find the service's name, while the network otherwise works.",
      "Try another resolver (your router's, or a public one such as 1.1.1.1 or 9.9.9.9), flush the DNS cache, or check for a typo in the address.",
    ],
  },
  'your-proxy-or-vpn': {
    exit: 32,
    advice: [
      'The proxy or VPN between you and the service is failing. Turn it off and try again, or fix its settings (the HTTP_PROXY / HTTPS_PROXY variables, or the VPN client).',
    ],
  },
  unknown: {
    exit: 40,
    advice: [
      'The evidence does not point to one side. Try again with --control pointing to a site you trust, and share this report with support.',
    ],
  },
} as const;

export type Verdict = keyof typeof VERDICTS;

/** The hop that failed: the one nearest the origin that reports an error or an error status. */
export function failedHop(hops: Hop[]): Hop | undefined {
  return hops.find((h) => h.error !== undefined) ?? hops.find((h) => h.status !== undefined && h.status >= 500);
}

/** Maintenance answers say so: Gangway's problem type, or a Proxy-Status detail. */
export function isMaintenance(hops: Hop[], problemType: string | undefined): boolean {
  return problemType?.endsWith(':maintenance') === true || hops.some((h) => /maintenance/i.test(h.details ?? ''));
}

export function isOverload(status: number | undefined, hops: Hop[]): boolean {
  return (
    status === 429 || hops.some((h) => h.error === 'connection_limit_reached' || h.error === 'http_request_denied')
  );
}
