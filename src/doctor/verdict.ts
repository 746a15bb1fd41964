/**
 * From evidence to a verdict: whose side the trouble is on, which hop failed, and advice for
 * that verdict only. Each verdict has its own exit code, so scripts can act on it.
 */
import type { Hop } from './http.js';

/** What the advice may speak of, besides the verdict. */
export interface AdviceFacts {
  /** The id the service gave the failing request, when it gave one. */
  requestId?: string;
}

/** How to report a fault: quoting the request id when there is one, else the time, which the service can look up. */
const reportIt = (f: AdviceFacts): string =>
  f.requestId
    ? 'report it to the service, quoting the request id'
    : 'report it to the service, saying when it happened';

export const VERDICTS = {
  ok: {
    exit: 0,
    advice: (_f: AdviceFacts) => [
      'The service answered normally from here. If a page still fails, it is one page or your browser: try a private window.',
    ],
  },
  transient: {
    exit: 10,
    advice: (f: AdviceFacts) => [
      `It failed, then worked when tried again: a passing fault on the service's ` +
        `side. Retry; if it keeps happening, ${reportIt(f)}.`,
    ],
  },
  'service-side': {
    exit: 20,
    advice: (f: AdviceFacts) => [
      'Your connection, DNS and browser are fine: refreshing, clearing caches, changing DNS or turning off your VPN will not help.',
      `The service has to fix this. Wait, watch its status page, or ${reportIt(f)}.`,
    ],
  },
  'service-maintenance': {
    exit: 21,
    advice: (_f: AdviceFacts) => [
      'The service is down for planned maintenance. Nothing is wrong on your side; come back when it ends.',
    ],
  },
  'service-overloaded': {
    exit: 22,
    advice: (_f: AdviceFacts) => [
      'The service is turning requests away because it is overloaded. Nothing is wrong on your side; try again after the time it asks for.',
    ],
  },
  'your-network': {
    exit: 30,
    advice: (_f: AdviceFacts) => [
      'Your device is not getting through to the internet: check Wi-Fi or cable, restart the router, or try another network (a phone hotspot).',
      'Other sites failing too confirms it; the service itself is probably fine.',
    ],
  },
  'your-dns': {
    exit: 31,
    advice: (_f: AdviceFacts) => [
      "Your DNS resolver cannot find the service's name, while the network otherwise works.",
      "Try another resolver (your router's, or a public one such as 1.1.1.1 or 9.9.9.9), flush the DNS cache, or check for a typo in the address.",
    ],
  },
  'your-proxy-or-vpn': {
    exit: 32,
    advice: (_f: AdviceFacts) => [
      'The proxy or VPN between you and the service is failing. Turn it off and ' +
        'try again, or fix its settings (the http_proxy, https_proxy and all_proxy ' +
        'variables, or the VPN client).',
    ],
  },
  unknown: {
    exit: 40,
    advice: (_f: AdviceFacts) => [
      'The evidence does not point to one side. Try again with --control pointing to a site you trust, and share this report with support.',
    ],
  },
} as const;

/**
 * An answer below 500 means the service is up and spoke; what it said decides the words. A
 * 404 is the service saying the page does not exist, which no private window will change.
 */
export function describeAnswer(
  status: number,
  location: string | undefined,
): { meaning: string | undefined; advice: string[] | undefined } {
  if (status >= 300 && status < 400)
    return {
      meaning: `a redirect${location ? ` to ${location}` : ''}`,
      advice: [
        `The service is up and sends this address elsewhere; browsers follow.${location ? ` If the page still fails, check where it leads: gangway doctor ${location}` : ''}`,
      ],
    };
  if (status === 404 || status === 410)
    return {
      meaning: 'the service is up, but this page does not exist',
      advice: [
        'The service answered: there is nothing at this address. Check the link ' +
          "for a typo, or start from the service's home page; refreshing will not " +
          'change it.',
      ],
    };
  if (status === 401 || status === 403)
    return {
      meaning: 'the service is up, but refuses this page without permission',
      advice: [
        'The service answered and wants you signed in, or with an account that may ' +
          'see this page. Some services also turn away addresses of VPNs or other ' +
          'countries.',
      ],
    };
  if (status >= 400)
    return {
      meaning: 'the service is up, but refused this request',
      advice: [
        'The service answered and refused the request itself, not the connection: ' +
          'check the address, or ask the service what it expects.',
      ],
    };
  return { meaning: undefined, advice: undefined };
}

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
