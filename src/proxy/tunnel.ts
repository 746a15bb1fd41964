/**
 * Tunnels protocol upgrades (WebSocket and others): once the preflight let the request on,
 * it goes to a host of the route's pool like any other, and when the upstream answers 101
 * the two connections are joined byte for byte until either side closes. An upstream that
 * answers without switching (a 401, a 404, a 426…) has its answer passed on as it is.
 *
 * A WebSocket asked for over HTTP/2 (RFC 8441 extended CONNECT) carries no Sec-WebSocket-Key:
 * the gateway is the WebSocket client of the HTTP/1.1 upstream, so it makes the key and checks
 * the upstream's Sec-WebSocket-Accept itself (RFC 6455 §4.1) before the client hears 200.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyFailure } from '../faults/classify.js';
import type { TunnelResponse } from '../listen/client.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { RoutedContext, UpstreamSide } from './context.js';
import { buildUpstreamHeaders } from './headers.js';
import { replyLocally } from './local-reply.js';
import { sendResponseHead } from './response-head.js';

export function openTunnel(ctx: RoutedContext, res: TunnelResponse, head: Buffer): void {
  const host = ctx.route.upstream.pick();
  if (host === undefined) return replyLocally(ctx, 'destination_unavailable');
  const tunnel = new Tunnel(ctx, res, host, head);
  ctx.exchange = tunnel;
  tunnel.send();
}

class Tunnel implements Dispatcher.DispatchHandler, UpstreamSide {
  readonly attempts = 1;
  readonly hostsTried: string[];
  readonly retryReasons: string[] = [];
  readonly resumes = 0;
  bytesOut = 0;
  private controller: Dispatcher.DispatchController | undefined;
  private pendingAbort: Error | undefined;
  private answered = false;
  private settled = false;
  /** The Sec-WebSocket-Accept the upstream must answer with, when the gateway made the key. */
  private expectedAccept: string | undefined;

  constructor(
    private readonly ctx: RoutedContext,
    private readonly res: TunnelResponse,
    readonly lastHost: UpstreamHost,
    private readonly head: Buffer,
  ) {
    this.hostsTried = [lastHost.label];
  }

  send(): void {
    const { ctx, lastHost: host } = this;
    const req = ctx.req;
    host.outstanding++;
    const headers = buildUpstreamHeaders(req.rawHeaders, req.headers.connection, {
      proxyName: ctx.runtime.replies.proxyName,
      requestId: ctx.id,
      clientAddress: ctx.clientAddress,
      proto: ctx.scheme,
      httpVersion: req.httpVersion,
      authority: ctx.authority,
      hostOverride: ctx.route.policy.hostHeader === 'upstream' ? host.label : undefined,
    });
    if (req.stream !== undefined && ctx.upgrade === 'websocket') this.expectedAccept = addWebSocketKey(headers);
    host.dispatcher.dispatch(
      {
        // The host's one TLS name, as every request to it carries (upstream/host.ts).
        servername: host.servername,
        path: req.url!,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: null,
        upgrade: String(req.headers.upgrade),
      } as Dispatcher.DispatchOptions,
      this,
    );
  }

  resume(): void {
    this.controller?.resume();
  }

  abort(err: Error): void {
    if (this.settled) return;
    if (this.controller !== undefined) this.controller.abort(err);
    else this.pendingAbort = err;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== undefined) controller.abort(this.pendingAbort);
  }

  // The upstream answered without switching protocols: that is its answer to the client.
  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: unknown,
    statusText: string,
  ): void {
    if (statusCode < 200) return;
    this.answered = true;
    sendResponseHead(this.ctx, statusCode, statusText, controller.rawHeaders as Buffer[], undefined);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (!this.res.sendBody(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.settle();
    this.res.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.settle();
    if (this.answered) {
      this.res.cut();
      return;
    }
    const kind = classifyFailure(err, { responseStarted: false, reusedConnection: false });
    if (kind === 'client_closed') return;
    replyLocally(this.ctx, kind === 'proxy_internal_error' ? 'http_upgrade_failed' : kind, err);
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: unknown,
    upstream: Duplex,
  ): void {
    this.settle();
    // The client left while the upstream was switching: nothing to join.
    if (this.res.destroyed) {
      upstream.destroy();
      return;
    }
    const raw = (controller.rawHeaders ?? []) as Array<Buffer | string>;
    const headers: string[] = [];
    let accept: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString();
      const value = raw[i + 1]!.toString();
      if (name.toLowerCase() === 'sec-websocket-accept') accept = value;
      headers.push(name, value);
    }
    if (this.expectedAccept !== undefined && accept !== this.expectedAccept) {
      upstream.destroy();
      const why =
        accept === undefined ? 'no Sec-WebSocket-Accept' : 'a Sec-WebSocket-Accept that does not match the key';
      return replyLocally(this.ctx, 'http_upgrade_failed', new Error(`the upstream switched to WebSocket with ${why}`));
    }
    headers.push('via', `1.1 ${this.ctx.runtime.replies.proxyName}`, 'x-request-id', this.ctx.id);
    this.ctx.headAt = performance.now();
    const client = this.res.handOver(statusCode, headers);
    if (this.head.length > 0) upstream.write(this.head);
    joinTunnel(client, upstream);
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.lastHost.outstanding--;
  }
}

/** RFC 6455 §1.3: the GUID a WebSocket server hashes with the client's key. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Gives an upstream WebSocket handshake the key the HTTP/2 client did not send (any it did is
 * dropped) and the version when missing; returns the accept value the upstream must answer with.
 */
function addWebSocketKey(headers: string[]): string {
  let version = false;
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'sec-websocket-key') headers.splice(i, 2);
    else if (name === 'sec-websocket-version') version = true;
  }
  const key = randomBytes(16).toString('base64');
  headers.push('sec-websocket-key', key);
  if (!version) headers.push('sec-websocket-version', '13');
  return createHash('sha1')
    .update(key + WEBSOCKET_GUID)
    .digest('base64');
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
    setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, HALF_CLOSE_GRACE_MS).unref();
  };
  client.on('end', endBoth);
  upstream.on('end', endBoth);
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  upstream.pipe(client, { end: false });
  client.pipe(upstream, { end: false });
}
