/**
 * The state of one request on the client side of the gateway: who asked, what the preflight
 * settled (route, rate-limit fields, the concurrency slot), and how it ended. The upstream
 * side lives in its Exchange; the finished record for observers is made from both at the end.
 */
import type { ConcurrencyGate, Waiter } from '../admission/concurrency-gate.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import { isGrpcContentType } from '../http/grpc.js';
import type { ClientRequest, ClientResponse } from '../listen/client.js';
import type { Route } from '../route/router.js';
import type { Runtime } from '../runtime.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { CacheResult, CacheState } from './cache-phase.js';
import type { RequestBody } from './request-body.js';

/** The client's address, with IPv4-mapped IPv6 addresses written as plain IPv4. */
export function clientAddressOf(remoteAddress: string | undefined): string {
  const a = remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class RequestContext {
  readonly start = performance.now();
  route: Route | undefined = undefined;
  /** The upstream side, once the request was admitted and went upstream (an Exchange, or a Tunnel). */
  exchange: UpstreamSide | undefined = undefined;
  /** Header fields the gateway adds to the upstream's response (name, value, …), e.g. RateLimit. */
  extraResponseHeaders: string[] | undefined = undefined;
  /** The client sent `Expect: 100-continue`; answered once the request goes upstream. */
  expectsContinue = false;
  /** How the client reached the gateway: over TLS or not. */
  scheme: 'http' | 'https' = 'http';
  failure: FailureKindName | undefined = undefined;
  /** The low-level cause of the failure, for the access log. */
  cause: string | undefined = undefined;
  /** Request body bytes taken from the client. */
  bytesIn = 0;
  /** The body as it goes upstream: none, read whole (it can be sent again), or streaming. */
  body: RequestBody = null;
  /** Bytes of the body held in memory against the gateway's budget, given back at the end. */
  bufferedBytes = 0;
  /** When the response's status and headers went to the client (performance.now()); its time to first byte. */
  headAt: number | undefined = undefined;
  /** The gate whose slot this request holds (until its response headers arrive). */
  gate: ConcurrencyGate | undefined = undefined;
  /** The request's place in the gate's queue while it waits for a slot. */
  waiter: Waiter<RoutedContext> | undefined = undefined;
  /** What comes after admission for this request: forwarding, or opening a tunnel. */
  proceed: ((ctx: RoutedContext) => void) | undefined = undefined;
  /** The cache phase's findings, on a cached route. */
  cache: CacheState | undefined = undefined;
  /** How the cache answered (hit, collapsed, revalidated, stale-if-error, stale-while-revalidate), when it did. */
  cacheResult: CacheResult | undefined = undefined;
  /** The failure a stored copy stood in for (stale-if-error): prevented, not seen by the client. */
  stoodInFor: FailureKindName | undefined = undefined;
  /** Body bytes sent from the cache. */
  bytesServed = 0;
  /** A gRPC call (Content-Type application/grpc…): the gateway's own answers are gRPC statuses. */
  readonly grpc: boolean;

  constructor(
    readonly runtime: Runtime,
    readonly req: ClientRequest,
    /** Where the answer goes (on a cached route, through the cache's CacheFill on its way). */
    public res: ClientResponse,
    readonly id: string,
    readonly clientAddress: string,
    /**
     * The authority the client named: Host, HTTP/2's :authority, or — once the preflight
     * has read it — an absolute-form target's, which replaces Host (RFC 9112 §3.2.2).
     */
    public authority: string | undefined,
    /** The protocol a client asked to switch to (lower case), until a route allows it or the request goes on as a plain one. */
    public upgrade: string | undefined,
  ) {
    this.grpc = isGrpcContentType(req.headers['content-type']);
  }

  /** Gives the request's concurrency slot to the next in line: its answer arrived, or it ended. */
  releaseSlot(): void {
    const gate = this.gate;
    if (gate === undefined) return;
    this.gate = undefined;
    gate.leave(performance.now());
  }

  /** Whether this client may see failing host addresses and raw error text. */
  get revealDetails(): boolean {
    return this.runtime.revealsDetails(this.clientAddress);
  }
}

/** The upstream side of a request as the client side and the finished record see it. */
export interface UpstreamSide {
  /** The host of the latest attempt. */
  readonly lastHost: UpstreamHost | undefined;
  readonly attempts: number;
  readonly hostsTried: readonly string[];
  readonly retryReasons: readonly string[];
  readonly resumes: number;
  /** Body bytes delivered to the client. */
  readonly bytesOut: number;
  /** The client drained its buffer: upstream data may flow again. */
  resume(): void;
  /** Stops whatever still runs upstream. */
  abort(err: Error): void;
}

/** A request the router matched: from here on its route is known. */
export interface RoutedContext extends RequestContext {
  readonly route: Route;
}
