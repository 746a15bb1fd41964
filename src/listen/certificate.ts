/**
 * What an operator needs to know about a listener's certificate before it bites: the names it
 * covers and when it expires. Read once per configuration (the runtime keeps it), shown in
 * /api/status and as a metric, and warned about in the log when fewer than 14 days remain.
 */
import { X509Certificate } from 'node:crypto';

/** Fewer days than this left: the log and the status say so. */
export const EXPIRY_WARNING_DAYS = 14;

export interface CertificateFacts {
  /** The listener's address, as configured. */
  listener: string;
  /** DNS names and IP addresses it covers (the subject's CN when it names none). */
  names: string[];
  notAfter: Date;
}

export function certificateFacts(listener: string, pem: string): CertificateFacts {
  const cert = new X509Certificate(pem);
  const names = (cert.subjectAltName ?? '')
    .split(',')
    .map((n) => n.trim().replace(/^(DNS|IP Address):/, ''))
    .filter((n) => n !== '');
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
    if (cn !== undefined) names.push(cn);
  }
  return { listener, names, notAfter: new Date(cert.validTo) };
}

/** Whole days left (negative once expired). */
export function daysLeft(facts: CertificateFacts, now = Date.now()): number {
  return Math.floor((facts.notAfter.getTime() - now) / 86_400_000);
}
