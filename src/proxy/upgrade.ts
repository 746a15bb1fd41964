/**
 * Tunnels protocol upgrades (WebSocket and others): the request goes upstream through the
 * pool like any other, and once the upstream answers 101 the two sockets are joined byte
 * for byte until either side closes.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyFailure } from '../faults/classify.js';
import { buildReply, writeReplyToSocket, type ReplyFacts } from '../faults/reply.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import { requestIdFrom } from '../observe/request-id.js';
import type { Route } from '../route/router.js';
import type { UpstreamHost } from '../upstream/host.js';
import { describeError } from './attempt.js';
import { shedFacts } from './lifecycle.js';
import { clientAddressOf, revealsDetails } from './context.js';
import { buildDownstreamHeaders, buildUpstreamHeaders, viaContains } from './headers.js';
import type { Runtime } from './runtime.js';

export function handleUpgrade(runtime: Runtime, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const id = requestIdFrom(req.headers['x-request-id']);
  const started = performance.now();
  const client = clientAddressOf(req);
  const config = runtime.config;
  socket.on('error', () => socket.destroy());

  const fail = (kind: FailureKindName, route?: Route, host?: UpstreamHost, err?: unknown, extra?: Pick<ReplyFacts, 'retryAfter' | 'message' | 'details' | 'headers'>): void => {
    const cause = err === undefined ? undefined : describeError(err);
    writeReplyToSocket(socket, buildReply({
      kind, proxyName: config.name, requestId: id, service: route?.upstream.name, path: req.url,
      accept: req.headers.accept, acceptLanguage: req.headers['accept-language'], page: config.errors.page, revealDetails: revealsDetails(runtime, client), nextHop: host?.label, cause, statusPage: config.errors.statusPage ?? config.status.path, ...extra,
    }));
    runtime.logger.info({ req_id: id, client, method: req.method, path: req.url, upgrade: req.headers.upgrade, route: route?.name,
      host: host?.label, failure: kind, cause, ms: Math.round(performance.now() - started) }, 'upgrade failed');
  };

  // The same admission as plain requests (lifecycle.ts phases 2–3), minus the concurrency
  // gate: a tunnel's life is not an answer time.
  if (runtime.loopGuard.overloaded) return fail('connection_limit_reached', undefined, undefined, undefined, shedFacts(runtime, undefined, 'event_loop'));
  if (req.url!.length > config.server.maxUriLength) return fail('uri_too_long');
  if (viaContains(req.headers.via, config.name)) return fail('proxy_loop_detected');
  const route = runtime.router.match(req.headers.host, req.url!, req.method!);
  if (route === undefined) return fail('destination_not_found');
  const held = runtime.maintenance.holds(config, route, req, client);
  if (held !== undefined) return fail('maintenance', route, undefined, undefined, held);
  if (route.rateLimiter !== undefined) {
    const d = route.rateLimiter.check(req, client);
    if (!d.allowed) {
      runtime.metrics.rateLimited.with(route.name).inc();
      return fail('rate_limited', route, undefined, undefined, route.rateLimiter.refusal(d));
    }
  }
  const host = route.upstream.pick();
  if (host === undefined) return fail('destination_unavailable', route);

  const upstreamHead = buildUpstreamHeaders(req.rawHeaders, req.headers.connection, {
    proxyName: config.name, requestId: id, clientAddress: client, proto: 'http', httpVersion: req.httpVersion,
    hostOverride: route.upstream.config.hostHeader === 'upstream' ? host.label : undefined,
  });

  host.outstanding++;
  let settled = false;
  const settle = (): void => { if (!settled) { settled = true; host.outstanding--; } };
  let answered = false;
  const handler: Dispatcher.DispatchHandler = {
    onConnect() {},
    // The upstream answered without switching protocols (a 401, a 404, a 426…): that is its
    // answer to the client, passed on as it is, delimited by closing the connection.
    onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string) {
      answered = true;
      socket.on('drain', resume);
      const headers = buildDownstreamHeaders(rawHeaders, { proxyName: config.name, requestId: id, httpVersion: '1.1', proxyStatus: undefined });
      let head = `HTTP/1.1 ${statusCode} ${statusText || STATUS_CODES[statusCode] || ''}\r\n`;
      for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
      socket.write(`${head}connection: close\r\n\r\n`);
      runtime.logger.info({ req_id: id, client, method: req.method, path: req.url, upgrade: req.headers.upgrade, route: route.name,
        upstream: route.upstream.name, host: host.label, status: statusCode, ms: Math.round(performance.now() - started) }, 'upgrade refused by upstream');
      return true;
    },
    onData(chunk: Buffer) {
      return socket.write(chunk);
    },
    onComplete() {
      settle();
      socket.end();
    },
    onError(err: Error) {
      settle();
      if (answered) { socket.destroy(); return; }
      const kind = classifyFailure(err, { responseStarted: false, reusedConnection: false });
      fail(kind === 'proxy_internal_error' ? 'http_upgrade_failed' : kind, route, host, err);
    },
    onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex) {
      settle();
      let response = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
      const raw = rawHeaders ?? [];
      for (let i = 0; i < raw.length; i += 2) response += `${raw[i]!.toString()}: ${raw[i + 1]!.toString()}\r\n`;
      response += `via: 1.1 ${config.name}\r\nx-request-id: ${id}\r\n\r\n`;
      socket.write(response);
      if (head.length > 0) upstream.write(head);
      joinTunnel(socket, upstream);
      runtime.logger.info({ req_id: id, client, method: req.method, path: req.url, upgrade: req.headers.upgrade, route: route.name,
        upstream: route.upstream.name, host: host.label, status: statusCode, ms: Math.round(performance.now() - started) }, 'upgrade');
    },
  };
  host.dispatcher.dispatch({
    path: req.url!,
    method: req.method as Dispatcher.HttpMethod,
    headers: upstreamHead,
    body: null,
    upgrade: String(req.headers.upgrade ?? 'websocket'),
  }, handler);
}

/** Time a tunnel may stay half-closed before both sockets are destroyed. */
const HALF_CLOSE_GRACE_MS = 1000;

/**
 * Joins two sockets byte for byte. When either side ends, the other is ended too and both
 * are destroyed shortly after: a half-open tunnel would otherwise hold a connection (and
 * a graceful shutdown) open forever if the far side never closes its half.
 */
function joinTunnel(client: Duplex, upstream: Duplex): void {
  let ending = false;
  const endBoth = (): void => {
    if (ending) return;
    ending = true;
    client.end();
    upstream.end();
    setTimeout(() => { client.destroy(); upstream.destroy(); }, HALF_CLOSE_GRACE_MS).unref();
  };
  client.on('end', endBoth);
  upstream.on('end', endBoth);
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  upstream.pipe(client, { end: false });
  client.pipe(upstream, { end: false });
}
