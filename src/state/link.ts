/**
 * The gateway's link to its store, which makes sure the store is never a new way to fail.
 * Every call has a deadline (a few ms): past it the caller goes on from its local view. The
 * link tells reachable from unreachable — at once on a lost connection or an error, after a
 * few timeouts in a row on a slow store — and says so to the metrics and the status view.
 * Writes made while the store is away are kept (the latest per subject) and made again when
 * it answers, so a maintenance switch flipped during an outage reaches the other instances.
 * A heartbeat each second counts the instances alive (what a rate limit's local share divides
 * by) and is the probe that finds the store again.
 */
import { randomBytes } from 'node:crypto';
import type { StateStore, StoreKind, StoreOperation } from './store.js';

export interface StoreHealth {
  kind: StoreKind;
  reachable: boolean;
  /** Since when it has been reachable (or not), ms since the epoch. */
  since: number;
  lastError: string | undefined;
  /** Instances sharing the store, as last counted (1 when it cannot be counted). */
  instances: number;
  /** Writes waiting for the store to answer again. */
  pendingWrites: number;
}

export interface StoreLinkOptions {
  /** Longest wait for any one call. */
  deadlineMs: number;
  /** Counts a failed call (its operation) for the metrics. */
  failed?(op: StoreOperation): void;
  /** Told when the store becomes unreachable or reachable again. */
  changed?(reachable: boolean, reason: string | undefined): void;
}

/**
 * A slow store is unreachable after this many timeouts in a row with no answer for this long (a
 * busy machine misses a deadline now and then); an error says so at once.
 */
const TIMEOUTS_TO_UNREACHABLE = 3;
const SILENCE_TO_UNREACHABLE_MS = 250;
const HEARTBEAT_MS = 1000;
/** An instance that missed three heartbeats is no longer counted. */
const INSTANCE_TTL_MS = 3 * HEARTBEAT_MS;
/** How soon a write that missed its deadline is made again. */
const RETRY_WRITE_MS = 100;
/** Writes kept for an unreachable store, at most (the oldest subjects are dropped beyond it). */
const MAX_PENDING_WRITES = 1000;

/** A store call that did not answer within the deadline (it may still be carried out). */
export class DeadlineExceeded extends Error {}

interface PendingWrite {
  op: StoreOperation;
  fn: (store: StateStore) => Promise<unknown>;
}

export class StoreLink {
  /** This process's name among the instances (random: a restarted process is a new instance). */
  readonly instance = randomBytes(6).toString('hex');
  reachable = false;
  instances = 1;
  private since = Date.now();
  private lastError: string | undefined = undefined;
  private timeoutsInARow = 0;
  private lastAnswer = 0;
  private readonly pending = new Map<string, PendingWrite>();
  private readonly recovered: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(
    readonly store: StateStore,
    private readonly options: StoreLinkOptions,
  ) {
    // Memory answers from the start; Redis and the supervisor earn it with a first answer.
    if (store.kind === 'memory') this.reachable = true;
    store.onConnection((up, reason) => {
      if (!up) this.unreachable(reason ?? 'connection lost');
      else void this.beat();
    });
  }

  /** Starts the heartbeat (which also finds the store again after an outage). */
  start(): void {
    if (this.timer !== undefined) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // A last chance for writes made just before shutdown.
    if (this.reachable && this.pending.size > 0) await this.flush();
  }

  /** Called each time the store answers again after being unreachable (read its state again). */
  onRecovered(listener: () => void): void {
    this.recovered.push(listener);
  }

