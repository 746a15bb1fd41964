/**
 * The client-facing HTTP/1.1 listener: Node's server with the configured limits and
 * timeouts, requests and upgrades handed to the runtime in force, and malformed or
 * oversized requests answered with the right 4xx (and Proxy-Status) instead of a silent close.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { StatusSources } from '../admin/status-model.js';
import { serveStatusPage } from '../admin/status-page.js';
import type { GatewayConfig } from '../config/schema.js';
import { buildReply, writeReplyToSocket } from '../faults/reply.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import { requestIdFrom } from '../observe/request-id.js';
import { handleRequest } from '../proxy/lifecycle.js';
import type { Runtime } from '../proxy/runtime.js';
import { handleUpgrade } from '../proxy/upgrade.js';

export interface Listener {
  server: Server;
  /** Upgraded connections (WebSocket tunnels), which the HTTP server no longer tracks. */
  tunnels: Set<Duplex>;
}

export function createListener(config: GatewayConfig, current: () => Runtime, status: () => StatusSources): Listener {
  const s = config.server;
  const requestTimeout = s.requestTimeout;
  const server = createServer({
    maxHeaderSize: s.maxHeaderSize,
    headersTimeout: requestTimeout > 0 ? Math.min(s.headerTimeout, requestTimeout) : s.headerTimeout,
    requestTimeout,
    keepAliveTimeout: s.keepAliveTimeout,
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(s.headerTimeout / 4))),
    requireHostHeader: true,
  });
  const tunnels = new Set<Duplex>();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const runtime = current();
    // The public status page, when configured, is the gateway's own page, not a route's.
    const statusPath = runtime.config.status.path;
    if (statusPath !== undefined && req.url!.startsWith(statusPath) && serveStatusPage(status, req, res, statusPath, true)) return;
    handleRequest(runtime, req, res);
  });
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handleRequest(current(), req, res, true));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    handleUpgrade(current(), req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const runtime = current();
    const kind = clientErrorKind(err);
    if (kind === undefined || !socket.writable || (socket as { bytesWritten?: number }).bytesWritten) {
      socket.destroy();
      return;
    }
    const reply = buildReply({ kind, proxyName: runtime.config.name, requestId: requestIdFrom(undefined), revealDetails: false, page: runtime.config.errors.page });
    writeReplyToSocket(socket, reply);
    runtime.logger.info({ failure: kind, cause: err.code ?? err.message, status: reply.status }, 'client error');
  });
  return { server, tunnels };
}

function clientErrorKind(err: NodeJS.ErrnoException): FailureKindName | undefined {
  switch (err.code) {
    case 'ECONNRESET': case 'EPIPE': return undefined;
    case 'HPE_HEADER_OVERFLOW': return 'request_header_too_large';
    case 'ERR_HTTP_REQUEST_TIMEOUT': case 'HPE_HEADERS_TIMEOUT': return 'request_timeout';
    default: return 'bad_request';
  }
}
