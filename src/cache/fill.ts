/**
 * The client side of a request that went upstream on a cached route: everything written to
 * the client passes through here on its way, so the answer the client gets is the answer the
 * cache keeps — resumed streams spliced, hop-by-hop fields gone — and every answer gets its
 * Cache-Status. A storable GET answer is recorded up to the route's object size and stored
 * when it ends complete; requests that waited for it (collapsed) are then answered from the
 * cache, or let go to fetch for themselves as soon as it is clear it will not be stored. An
 * unsafe method's success invalidates what the cache holds for its URL (RFC 9111 §4.4).
 */
import type CachePolicy from 'http-cache-semantics';
import type { ClientResponse, ResponseEvents } from '../listen/client.js';
import { serializeCacheStatus, type CacheStatusFacts } from './cache-status.js';
import type { RouteCache } from './route-cache.js';
import { StoredResponse, varyFieldsOf, varyKeyOf } from './store.js';
import { storablePolicy } from './storable.js';
import { fieldsObject } from '../http/raw-headers.js';

/** Fields of the answer that belong to this one request, never stored with the response. */
const PER_REQUEST = new Set(['x-request-id', 'proxy-status', 'cache-status', 'ratelimit', 'ratelimit-policy']);

export type FillMode =
  /** A GET that may be stored. */
  | 'store'
  /** Relay only (HEAD, a bypass): Cache-Status and nothing else. */
  | 'pass'
  /** An unsafe method: a success invalidates the URL. */
  | 'invalidate';

export class CacheFill implements ClientResponse {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private policy: CachePolicy | undefined;
  private recording = false;
  private status = 0;

  constructor(
    /** The client's own response, which a cached answer is written to directly. */
    readonly client: ClientResponse,
    private readonly cache: RouteCache,
    readonly key: string,
    private readonly mode: FillMode,
    /** The request as the cache policy sees it. */
    private readonly request: CachePolicy.Request,
    /** What Cache-Status says before the answer is known (why the request went upstream). */
    private readonly facts: CacheStatusFacts,
  ) {}

  get statusCode(): number {
    return this.client.statusCode;
  }
  get headersSent(): boolean {
    return this.client.headersSent;
  }
  get writableFinished(): boolean {
    return this.client.writableFinished;
  }
  get destroyed(): boolean {
    return this.client.destroyed;
  }
  watch<T>(item: T, events: ResponseEvents<T>): void {
    this.client.watch(item, events);
  }
  sendContinue(): void {
    this.client.sendContinue();
  }
  sendInterim(status: number, headers: readonly string[]): void {
    this.client.sendInterim(status, headers);
  }
  closeAfter(): void {
    this.client.closeAfter();
  }

  sendHead(status: number, reason: string | undefined, headers: readonly string[], whole?: boolean): void {
    const facts: CacheStatusFacts = { ...this.facts, fwdStatus: status };
    if (this.mode === 'store') this.recording = this.startRecording(status, headers);
    if (this.recording) {
      // The cache sets out to store it (a body of unknown length that outgrows the object limit
      // is let go part way, after this was said: docs/caching.md).
      facts.stored = true;
      facts.ttl = this.policy!.maxAge() - this.policy!.age();
    } else {
      this.cache.release(this);
    }
    if (this.mode === 'invalidate' && status < 400) this.cache.invalidate(this.key, headers);
    this.client.sendHead(
      status,
      reason,
      [...headers, 'cache-status', serializeCacheStatus(this.cache.proxyName, facts)],
      whole,
    );
  }

  sendBody(chunk: Buffer): boolean {
    if (this.recording) this.record(chunk);
    return this.client.sendBody(chunk);
  }

  finish(body?: string | Buffer, trailers?: ReadonlyArray<[string, string]>): void {
    if (this.recording) {
      if (body !== undefined) this.record(typeof body === 'string' ? Buffer.from(body) : body);
      if (this.recording) this.commit();
    }
    this.client.finish(body, trailers);
  }

  cut(): void {
    this.abandon();
    this.client.cut();
  }

  /** Stops recording (the answer is being replaced, or the client left): waiters fetch for themselves. */
  abandon(): void {
    this.stopRecording();
    this.cache.release(this);
  }

  private stopRecording(): void {
    this.recording = false;
    this.chunks = [];
    this.cache.recordingDone(this.bytes);
    this.bytes = 0;
  }

  private startRecording(status: number, headers: readonly string[]): boolean {
    this.status = status;
    const fields = fieldsObject(headers, PER_REQUEST);
    this.policy = storablePolicy(this.request, status, fields, this.cache.maxObjectSize);
    return this.policy !== undefined;
  }

  private record(chunk: Buffer): void {
    // Too large to keep, or the route's answers being recorded at once would hold more than its
    // cache may: it streams on uncached, and nothing more is held in memory.
    if (this.bytes + chunk.length > this.cache.maxObjectSize || !this.cache.recording(chunk.length)) {
      this.abandon();
      return;
    }
    this.bytes += chunk.length;
    this.chunks.push(chunk);
  }

  private commit(): void {
    const policy = this.policy!;
    const fields = varyFieldsOf(policy.responseHeaders().vary);
    // A copy either way: a chunk is a view into the socket's read buffer, which a stored slice
    // would keep alive (all of it) for as long as the entry lives.
    const body = this.chunks.length === 1 ? Buffer.from(this.chunks[0]!) : Buffer.concat(this.chunks, this.bytes);
    this.stopRecording();
    this.cache.keep(
      this,
      new StoredResponse(policy, this.status, body, fields, varyKeyOf(fields, this.request.headers)),
    );
  }
}
