/**
 * One try of a request against one upstream host: the undici dispatch handler for it. An
 * attempt reports what it learned about its host (time to headers, success, failure) to the
 * host, the pool's detectors and the metrics, and hands every decision — forward this
 * answer or retry, resume a broken body, give up — to its Exchange. It never writes to the
 * client itself.
 */
import type { Dispatcher } from 'undici';
import { classifyFailure, GatewayAbort } from '../faults/classify.js';
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';
import { isGrpcUnavailable } from '../http/grpc.js';
import { rawHeadersOf, trailerPairsOf } from '../http/raw-headers.js';
import { parseRetryAfter } from '../http/retry-after.js';
import { awaitConnection, type ConnectionAware } from '../upstream/connection-reuse.js';
import type { UpstreamHost } from '../upstream/host.js';
import type { Exchange } from './exchange.js';
import type { ParsedHeaders } from './resume.js';

/** Why an attempt was started: the first try, a retry, a hedge beside a slow one, or a resume of a broken body. */
export type AttemptRole = 'first' | 'retry' | 'hedge' | 'resume';

const LOST = new GatewayAbort('client_closed', 'another attempt answered first');
const DROPPED = new GatewayAbort('upstream_error_status', 'answer replaced by a retry on another host');

export class Attempt implements Dispatcher.DispatchHandler, ConnectionAware {
  reusedConnection = false;
  /** Response headers arrived. */
  started = false;
  private controller: Dispatcher.DispatchController | undefined;
  private pendingAbort: Error | undefined;
  private readonly sentAt = performance.now();
  private settled = false;
  /** This attempt's answer was dropped (or lost a race): whatever it reports from now on is ignored. */
  private superseded = false;

  constructor(
    private readonly exchange: Exchange,
    readonly host: UpstreamHost,
    readonly role: AttemptRole,
  ) {}

  send(path: string, method: string, headers: string[], body: Dispatcher.DispatchOptions['body']): void {
    this.host.outstanding++;
    const { host } = this;
    // servername: undici's typings leave it out of the dispatch options; its Request takes it.
    const options = { path, method: method as Dispatcher.HttpMethod, headers, body, servername: host.servername };
    host.dispatcher.dispatch(options as Dispatcher.DispatchOptions, this);
  }

  /** Ends the exchange with the upstream (the client left, a timeout, a failed check). */
  abort(err: Error): void {
    if (this.settled) return;
    if (this.controller !== undefined) this.controller.abort(err);
    else this.pendingAbort = err;
  }

  /** The client drained its buffer: let upstream data flow again. */
  resume(): void {
    this.controller?.resume();
  }

  /**
   * Another attempt of the same request answered first. What this host showed (no answer
   * after so long) still counts: the time waited is a lower bound of its latency, and not
   * answering at all is a strike against it, so a frozen host soon stops drawing traffic.
   */
  lose(): void {
    if (this.settled) return;
    this.host.observeLatency(performance.now() - this.sentAt);
    this.exchange.pool.outliers.failure(this.host);
    this.drop(LOST);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== undefined) {
      controller.abort(this.pendingAbort);
      return;
    }
    // The keep-alive race is HTTP/1.1's: over HTTP/2 a server that closes says which streams it
    // never processed (GOAWAY, REFUSED_STREAM) and undici sends those again itself, so a stream
    // that breaks on a shared connection may have been processed and is not "reused" here.
    if (this.host.protocol === 'http1') awaitConnection(this);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: ParsedHeaders,
    statusText: string,
  ): void {
    if (this.superseded) return;
    const raw = rawHeadersOf(controller.rawHeaders);
    // An interim answer (103 Early Hints, 102) is not the response: the final one follows.
    if (statusCode < 200) return this.exchange.interim(this, statusCode, raw);
    this.started = true;
    if (this.role !== 'resume') this.observeAnswer(statusCode, headers);
    if (!this.exchange.answered(this, statusCode, raw, headers, statusText)) this.drop(DROPPED);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.superseded && !this.exchange.deliver(this, chunk)) controller.pause();
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.superseded || this.settled) return;
    this.settle();
    this.exchange.ended(this, trailerPairsOf(controller.rawTrailers));
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.superseded || this.settled) return;
    this.settle();
    const kind = classifyFailure(err, { responseStarted: this.started, reusedConnection: this.reusedConnection });
    this.observeFailure(kind);
    this.exchange.failed(this, kind, err);
  }

  /** Stops the attempt for good: its host's slot is given back and nothing it reports counts. */
  private drop(reason: Error): void {
    this.superseded = true;
    this.settle();
    // Still connecting or queued for a connection: stop it as soon as it is written.
    if (this.controller !== undefined) this.controller.abort(reason);
    else this.pendingAbort = reason;
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.outstanding--;
  }

  /**
   * What an answer says about its host: its latency, and whether it is failing (5xx, Retry-After,
   * or gRPC's UNAVAILABLE in a trailers-only answer: a host that is not serving the call).
   */
  private observeAnswer(status: number, headers: ParsedHeaders): void {
    const { host } = this;
    const pool = this.exchange.pool;
    const ms = performance.now() - this.sentAt;
    if (status >= 500) host.observeFailure();
    else host.observeLatency(ms);
    pool.latency.record(ms);
    pool.gate?.sample(ms, this.sentAt + ms);
    this.exchange.ctx.runtime.metrics.attemptDone(
      pool.name,
      host.label,
      status >= 500 ? `status_${status}` : 'ok',
      ms / 1000,
    );
    if (status === 502 || status === 503 || status === 504 || isGrpcUnavailable(status, headers['grpc-status'])) {
      pool.outliers.failure(host);
      if (status === 503) {
        const value = headers['retry-after'];
        const retryAfter = parseRetryAfter(typeof value === 'string' ? value : undefined);
        if (retryAfter !== undefined) pool.outliers.retryAfter(host, retryAfter);
      }
    } else {
      pool.outliers.success(host);
    }
    if (status < 500) pool.noteAnswer();
  }

  /**
   * What a failure says about its host. A client's own fault — it left, its body was too large
   * or too slow, its request could not be sent as it was — says nothing about the host: it
   * never counts against its latency, its outlier detector or the pool's limit.
   */
  private observeFailure(kind: FailureKindName): void {
    if (FAILURES[kind].side === 'client') return;
    const { host } = this;
    const pool = this.exchange.pool;
    if (this.role === 'resume') {
      pool.outliers.failure(host);
      return;
    }
    pool.outliers.failure(host);
    host.observeFailure();
    this.exchange.ctx.runtime.metrics.attemptDone(pool.name, host.label, kind, undefined);
    // A host too slow to answer at all is the strongest latency signal there is.
    if (kind === 'http_response_timeout') pool.gate?.sample(performance.now() - this.sentAt, performance.now());
  }
}
