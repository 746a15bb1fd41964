/**
 * The state of one request as it travels through the gateway. Each stage reads what the
 * earlier ones settled and adds its own part; the access log and metrics read it at the end.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ConcurrencyGate, Waiter } from '../admission/concurrency-gate.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import type { Route } from '../route/router.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { Attempt } from './attempt.js';
import type { ResumeAttempt, ResumePlan } from './resume.js';
import type { Runtime } from './runtime.js';

/** The client's address, with IPv4-mapped IPv6 addresses written as plain IPv4. */
export function clientAddressOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Whether this client may see failing host addresses and raw error text. */
export function revealsDetails(runtime: Runtime, clientAddress: string): boolean {
  return runtime.config.errors.exposeDetails || runtime.trustedClients.has(clientAddress);
}

/** The response carries its request's context, so shared listeners need no per-request closure. */
export interface ContextualResponse extends ServerResponse {
  gangway?: RequestContext;
}

export class RequestContext {
  readonly start = performance.now();
  route: Route | undefined = undefined;
  /** Hosts tried, in order (labels). */
  readonly hostsTried: string[] = [];
  /** Why each retry was made (failure kinds), for the access log. */
  readonly retryReasons: Array<FailureKindName | 'hedge'> = [];
  /** The same hosts, for the balancer to avoid on a retry. */
  readonly triedHosts = new Set<UpstreamHost>();
  /** What is sent upstream as the body: nothing, a buffered copy (replayable), or the client's stream. */
  body: Readable | Buffer | null = null;
  /** Header fields the gateway adds to the upstream's response (name, value, …), e.g. RateLimit. */
  extraResponseHeaders: string[] | undefined = undefined;
  /** Upstream request headers, built once (unless they name the host). */
  upstreamHeaders: string[] | undefined = undefined;
  host: UpstreamHost | undefined = undefined;
  attempts = 0;
  /** Response headers from upstream were forwarded to the client. */
  responseStarted = false;
  failure: FailureKindName | undefined = undefined;
  /** The low-level cause of the failure, for the access log. */
  cause: string | undefined = undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** The latest attempt, and after response headers the one whose answer the client gets. */
  attempt: Attempt | undefined = undefined;
  /** Attempts still exchanging with an upstream (two while a hedge races the first). */
  readonly active = new Set<Attempt>();
  hedgeTimer: NodeJS.Timeout | undefined = undefined;
  /** How the response may be resumed if it breaks (set when its headers pass the checks). */
  resumePlan: ResumePlan | undefined = undefined;
  /** Resumes made; the one under way. */
  resumes = 0;
  resumer: ResumeAttempt | undefined = undefined;
  totalTimer: NodeJS.Timeout | undefined = undefined;
  /** The total timeout passed: no further attempts. */
  expired = false;
  /** The client sent `Expect: 100-continue`; answered once the request goes upstream. */
  expectsContinue = false;
  /** The gate whose slot this request holds (until its response headers arrive). */
  gate: ConcurrencyGate | undefined = undefined;
  /** The request's place in the gate's queue while it waits for a slot. */
  waiter: Waiter<RequestContext> | undefined = undefined;

  constructor(
    readonly runtime: Runtime,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly id: string,
    readonly clientAddress: string,
  ) {}

  /** Gives the request's concurrency slot to the next in line: its answer arrived, or it ended. */
  releaseSlot(): void {
    const gate = this.gate;
    if (gate === undefined) return;
    this.gate = undefined;
    gate.leave(performance.now());
  }

  /** Whether this client may see failing host addresses and raw error text. */
  get revealDetails(): boolean {
    return revealsDetails(this.runtime, this.clientAddress);
  }
}
