/**
 * The transport rungs: a TCP connection to each address of the service (IPv4 and IPv6
 * alike) with its time, then for https the TLS handshake and what the certificate says
 * (who issued it, for which names, how long it is still valid) — and, when a handshake fails
 * before any certificate, whether the server speaks plain HTTP instead.
 */
import { isIP, isIPv6, connect as tcpConnect } from 'node:net';
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
  /** The application protocol the server chose by ALPN ("h2", "http/1.1"); undefined when it chose none. */
  alpn?: string;
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
    // SNI carries names only (RFC 6066); an address is checked against the certificate all the same.
    const sni = isIP(servername) === 0 ? { servername } : {};
    // Offer what a browser offers, to learn whether the server speaks HTTP/2.
    const s = tlsConnect({ host: address, port, ...sni, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] });
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
        alpn: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : undefined,
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

/**
 * Whether the server on address:port answers a plain HTTP request. Asked when a TLS handshake
 * fails before any certificate: a plain HTTP server reads the ClientHello as a bad request and
 * answers in clear text (OpenSSL then says "wrong version number" or "packet length too long"),
 * and no certificate is to blame for that.
 */
export function answersPlainHttp(
  address: string,
  port: number,
  authority: string,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: address, port, family: isIPv6(address) ? 6 : 4 });
    let head = '';
    const done = (plain: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(plain);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () =>
      s.write(`HEAD / HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: gangway-doctor\r\nConnection: close\r\n\r\n`),
    );
    s.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.length >= 5) done(head.startsWith('HTTP/'));
    });
    s.once('end', () => done(head.startsWith('HTTP/')));
    s.once('error', () => done(false));
  });
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
