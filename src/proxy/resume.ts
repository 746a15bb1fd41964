/**
 * Mid-stream resume. When a GET response breaks after part of its body reached the client,
 * the rest is fetched from another host with `Range` and `If-Range` and spliced in, but only
 * when every assumption about the bytes can be checked first: a strong ETag (or a
 * Last-Modified date), `Accept-Ranges: bytes`, a known total length, and a 206 whose
 * Content-Range starts exactly where the client's copy stops, ends where the original would
 * have, and names the same total and validator. Anything else, and the client's stream is
 * cut so it sees an incomplete body: a resumed response must never carry a wrong byte.
 */
import type { Dispatcher } from 'undici';
import { classifyFailure, GatewayAbort } from '../faults/classify.js';
import type { UpstreamHost } from '../upstream/host.js';
import { endBody, writeBodyChunk } from './body-stream.js';
import type { RequestContext } from './context.js';

/** Resumes allowed per response. */
export const MAX_RESUMES = 2;

/** What must hold for the rest of a response to be fetched elsewhere. */
export interface ResumePlan {
  /** Strong ETag, or undefined when Last-Modified is the validator. */
  etag: string | undefined;
  lastModified: string | undefined;
  /** Offset in the full representation of the response's first body byte. */
  first: number;
  /** Offset of its last body byte (inclusive). */
  last: number;
  /** Length of the full representation. */
  total: number;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/;

/** The plan for a response just received, or undefined when it cannot be resumed safely. */
export function planResume(method: string, status: number, raw: Buffer[]): ResumePlan | undefined {
  if (method !== 'GET' || (status !== 200 && status !== 206)) return undefined;
  let etag: string | undefined;
  let lastModified: string | undefined;
  let ranges = false;
  let length: number | undefined;
  let contentRange: string | undefined;
  let encoded = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    if (name === 'etag') etag = raw[i + 1]!.toString('latin1');
    else if (name === 'last-modified') lastModified = raw[i + 1]!.toString('latin1');
    else if (name === 'accept-ranges') ranges = /\bbytes\b/i.test(raw[i + 1]!.toString('latin1'));
    else if (name === 'content-length') length = Number(raw[i + 1]!.toString('latin1'));
    else if (name === 'content-range') contentRange = raw[i + 1]!.toString('latin1');
    else if (name === 'transfer-encoding') encoded = true;
  }
  if (etag?.startsWith('W/')) etag = undefined; // weak validators do not promise identical bytes
  if ((etag === undefined && lastModified === undefined) || encoded) return undefined;
  if (status === 200) {
    if (!ranges || length === undefined || !Number.isSafeInteger(length) || length === 0) return undefined;
    return { etag, lastModified, first: 0, last: length - 1, total: length };
  }
  const m = contentRange === undefined ? null : CONTENT_RANGE.exec(contentRange);
  if (!m) return undefined;
  return { etag, lastModified, first: Number(m[1]), last: Number(m[2]), total: Number(m[3]) };
}

/**
 * Fetches the rest of a broken response from `host` and streams it to the client, or cuts
 * the client's stream when the answer does not line up. Calls `onFailed` when this resume
 * itself breaks before finishing, so the owner may try once more.
 */
export class ResumeAttempt implements Dispatcher.DispatchHandler {
  private abortUpstream: ((err?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private started = false;
  private settled = false;
  readonly from: number;

  constructor(
    private readonly ctx: RequestContext,
    readonly host: UpstreamHost,
    private readonly plan: ResumePlan,
    /** Body bytes the client already has. */
    delivered: number,
    private readonly onFailed: (attempt: ResumeAttempt, reason: string) => void,
  ) {
    this.from = plan.first + delivered;
  }

  send(headers: string[]): void {
    const { ctx, host, plan } = this;
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const lower = headers[i]!.toLowerCase();
      if (lower === 'range' || lower === 'if-range' || lower === 'if-none-match' || lower === 'if-modified-since'
        || lower === 'if-match' || lower === 'if-unmodified-since') continue;
      out.push(headers[i]!, headers[i + 1]!);
    }
    out.push('range', `bytes=${this.from}-${plan.last}`, 'if-range', plan.etag ?? plan.lastModified!);
    ctx.attempts++;
    ctx.hostsTried.push(host.label);
    ctx.triedHosts.add(host);
    host.outstanding++;
    ctx.resumer = this;
    host.dispatcher.dispatch({ path: ctx.req.url!, method: 'GET', headers: out, body: null }, this);
  }

  abort(err: Error): void {
    if (!this.settled) this.abortUpstream?.(err);
  }

  resume(): void {
    this.resumeUpstream?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    const mismatch = this.check(statusCode, raw);
    if (mismatch !== undefined) {
      this.fail(mismatch);
      this.abortUpstream?.(new GatewayAbort('http_response_incomplete', mismatch));
      return false;
    }
    this.started = true;
    this.resumeUpstream = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    return !this.started || writeBodyChunk(this.ctx, chunk);
  }

  onComplete(rawTrailers: string[] | Buffer[] | null): void {
    if (this.settled) return;
    this.settle();
    endBody(this.ctx, rawTrailers);
  }

  onError(err: Error): void {
    if (this.settled) return;
    const kind = classifyFailure(err, { responseStarted: this.started, reusedConnection: false });
    if (kind === 'client_closed') { this.settle(); return; }
    this.ctx.route!.upstream.outliers.failure(this.host);
    this.fail(`${this.started ? 'broke again' : 'failed'}: ${err.message}`);
  }

  /** Why the answer cannot be spliced in, or undefined when it lines up exactly. */
  private check(status: number, raw: Buffer[]): string | undefined {
    if (status !== 206) return `answered ${status}, not 206`;
    let contentRange: string | undefined;
    let etag: string | undefined;
    let lastModified: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1').toLowerCase();
      if (name === 'content-range') contentRange = raw[i + 1]!.toString('latin1');
      else if (name === 'etag') etag = raw[i + 1]!.toString('latin1');
      else if (name === 'last-modified') lastModified = raw[i + 1]!.toString('latin1');
    }
    const m = contentRange === undefined ? null : CONTENT_RANGE.exec(contentRange);
    if (!m) return `Content-Range ${contentRange ?? 'missing'}`;
    const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (first !== this.from || last !== this.plan.last || total !== this.plan.total) {
      return `Content-Range ${contentRange} does not continue bytes ${this.from}-${this.plan.last}/${this.plan.total}`;
    }
    if (this.plan.etag !== undefined ? etag !== this.plan.etag : lastModified !== this.plan.lastModified) {
      return `validator changed (${etag ?? lastModified ?? 'none'})`;
    }
    return undefined;
  }

  private fail(reason: string): void {
    if (this.settled) return;
    this.settle();
    this.onFailed(this, reason);
  }

  private settle(): void {
    this.settled = true;
    this.host.outstanding--;
  }
}
