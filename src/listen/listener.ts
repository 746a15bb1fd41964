/**
 * The client-facing listeners: Node's server with the configured limits and timeouts —
 * HTTP/1.1 in cleartext, or TLS speaking HTTP/2 and HTTP/1.1 on the same port (ALPN) —
 * requests and upgrades handed to the runtime in force, and malformed or oversized requests
 * answered with the right 4xx (and Proxy-Status) instead of a silent close.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer as createHttp2Server, createSecureServer, type ServerHttp2Session } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { StatusSources } from '../admin/status-model.js';
import { serveStatusPage } from '../admin/status-page.js';
import type { GatewayConfig } from '../config/schema.js';
import { buildReply } from '../explain/reply.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { ACME_TLS_PROTOCOL, type ChallengeAnswers } from '../acme/challenges.js';
import { parseAuthority } from '../http/host.js';
import { certificateFacts } from './certificate.js';
import { TLS_SETTINGS } from './tls-settings.js';
import { requestIdFrom } from '../observe/request-id.js';
import { handleRequest, handleUpgrade } from '../proxy/lifecycle.js';
import { sendReply } from '../proxy/local-reply.js';
import type { Runtime } from '../runtime.js';
import type { ClientRequest, ClientResponse } from './client.js';
import { Http1Response } from './http1.js';
import { Http2Response } from './http2.js';
import { guardSession, http2Options, type SentAwayReason } from './http2-session.js';
import { SocketResponse } from './socket-response.js';

/** What a listener's server offers the gateway, whichever protocols it speaks. */
export interface ListenerServer extends NetServer {
  closeIdleConnections(): void;
  /** HTTP/1.1 servers only. */
  closeAllConnections?(): void;
}

export interface Listener {
  server: ListenerServer;
  /** Upgraded connections (WebSocket tunnels), which the HTTP server no longer tracks. */
  tunnels: Set<Duplex>;
  /** HTTP/2 sessions, told to go away (GOAWAY) when the gateway drains. */
  sessions: Set<{ close(): void; destroy(): void }>;
  /**
   * Every connection of an HTTP/2-capable listener, cut when the drain times out (node:http2
   * has no closeAllConnections).
   */
  sockets: Set<Duplex>;
  /** This listener's certificate, when it speaks HTTPS: a reload swaps it for new handshakes. */
  setCertificate: ((certificate: TlsCertificate) => void) | undefined;
}

/**
 * A listener's certificate chain and private key, PEM; `sni`: more, chosen by the name a client
 * asks for. No default chain (an ACME listener before its first certificate): handshakes that
 * nothing else answers fail.
 */
export interface TlsCertificate {
  cert: string | undefined;
  key: string | undefined;
  sni?: ReadonlyArray<{ cert: string; key: string }>;
}

/** Certificates obtained by ACME, by the name a client asks for. */
export interface AcmeContexts {
  /** null: a name ACME is still getting a certificate for; undefined: not one of its names. */
  contextFor(name: string): SecureContext | null | undefined;
}

/** What distinguishes one listener from another. */
export interface ListenerOptions {
  /** Serve HTTPS (and HTTP/2) with this certificate. */
  tls?: TlsCertificate;
  /** Strict-Transport-Security max-age (seconds) on every answer. */
  hsts?: number;
  /** Speak HTTP/2 with prior knowledge in cleartext. */
  h2c?: boolean;
  /** Answer every request with 308 to HTTPS on the port this tells (a cleartext listener beside an HTTPS one). */
  redirectToHttpsPort?: () => number;
  /** Pending ACME challenges: HTTP-01 answered before routing, TLS-ALPN-01 when `acme` is given. */
  challenges?: ChallengeAnswers;
  /** An HTTPS listener with ACME names: their certificates by SNI, and TLS-ALPN-01 answered. */
  acme?: AcmeContexts;
}

