/**
 * The transport rungs: a TCP connection to each address of the service (IPv4 and IPv6
 * alike) with its time, then for https the TLS handshake and what the certificate says
 * (who issued it, for which names, how long it is still valid).
 */
import { isIPv6, connect as tcpConnect } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from 'node:tls';

export interface ConnectResult {
  address: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export function connectTo(address: string, port: number, timeoutMs: number): Promise<ConnectResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const s = tcpConnect({ host: address, port, family: isIPv6(address) ? 6 : 4 });
    const done = (ok: boolean, error?: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ address, ok, ms: performance.now() - started, error });
    };
    const timer = setTimeout(() => done(false, 'ETIMEDOUT'), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

export interface TlsResult {
  ok: boolean;
  ms: number;
  protocol?: string;
  subject?: string;
  issuer?: string;
  validTo?: string;
  daysLeft?: number;
  /** The certificate does not name the host. */
  nameMismatch?: string;
  error?: string;
}

export function tlsHandshake(address: string, port: number, servername: string, timeoutMs: number): Promise<TlsResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const s = tlsConnect({ host: address, port, servername, rejectUnauthorized: false });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, ms: performance.now() - started, error: 'ETIMEDOUT' });
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = s.getPeerCertificate() as PeerCertificate;
      const authError = s.authorizationError ? String(s.authorizationError) : undefined;
      const mismatch =
        cert && Object.keys(cert).length > 0 ? checkServerIdentity(servername, cert)?.message : 'no certificate';
      const validTo = cert?.valid_to;
      const daysLeft = validTo ? Math.floor((Date.parse(validTo) - Date.now()) / 86_400_000) : undefined;
      resolve({
        ok: authError === undefined && mismatch === undefined,
        ms: performance.now() - started,
        protocol: s.getProtocol() ?? undefined,
        subject: first(cert?.subject?.CN),
        issuer: first(cert?.issuer?.O ?? cert?.issuer?.CN),
        validTo,
        daysLeft,
        nameMismatch: mismatch,
        error: authError,
      });
      s.destroy();
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, ms: performance.now() - started, error: e.code ?? e.message });
    });
  });
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
