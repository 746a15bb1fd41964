/**
 * What every certificate Gangway presents is served with, in one place for the listeners'
 * files and the certificates ACME obtains alike: TLS 1.2 and 1.3 only, with Node's default
 * (modern) cipher list, the server's cipher order, and no renegotiation — what current
 * guidance (Mozilla "intermediate") asks of a public edge.
 */
import { createSecureContext, type SecureContext } from 'node:tls';

export const TLS_SETTINGS = { minVersion: 'TLSv1.2', honorCipherOrder: true } as const;

/** A server-side context for a PEM chain and its key. */
export function serverContext(cert: string, key: string): SecureContext {
  return createSecureContext({ ...TLS_SETTINGS, cert, key });
}