export function createListener(
  config: GatewayConfig,
  current: () => Runtime,
  status: () => StatusSources,
  { tls, hsts, h2c, redirectToHttpsPort, challenges, acme }: ListenerOptions = {},
): Listener {
  const s = config.server;
  const requestTimeout = s.requestTimeout;
  const options: ServerOptions<typeof IncomingMessage, typeof Http1Response> = {
    ServerResponse: Http1Response,
    maxHeaderSize: s.maxHeaderSize,
    headersTimeout: requestTimeout > 0 ? Math.min(s.headerTimeout, requestTimeout) : s.headerTimeout,
    requestTimeout,
    keepAliveTimeout: s.keepAliveTimeout,
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(s.headerTimeout / 4))),
    requireHostHeader: true,
  };
  const sessions = new Set<{ close(): void; destroy(): void }>();
  let server: ListenerServer;
  let setCertificate: Listener['setCertificate'];
  const sockets = new Set<Duplex>();
  const sentAway = (reason: SentAwayReason): void => current().metrics.http2SentAway.with(reason).inc();
  const trackSessions = (h2: NetServer): void => {
    h2.on('session', (session: ServerHttp2Session) => {
      guardSession(session, s.http2.idleTimeout, sentAway);
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    h2.on('connection', (socket: Duplex) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
  };
  if (h2c === true) {
    const plain = createHttp2Server({
      Http2ServerResponse: Http2Response,
      ...http2Options(s),
    } as Parameters<typeof createHttp2Server>[0]);
    trackSessions(plain);
    server = Object.assign(plain, { closeIdleConnections() {} }) as unknown as ListenerServer;
  } else if (tls === undefined) {
    server = createServer(options) as HttpServer as unknown as ListenerServer;
  } else {
    // One port, both protocols: ALPN picks h2 or http/1.1; HTTP/1.1 keeps its own limits.
    let byName = sniTable(tls);
    const secure = createSecureServer({
      ...options,
      ...TLS_SETTINGS,
      cert: tls.cert,
      key: tls.key,
      // Node calls this with the connection's TLSSocket as `this`: under TLS 1.3 after the ALPN
      // choice (so an acme-tls/1 connection is known), under TLS 1.2 before it.
      SNICallback(this: TLSSocket, servername: string, done: (err: Error | null, ctx?: SecureContext) => void) {
        if (validating.has(this)) {
          const proof = challenges?.tlsAlpnContext(servername);
          if (proof !== undefined) done(null, proof);
          else if (challenges?.lookup === undefined) done(noChallenge(servername));
          // Offered by another process sharing the store, and not heard of here (yet).
          else
            void challenges.findTlsAlpn(servername).then(
              (found) => done(found ? null : noChallenge(servername), found),
              // A stored answer that cannot be made into a certificate is no answer.
              () => done(noChallenge(servername)),
            );
          return;
        }
        const automatic = acme?.contextFor(servername);
        const chosen = automatic ?? pickContext(byName, servername);
        if (chosen !== undefined || automatic !== null) {
          done(null, chosen);
          return;
        }
        // A listed name without its certificate yet fails the handshake rather than presenting
        // another name's certificate (a browser would show a mismatch warning people learn to
        // click through) — except to a TLS 1.2 validation, which no one else could be now.
        const proof = challenges?.tlsAlpnContext(servername);
        if (proof !== undefined) done(null, proof);
        else done(new Error(`no certificate for ${servername} yet`));
      },
      allowHTTP1: true,
      Http1ServerResponse: Http1Response,
      Http2ServerResponse: Http2Response,
      ...http2Options(s),
    } as Parameters<typeof createSecureServer>[0]);
    if (acme !== undefined && challenges !== undefined) {
      // TLS-ALPN-01 (RFC 8737): the CA offers only acme-tls/1; node:http2 offers h2 and
      // http/1.1 by a fixed list, which a callback choosing per client hello replaces.
      const tlsServer = secure as unknown as { ALPNProtocols: unknown; ALPNCallback: unknown };
      tlsServer.ALPNProtocols = undefined;
      tlsServer.ALPNCallback = chooseProtocol;
      // The CA reads the certificate and hangs up; nothing is served on acme-tls/1.
      secure.on('unknownProtocol', (socket: Duplex) => socket.destroy());
    }
    trackSessions(secure);
    server = secure as unknown as ListenerServer;
    setCertificate = (certificate: TlsCertificate): void => {
      // No default chain is a state of its own, not "keep the last one": after a reload whose
      // first ACME name has no certificate yet, the one before may be a name no longer listed.
      secure.setSecureContext({ ...TLS_SETTINGS, cert: certificate.cert, key: certificate.key });
      byName = sniTable(certificate);
    };
  }
  const tunnels = new Set<Duplex>();
  const scheme = tls === undefined ? 'http' : 'https';

  const hstsValue = hsts === undefined ? undefined : `max-age=${hsts}`;
  server.on('request', (req: IncomingMessage, res: Http1Response | Http2Response) => {
    // The CA's HTTP-01 look comes first: before the redirect, the status page and routing.
    const answered = challenges?.serveHttp(req, res as Http1Response) ?? false;
    if (answered === true) return;
    if (answered === false) serve(req, res);
    // A token not known here, looked for in the shared store (that path only).
    else
      void answered.then(
        (done) => done || serve(req, res),
        () => serve(req, res),
      );
  });
  const serve = (req: IncomingMessage, res: Http1Response | Http2Response): void => {
    if (redirectToHttpsPort !== undefined) return redirectToHttps(req, res as Http1Response, redirectToHttpsPort());
    if (hstsValue !== undefined) res.hsts = hstsValue;
    if (res instanceof Http2Response) res.sendTimeoutMs = s.http2.sendTimeout;
    const runtime = current();
    // The public status page, when configured, is the gateway's own page, not a route's (the
    // HTTP/2 compatibility response serves it with the same calls as node:http's).
    const statusPath = runtime.config.status.path;
    if (
      statusPath !== undefined &&
      req.url?.startsWith(statusPath) === true &&
      serveStatusPage(status, req, res as Http1Response, statusPath, true)
    )
      return;
    handleRequest(runtime, req as ClientRequest, res as ClientResponse, {
      remoteAddress: req.socket.remoteAddress,
      authority: authorityOf(req),
      expectsContinue: false,
      scheme,
    });
  };
  server.on('checkContinue', (req: IncomingMessage, res: Http1Response | Http2Response) => {
    if (hstsValue !== undefined) res.hsts = hstsValue;
    if (res instanceof Http2Response) res.sendTimeoutMs = s.http2.sendTimeout;
    handleRequest(current(), req as ClientRequest, res as ClientResponse, {
      remoteAddress: req.socket.remoteAddress,
      authority: authorityOf(req),
      expectsContinue: true,
      scheme,
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    handleUpgrade(current(), req, new SocketResponse(socket), head, {
      remoteAddress: req.socket.remoteAddress,
      authority: req.headers.host,
      expectsContinue: false,
      scheme,
    });
  });
  // A gateway is not a forward proxy: CONNECT gets a clear refusal rather than a silent close.
  // Over HTTP/2 the compatibility layer hands over a response, not a socket: an extended
  // CONNECT (RFC 8441) is a WebSocket asked for, the rest is refused on that stream.
  server.on('connect', (req: IncomingMessage, socket: Duplex | Http2Response) => {
    if (socket instanceof Http2Response) {
      if (hstsValue !== undefined) socket.hsts = hstsValue;
      socket.sendTimeoutMs = s.http2.sendTimeout;
      return connectOverHttp2(current(), req, socket, scheme);
    }
    sendReply(new SocketResponse(socket), forwardProxyRefusal(current()), undefined);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const runtime = current();
    const kind = clientErrorKind(err, runtime.limits.maxUriLength);
    if (kind === undefined || !socket.writable || (socket as { bytesWritten?: number }).bytesWritten) {
      socket.destroy();
      return;
    }
    const replies = runtime.replies;
    const reply = buildReply({
      kind,
      proxyName: replies.proxyName,
      requestId: requestIdFrom(undefined),
      revealDetails: false,
      page: replies.page,
    });
    sendReply(new SocketResponse(socket), reply, undefined);
    runtime.logger.info({ failure: kind, cause: err.code ?? err.message, status: reply.status }, 'client error');
  });
  return { server, tunnels, sessions, sockets, setCertificate };
}

const NO_HEAD = Buffer.alloc(0);

/**
 * An HTTP/2 CONNECT. With `:protocol` (RFC 8441 §4) it is the HTTP/2 form of an HTTP/1.1
 * `GET` with `Upgrade:` (§5), and goes through the same preflight and tunnel as one: the
 * request is presented to the proxy as that GET. Without it, it asks for a forward proxy.
 */
function connectOverHttp2(runtime: Runtime, req: IncomingMessage, res: Http2Response, scheme: 'http' | 'https'): void {
  const protocol = req.headers[':protocol'];
  const arrival = {
    remoteAddress: req.socket.remoteAddress,
    authority: authorityOf(req),
    expectsContinue: false,
    scheme,
  };
  if (typeof protocol !== 'string') return sendReply(res, forwardProxyRefusal(runtime), undefined);
  req.method = 'GET';
  req.headers.upgrade = protocol;
  handleUpgrade(runtime, req as ClientRequest, res, NO_HEAD, arrival);
}

function forwardProxyRefusal(runtime: Runtime) {
  const replies = runtime.replies;
  return buildReply({
    kind: 'bad_request',
    proxyName: replies.proxyName,
    requestId: requestIdFrom(undefined),
    revealDetails: false,
    page: replies.page,
    details: 'CONNECT is not served: this is a gateway, not a forward proxy',
  });
}

function noChallenge(servername: string): Error {
  return new Error(`no TLS-ALPN-01 challenge is pending for ${servername}`);
}

/** Connections that chose acme-tls/1: their handshake presents a challenge certificate, nothing else. */
const validating = new WeakSet<TLSSocket>();

/**
 * The ALPN choice on an HTTPS listener with ACME names: acme-tls/1 for the CA's TLS-ALPN-01
 * validation (remembered for the certificate choice that follows), else h2, else http/1.1 —
 * the server's preference, as the fixed list gave; no common protocol is a fatal alert (RFC 7301 §3.2).
 */
function chooseProtocol(
  this: TLSSocket,
  { protocols }: { servername: string; protocols: string[] },
): string | undefined {
  if (protocols.includes(ACME_TLS_PROTOCOL)) {
    validating.add(this);
    return ACME_TLS_PROTOCOL;
  }
  if (protocols.includes('h2')) return 'h2';
  return protocols.includes('http/1.1') ? 'http/1.1' : undefined;
}

/** The SNI certificates by the names they cover (lower case; "*.example.com" for a wildcard). */
function sniTable(tls: TlsCertificate): Map<string, SecureContext> {
  const table = new Map<string, SecureContext>();
  for (const pair of tls.sni ?? []) {
    const context = createSecureContext({ ...TLS_SETTINGS, cert: pair.cert, key: pair.key });
    for (const name of certificateFacts('', pair.cert).names) table.set(name.toLowerCase(), context);
  }
  return table;
}

/** The certificate for a name: an exact one, else a wildcard one label deep (RFC 6125 §6.4.3), else the default. */
function pickContext(table: ReadonlyMap<string, SecureContext>, servername: string): SecureContext | undefined {
  if (table.size === 0) return undefined;
  const name = servername.toLowerCase();
  const exact = table.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf('.');
  return dot > 0 ? table.get(`*${name.slice(dot)}`) : undefined;
}

/**
 * A cleartext listener in front of an HTTPS one: the same URL over HTTPS, 308 so a method and
 * body are kept; the ACME HTTP-01 challenge path is the one thing that must stay on plain HTTP.
 */
function redirectToHttps(req: IncomingMessage, res: Http1Response, port: number): void {
  const authority = parseAuthority(req.headers.host ?? '');
  const url = req.url ?? '/';
  if (!authority.ok || !url.startsWith('/')) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end('400 Bad Request: a request to this address needs a valid Host and path\n');
    return;
  }
  if (url.startsWith('/.well-known/acme-challenge/')) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end('404 Not Found: no ACME challenge is pending\n');
    return;
  }
  const location = `https://${authority.host}${port === 443 ? '' : `:${port}`}${url}`;
  res.writeHead(308, { location, 'content-length': '0' });
  res.end();
}

/** Host over HTTP/1.1; over HTTP/2 the :authority pseudo-header (or a Host field in its place, RFC 9113 §8.3.1). */
function authorityOf(req: IncomingMessage): string | undefined {
  return (req as { authority?: string }).authority ?? req.headers.host;
}

const REQUEST_LINE_START = /^[A-Z]{3,10} \S/;

function clientErrorKind(
  err: NodeJS.ErrnoException & { rawPacket?: Buffer },
  maxUriLength: number,
): FailureKindName | undefined {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
    // The client closed the connection part way through a request: there is no one to answer.
    case 'HPE_INVALID_EOF_STATE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW': {
      // Node counts the request line into the header limit: a target too long to fit is a 414,
      // not a 431. The packet the parser stopped in still starts with the request line then.
      const packet = err.rawPacket;
      if (packet === undefined || !REQUEST_LINE_START.test(packet.subarray(0, 16).toString('latin1'))) {
        return 'request_header_too_large';
      }
      const lineEnd = packet.indexOf('\r\n');
      return lineEnd < 0 || lineEnd > maxUriLength ? 'uri_too_long' : 'request_header_too_large';
    }
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 'request_timeout';
    default:
      return 'bad_request';
  }
}
