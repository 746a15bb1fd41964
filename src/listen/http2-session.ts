/**
 * HTTP/2 connections from clients, bounded the way nginx, Envoy and HAProxy bound them: a
 * client's connection costs only that client. The node:http2 options set the limits nghttp2
 * and Node enforce themselves (streams per connection, the header list, a session's memory,
 * rapid resets, invalid and empty frames, CONTINUATION runs); `guardSession` adds what they
 * leave out — a budget for PING and SETTINGS frames (a peer that reads every ACK never trips
 * nghttp2's queue limit), GOAWAY for an idle connection — and sends a flooding peer away with
 * ENHANCE_YOUR_CALM, where Node would say INTERNAL_ERROR and blame itself.
 */
import { constants, type ServerHttp2Session } from 'node:http2';
import type { GatewayConfig } from '../config/schema.js';

/** The node:http2 server options for a listener with these client-side limits. */
export function http2Options(server: GatewayConfig['server']) {
  return {
    // Megabytes nghttp2 may hold for one connection (queued frames, HPACK tables, stream
    // state); past it, new streams are refused until the client reads what it was sent.
    maxSessionMemory: 16,
    maxHeaderListPairs: 256,
    // Frames Node counts as invalid — empty DATA without END_STREAM, streams opened beyond
    // the concurrency limit, frames on closed streams: a peer sending a hundred is not a
    // browser having a bad day (Node's default of 1000 lets an empty-frame flood run longer).
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    // Rapid reset (CVE-2023-44487): a burst of 200 cancelled streams, then 33 a second.
    streamResetBurst: 200,
    streamResetRate: 33,
    settings: {
      maxConcurrentStreams: server.http2.maxConcurrentStreams,
      maxHeaderListSize: server.maxHeaderSize,
      // RFC 8441: WebSockets over HTTP/2 by extended CONNECT, tunnelled like HTTP/1.1 upgrades.
      enableConnectProtocol: true,
    },
  } as const;
}

/** PING and SETTINGS frames a connection may send in a burst, and how many a second after it. */
const CONTROL_BURST = 100;
const CONTROL_PER_SECOND = 10;

/**
 * Errors Node reports when nghttp2 or its own counters catch a flood: nghttp2's outbound
 * queue of ACKs overflowing (NGHTTP2_ERR_FLOODED), too many CONTINUATION frames after one
 * HEADERS (NGHTTP2_ERR_TOO_MANY_CONTINUATIONS, CVE-2024-27316), Node's invalid-frame count.
 */
const FLOOD_ERRNOS = new Set([-904, -905]);
const FLOOD_CODES = new Set(['ERR_HTTP2_TOO_MANY_INVALID_FRAMES']);

const BUDGET = Symbol('control frame budget');

type GuardedSession = ServerHttp2Session & { [BUDGET]: ControlFrameBudget };

/** A token bucket of PING and SETTINGS frames; each connection has its own. */
class ControlFrameBudget {
  private tokens = CONTROL_BURST;
  private at = performance.now();

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(CONTROL_BURST, this.tokens + ((now - this.at) / 1000) * CONTROL_PER_SECOND);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/** Http2Session.destroy as Node has it (its typings leave out the code-only form). */
type Destroy = (this: ServerHttp2Session, error?: Error | number, code?: number) => void;

/** Node's own Http2Session.destroy, which `destroyCalmly` calls with the right error code. */
let sessionDestroy: Destroy | undefined;

/** Puts a new client connection under the budget and the idle timeout (`idleMs`, 0 for none). */
export function guardSession(session: ServerHttp2Session, idleMs: number): void {
  sessionDestroy ??= Object.getPrototypeOf(session).destroy as Destroy;
  (session as GuardedSession)[BUDGET] = new ControlFrameBudget();
  session.on('ping', onControlFrame);
  session.on('remoteSettings', onControlFrame);
  session.destroy = destroyCalmly as ServerHttp2Session['destroy'];
  if (idleMs > 0) session.setTimeout(idleMs, onIdle);
}

function onControlFrame(this: GuardedSession): void {
  // A number alone is Node's way to give the GOAWAY's code (an error object would mean INTERNAL_ERROR).
  if (!this[BUDGET].take() && !this.destroyed) destroyCalmly.call(this, constants.NGHTTP2_ENHANCE_YOUR_CALM);
}

/**
 * Nothing moved on the connection for the idle timeout: GOAWAY, so the client opens a new one
 * for its next request; a stream still open (a long poll, a quiet WebSocket) finishes first.
 */
function onIdle(this: ServerHttp2Session): void {
  if (!this.closed && !this.destroyed) this.close();
}

function destroyCalmly(this: ServerHttp2Session, error?: Error | number, code?: number): void {
  if (code === undefined && error instanceof Error) {
    const e = error as NodeJS.ErrnoException & { errno?: number };
    if (FLOOD_CODES.has(e.code ?? '') || FLOOD_ERRNOS.has(e.errno ?? 0)) code = constants.NGHTTP2_ENHANCE_YOUR_CALM;
  }
  sessionDestroy!.call(this, error, code);
}
