/**
 * The transport rungs: a TCP connection to each address of the service (IPv4 and IPv6
 * alike) with its time, then for https the TLS handshake and what the certificate says
 * (who issued it, for which names, how long it is still valid) — and, when a handshake fails
 * before any certificate, whether the server speaks plain HTTP instead. Behind an HTTP proxy
 * the handshake runs inside a CONNECT tunnel, as a browser's would: the certificate seen is
 * the one the user's programs see, which is how an intercepting proxy shows itself.
 */
import { isIP, isIPv6, type Socket, connect as tcpConnect } from 'node:net';
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
  /** SHA-256 fingerprint of the certificate: tells one seen through a proxy from the service's own. */
  fingerprint?: string;
  error?: string;
}

export function tlsHandshake(
  address: string,
  port: number,
  servername: string,
  timeoutMs: number,
  /** A connection already made (a proxy's CONNECT tunnel) to shake hands over. */
  socket?: Socket,
): Promise<TlsResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    // SNI carries names only (RFC 6066); an address is checked against the certificate all the same.
    const sni = isIP(servername) === 0 ? { servername } : {};
    // Offer what a browser offers, to learn whether the server speaks HTTP/2.
    const to = socket === undefined ? { host: address, port } : { socket };
    const s = tlsConnect({ ...to, ...sni, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] });
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
        fingerprint: cert?.fingerprint256,
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

export interface TunnelResult {
  ok: boolean;
  ms: number;
  /** The open tunnel to the service, when the proxy made one; the caller closes it. */
  socket?: Socket;
  /** The status the proxy answered the CONNECT with. */
  status?: number;
  error?: string;
}

/** Longest CONNECT answer head read; a proxy's is a few hundred bytes. */
const TUNNEL_HEAD_BYTES = 16 * 1024;

/**
 * A CONNECT tunnel to host:port through an HTTP proxy (RFC 9110 §9.3.6), with the proxy's
 * credentials when its URL carries them. An https:// proxy is itself reached over TLS.
 */
export function tunnelThrough(proxy: URL, host: string, port: number, timeoutMs: number): Promise<TunnelResult> {
  const started = performance.now();
  const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
  const secure = proxy.protocol === 'https:';
  const proxyPort = Number(proxy.port || (secure ? 443 : 80));
  return new Promise((resolve) => {
    const s: Socket = secure
      ? tlsConnect({ host: proxyHost, port: proxyPort, servername: isIP(proxyHost) ? undefined : proxyHost })
      : tcpConnect({ host: proxyHost, port: proxyPort });
    let head = Buffer.alloc(0);
    let settled = false;
    const done = (r: Omit<TunnelResult, 'ms'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.removeAllListeners('data');
      if (r.socket === undefined) s.destroy();
      resolve({ ...r, ms: performance.now() - started });
    };
    const timer = setTimeout(() => done({ ok: false, error: 'ETIMEDOUT' }), timeoutMs);
    const authority = `${isIPv6(host) ? `[${host}]` : host}:${port}`;
    const credentials = proxy.username === '' ? '' : `Proxy-Authorization: Basic ${basicCredentials(proxy)}\r\n`;
    s.once(secure ? 'secureConnect' : 'connect', () =>
      s.write(
        `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}User-Agent: gangway-doctor\r\n\r\n`,
      ),
    );
    s.on('data', (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > TUNNEL_HEAD_BYTES) done({ ok: false, error: 'the proxy answered no valid CONNECT head' });
        return;
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1]);
      if (!(status >= 200 && status < 300)) {
        done({ ok: false, status: status || undefined, error: status ? `the proxy answered ${status}` : 'not HTTP' });
        return;
      }
      // Bytes after the head already belong to the tunnel: none are expected before the ClientHello.
      if (head.length > end + 4) s.unshift(head.subarray(end + 4));
      done({ ok: true, status, socket: s });
    });
    s.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message }));
    s.once('close', () => done({ ok: false, error: 'the proxy closed the connection' }));
  });
}

function basicCredentials(proxy: URL): string {
  return Buffer.from(`${userinfo(proxy.username)}:${userinfo(proxy.password)}`).toString('base64');
}

/**
 * A proxy URL's user or password as typed: percent-decoded, or as it stands when it is not
 * valid percent-encoding ("p%zz"), which would otherwise throw inside the tunnel's promise.
 */
function userinfo(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