  /**
   * One call, within the deadline; rejects (and counts) when the store fails or is too slow.
   * `late` gets an answer that came after the deadline (a lease granted is not to be wasted).
   */
  async call<T>(op: StoreOperation, fn: (store: StateStore) => Promise<T>, late?: (value: T) => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let missed = false;
    const deadline = new Promise<never>((_, reject) => {
      // Judged after this turn's I/O: on a busy event loop the timer and the answer are due
      // together, and timers run first — an answer that arrived in time must not lose to them.
      const giveUp = (): void => {
        missed = true;
        reject(new DeadlineExceeded(`no answer within ${this.options.deadlineMs} ms`));
      };
      timer = setTimeout(() => setImmediate(giveUp), this.options.deadlineMs);
    });
    const work = fn(this.store);
    // A late failure is no one's business. A late answer is its caller's, when it wants it, and
    // proof that the store is there: slow (each call still gives up at its deadline), not gone.
    work.then(
      (value) => {
        if (!missed) return;
        this.answered();
        late?.(value);
      },
      () => undefined,
    );
    try {
      const value = await Promise.race([work, deadline]);
      this.answered();
      return value;
    } catch (err) {
      this.options.failed?.(op);
      const message = (err as Error).message || String(err);
      if (err instanceof DeadlineExceeded) {
        this.lastError = `${op}: ${message}`;
        if (
          ++this.timeoutsInARow >= TIMEOUTS_TO_UNREACHABLE &&
          Date.now() - this.lastAnswer > SILENCE_TO_UNREACHABLE_MS
        )
          this.unreachable(this.lastError);
      } else {
        this.unreachable(`${op}: ${message}`);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A write that must reach the store eventually: made now when the store is reachable, else
   * kept under `subject` (a later write of the same subject replaces it) and made on recovery.
   */
  write(subject: string, op: StoreOperation, fn: (store: StateStore) => Promise<unknown>): void {
    this.pending.delete(subject);
    this.pending.set(subject, { op, fn });
    if (this.pending.size > MAX_PENDING_WRITES) this.pending.delete(this.pending.keys().next().value!);
    if (this.reachable) void this.flush();
  }

  /** Whether a write of this subject is still waiting for the store. */
  isPending(subject: string): boolean {
    return this.pending.has(subject);
  }

  health(): StoreHealth {
    return {
      kind: this.store.kind,
      reachable: this.reachable,
      since: this.since,
      lastError: this.lastError,
      instances: this.instances,
      pendingWrites: this.pending.size,
    };
  }

  /** Makes the kept writes in the order they were made; those that fail stay for the next time. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (const [subject, write] of [...this.pending]) {
        if (!this.reachable) return;
        try {
          await this.call(write.op, write.fn);
          if (this.pending.get(subject) === write) this.pending.delete(subject);
        } catch {
          // Too slow this time, the store still there: again shortly (a lost one waits for recovery).
          if (this.reachable) setTimeout(() => void this.flush(), RETRY_WRITE_MS).unref();
          return;
        }
      }
    } finally {
      this.flushing = false;
    }
    // Written while this flush ran.
    if (this.pending.size > 0 && this.reachable) void this.flush();
  }

  private async beat(): Promise<void> {
    try {
      const counted = (n: number): void => {
        this.instances = Math.max(1, n);
      };
      counted(await this.call('heartbeat', (s) => s.heartbeat(this.instance, INSTANCE_TTL_MS), counted));
    } catch {
      // Counted and judged by call(); the next beat tries again.
      return;
    }
    // A write that missed its deadline while the store stayed reachable is made again (each is
    // idempotent, or read back deduplicated).
    if (this.pending.size > 0) void this.flush();
  }

  private answered(): void {
    this.timeoutsInARow = 0;
    this.lastAnswer = Date.now();
    if (this.reachable) return;
    this.reachable = true;
    this.since = Date.now();
    this.options.changed?.(true, undefined);
    void this.flush();
    for (const l of this.recovered) l();
  }

  private unreachable(reason: string): void {
    this.lastError = reason;
    // Already down: `since` keeps the time it went.
    if (!this.reachable) return;
    this.reachable = false;
    this.since = Date.now();
    this.options.changed?.(false, reason);
  }
}
