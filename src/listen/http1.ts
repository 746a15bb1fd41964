/**
 * The client-facing HTTP/1.1 listener: Node's server with the configured limits and
 * timeouts, requests and upgrades handed to the runtime in force, and malformed or
 * oversized requests answered with the right 4xx (and Proxy-Status) instead of a silent close.
 * Node's own response object is the client side the proxy writes to (Http1Response).
 */
import { createServer, type IncomingMessage, ServerResponse, type Server, type ServerOptions } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { StatusSources } from '../admin/status-model.js';
import { serveStatusPage } from '../admin/status-page.js';
import type { GatewayConfig } from '../config/schema.js';
import { buildReply } from '../explain/reply.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import { requestIdFrom } from '../observe/request-id.js';
import { handleRequest, handleUpgrade } from '../proxy/lifecycle.js';
import { sendReply } from '../proxy/local-reply.js';
import type { Runtime } from '../runtime.js';
import type { ClientResponse, ResponseEvents } from './client.js';
import { SocketResponse } from './socket-response.js';

/** node:http's response, speaking the proxy's client-side interface; no object is added per request. */
export class Http1Response extends ServerResponse implements ClientResponse {
  owner: unknown = undefined;
  events: ResponseEvents<unknown> | undefined = undefined;
  /** Headers were given and no body byte has followed them yet. */
  headPending = false;

  watch<T>(item: T, events: ResponseEvents<T>): void {
    this.owner = item;
    this.events = events as ResponseEvents<unknown>;
    this.once('close', onResponseClose);
  }

  sendContinue(): void {
    this.writeContinue();
  }

  sendInterim(status: number, headers: readonly string[]): void {
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client. 102 Processing is obsolete (RFC 4918).
    if (status !== 103 || this.req.httpVersionMinor === 0 || this.headersSent) return;
    const hints: Record<string, string | string[]> = {};
    const links: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      // Node takes Link values one by one: "<a>; rel=preload, <b>; …" becomes two.
      if (name === 'link') links.push(...headers[i + 1]!.split(LINK_SEPARATOR));
      else hints[name] = headers[i + 1]!;
    }
    hints.link = links;
    try {
      this.writeEarlyHints(hints);
    } catch {
      // Node refuses a Link value it cannot vouch for: the hints are an optimisation, the answer follows.
    }
  }

  sendHead(status: number, reason: string | undefined, headers: readonly string[], whole = false): void {
    this.writeHead(status, reason, headers as string[]);
    if (whole) return;
    // node:http holds a head back until the first body write. Most answers bring their first
    // bytes in the same read as their headers, and then both leave in one write; an answer
    // whose body is slow to start (an event stream, a long poll) has its head sent alone.
    this.headPending = true;
    process.nextTick(flushLoneHead, this);
  }

  sendBody(chunk: Buffer): boolean {
    this.headPending = false;
    if (this.write(chunk)) return true;
    this.once('drain', onResponseDrain);
    return false;
  }

  finish(body?: string | Buffer, trailers?: ReadonlyArray<[string, string]>): void {
    this.headPending = false;
    if (trailers !== undefined) this.addTrailers(trailers as Array<[string, string]>);
    this.end(body);
  }

  cut(): void {
    this.destroy();
  }

  closeAfter(): void {
    this.shouldKeepAlive = false;
  }
}

/** The commas between Link values (a comma inside a value's <URI> or quoted parameter is rare enough to forgo). */
const LINK_SEPARATOR = /\s*,\s*(?=<)/;

function flushLoneHead(res: Http1Response): void {
  if (!res.headPending || res.destroyed) return;
  res.headPending = false;
  res.flushHeaders();
}

function onResponseClose(this: Http1Response): void {
  this.events!.closed(this.owner);
}

function onResponseDrain(this: Http1Response): void {
  this.events!.drained(this.owner);
}

export interface Listener {
  server: Server<typeof IncomingMessage, typeof Http1Response>;
  /** Upgraded connections (WebSocket tunnels), which the HTTP server no longer tracks. */
  tunnels: Set<Duplex>;
  /** This listener's certificate, when it speaks HTTPS: a reload swaps it for new handshakes. */
  setCertificate: ((certificate: TlsCertificate) => void) | undefined;
}

/** A listener's certificate chain and private key, PEM. */
export interface TlsCertificate {
  cert: string;
  key: string;
}

/**
 * TLS 1.2 and 1.3 only, with Node's default (modern) cipher list, the server's cipher order,
 * and no renegotiation: what current guidance (Mozilla "intermediate") asks of a public edge.
 */
const TLS_SETTINGS = { minVersion: 'TLSv1.2', honorCipherOrder: true } as const;

export function createListener(
  config: GatewayConfig,
  current: () => Runtime,
  status: () => StatusSources,
  tls?: TlsCertificate,
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
  const server: Server<typeof IncomingMessage, typeof Http1Response> =
    tls === undefined ? createServer(options) : createTlsServer({ ...options, ...TLS_SETTINGS, ...tls });
  const setCertificate =
    tls === undefined
      ? undefined
      : (certificate: TlsCertificate): void =>
          (server as unknown as { setSecureContext(o: object): void }).setSecureContext({
            ...TLS_SETTINGS,
            ...certificate,
          });
  const tunnels = new Set<Duplex>();
  const scheme = tls === undefined ? 'http' : 'https';

  server.on('request', (req: IncomingMessage, res: Http1Response) => {
    const runtime = current();
    // The public status page, when configured, is the gateway's own page, not a route's.
    const statusPath = runtime.config.status.path;
    if (
      statusPath !== undefined &&
      req.url!.startsWith(statusPath) &&
      serveStatusPage(status, req, res, statusPath, true)
    )
      return;
    handleRequest(runtime, req, res, {
      remoteAddress: req.socket.remoteAddress,
      authority: req.headers.host,
      expectsContinue: false,
      scheme,
    });
  });
  server.on('checkContinue', (req: IncomingMessage, res: Http1Response) => {
    handleRequest(current(), req, res, {
      remoteAddress: req.socket.remoteAddress,
      authority: req.headers.host,
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
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const replies = current().replies;
    const reply = buildReply({
      kind: 'bad_request',
      proxyName: replies.proxyName,
      requestId: requestIdFrom(undefined),
      revealDetails: false,
      page: replies.page,
      details: 'CONNECT is not served: this is a gateway, not a forward proxy',
    });
    sendReply(new SocketResponse(socket), reply, undefined);
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
  return { server, tunnels, setCertificate };
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
