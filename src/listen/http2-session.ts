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
    // the concurrency limit, frames on closed streams — over a connection's whole life, not
    // per second: a long-lived browser session may meet a few honest races, so Node's 1000
    // stays (a flood of them costs 9 bytes of parsing a frame before it is cut).
    maxSessionInvalidFrames: 1000,
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
const FLOODS: ReadonlyMap<number | string, SentAwayReason> = new Map<number | string, SentAwayReason>([
  [-904, 'unread_acks'],
  [-905, 'continuation_flood'],
  ['ERR_HTTP2_TOO_MANY_INVALID_FRAMES', 'invalid_frames'],
]);

/**
 * Why the gateway ended a client's HTTP/2 connection: a flood it caught, or any other protocol
 * error nghttp2 reported (rapid resets among them). A bounded set: a metric label.
 */
export type SentAwayReason =
  | 'ping_settings_flood'
  | 'unread_acks'
  | 'continuation_flood'
  | 'invalid_frames'
  | 'protocol_error';

const GUARD = Symbol('session guard');

interface Guard {
  budget: ControlFrameBudget;
  sentAway: (reason: SentAwayReason) => void;
}

type GuardedSession = ServerHttp2Session & { [GUARD]: Guard };

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

/**
 * Puts a new client connection under the budget and the idle timeout (`idleMs`, 0 for none);
 * `sentAway` is told when the gateway ends it for misbehaving (one function per listener).
 */
export function guardSession(
  session: ServerHttp2Session,
  idleMs: number,
  sentAway: (reason: SentAwayReason) => void,
): void {
  sessionDestroy ??= Object.getPrototypeOf(session).destroy as Destroy;
  (session as GuardedSession)[GUARD] = { budget: new ControlFrameBudget(), sentAway };
  session.on('ping', onControlFrame);
  session.on('remoteSettings', onControlFrame);
  session.destroy = destroyCalmly as ServerHttp2Session['destroy'];
  if (idleMs > 0) session.setTimeout(idleMs, onIdle);
}

function onControlFrame(this: GuardedSession): void {
  if (this[GUARD].budget.take() || this.destroyed) return;
  this[GUARD].sentAway('ping_settings_flood');
  // A number alone is Node's way to give the GOAWAY's code (an error object would mean INTERNAL_ERROR).
  sessionDestroy!.call(this, constants.NGHTTP2_ENHANCE_YOUR_CALM);
}

/**
 * Nothing moved on the connection for the idle timeout: GOAWAY, so the client opens a new one
 * for its next request; a stream still open (a long poll, a quiet WebSocket) finishes first.
 */
function onIdle(this: ServerHttp2Session): void {
  if (!this.closed && !this.destroyed) this.close();
}

/** Node's destroy on a protocol error, with ENHANCE_YOUR_CALM for a flood, and counted. */
function destroyCalmly(this: GuardedSession, error?: Error | number, code?: number): void {
  if (code === undefined && error instanceof Error && !this.destroyed) {
    const e = error as NodeJS.ErrnoException & { errno?: number };
    const flood = FLOODS.get(e.code ?? '') ?? FLOODS.get(e.errno ?? 0);
    if (flood !== undefined) code = constants.NGHTTP2_ENHANCE_YOUR_CALM;
    // A socket error (the client vanished) is not the client misbehaving.
    if (flood !== undefined || e.code === 'ERR_HTTP2_ERROR') this[GUARD].sentAway(flood ?? 'protocol_error');
  }
  sessionDestroy!.call(this, error, code);
}
