/**
 * Admission to an upstream pool: at most `limit` requests wait for an answer at once (the
 * limit learned by ./gradient-limit.ts); the others wait in a bounded queue, highest
 * priority first and first come first served within a priority.
 *
 * A request is shed at once — never after sitting out a timeout — when the queue is full,
 * or when its predicted wait is longer than `maxWait`. The prediction is Little's law: the
 * pool finishes about limit / rtt requests per ms, so the n-th in line waits n × rtt / limit.
 * A sweep every 10 ms sheds whoever has waited past `maxWait` all the same, for when the
 * pool slows down after they joined. A request of higher priority may take the place of
 * the newest lower-priority one in a full queue.
 *
 * A slot is held from admission until the response headers arrive (or the request ends):
 * long streams do not occupy the limit, which measures what the hosts queue — the time
 * to an answer.
 */
import { GradientLimit, type GradientLimitSettings } from './gradient-limit.js';

export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export type ShedReason = 'queue_full' | 'wait_too_long' | 'deadline';

/** What the gate calls back for a queued request: admitted, or shed after all. */
export interface GateEvents<T> {
  admit(item: T, waitedMs: number): void;
  shed(item: T, reason: ShedReason): void;
}

/** A request waiting in the queue; `cancel()` it when the client leaves. */
export class Waiter<T> {
  cancelled = false;
  constructor(
    readonly item: T,
    readonly priority: number,
    readonly since: number,
    readonly events: GateEvents<T>,
  ) {}
}

export interface GateSettings extends GradientLimitSettings {
  queueSize: number;
  maxWait: number;
}

const SWEEP_EVERY_MS = 10;

export class ConcurrencyGate {
  readonly limit: GradientLimit;
  inFlight = 0;
  /** Waiters not cancelled, across priorities. */
  waiting = 0;
  /** One FIFO per priority (index 0 = high). */
  private readonly queues: Array<Array<Waiter<unknown>>> = PRIORITIES.map(() => []);
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly settings: GateSettings) {
    this.limit = new GradientLimit(settings);
  }

  /**
   * Admits a request (true), queues it (a Waiter), or tells why it is shed. The fast path —
   * room under the limit and nobody waiting — allocates nothing.
   */
  enter<T>(item: T, priority: number, events: GateEvents<T>, now: number): true | Waiter<T> | ShedReason {
    if (this.waiting === 0 && this.inFlight < this.limit.current) {
      this.inFlight++;
      this.limit.noteInFlight(this.inFlight);
      return true;
    }
    let ahead = 0;
    for (let p = 0; p <= priority; p++) ahead += this.queues[p]!.length;
    const rtt = this.limit.rttMs;
    if (rtt > 0 && ((ahead + 1) * rtt) / this.limit.current > this.settings.maxWait) return 'wait_too_long';
    if (this.waiting >= this.settings.queueSize && !this.evictBelow(priority)) return 'queue_full';
    const waiter = new Waiter(item, priority, now, events);
    this.queues[priority]!.push(waiter as Waiter<unknown>);
    this.waiting++;
    this.sweeper ??= setTimeout(sweep, SWEEP_EVERY_MS, this);
    return waiter;
  }

  /** The client left while waiting. */
  cancel(waiter: Waiter<unknown>): void {
    if (waiter.cancelled) return;
    waiter.cancelled = true;
    this.waiting--;
  }

  /** A request admitted earlier got its answer (or ended): its slot goes to the next in line. */
  leave(now: number): void {
    this.inFlight--;
    this.admitWaiting(now);
  }

  /** Feeds the limit with one answer's time to headers. */
  sample(ms: number, now: number): void {
    if (this.limit.sample(ms, now)) this.admitWaiting(now);
  }

  close(): void {
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
  }

  private admitWaiting(now: number): void {
    while (this.waiting > 0 && this.inFlight < this.limit.current) {
      const w = this.next();
      if (w === undefined) return;
      this.inFlight++;
      this.limit.noteInFlight(this.inFlight);
      w.events.admit(w.item, now - w.since);
    }
  }

  private next(): Waiter<unknown> | undefined {
    for (const q of this.queues) {
      while (q.length > 0) {
        const w = q.shift()!;
        if (w.cancelled) continue;
        this.waiting--;
        return w;
      }
    }
    return undefined;
  }

  /** Makes room in a full queue by shedding the newest waiter of a lower priority; false if none. */
  private evictBelow(priority: number): boolean {
    for (let p = this.queues.length - 1; p > priority; p--) {
      const q = this.queues[p]!;
      while (q.length > 0) {
        const w = q.pop()!;
        if (w.cancelled) continue;
        this.waiting--;
        w.events.shed(w.item, 'queue_full');
        return true;
      }
    }
    return false;
  }

  /** Sheds whoever waited past maxWait. */
  sweepExpired(now: number): void {
    const oldest = now - this.settings.maxWait;
    for (const q of this.queues) {
      while (q.length > 0 && (q[0]!.cancelled || q[0]!.since <= oldest)) {
        const w = q.shift()!;
        if (w.cancelled) continue;
        this.waiting--;
        w.events.shed(w.item, 'deadline');
      }
    }
  }

  /** The sweeper is re-armed while anyone waits; cancelled entries are dropped on the way. */
  rearm(): void {
    this.sweeper = this.waiting > 0 ? setTimeout(sweep, SWEEP_EVERY_MS, this) : undefined;
    if (this.waiting === 0) for (const q of this.queues) q.length = 0;
  }
}

/** An upstream's concurrency gate as the metrics and the status API show it. */
export interface GateState {
  upstream: string;
  limit: number;
  inFlight: number;
  waiting: number;
  minRttMs: number;
  rttMs: number;
  probing: boolean;
}

export function describeGate(upstream: string, gate: ConcurrencyGate): GateState {
  const l = gate.limit;
  return {
    upstream,
    limit: l.current,
    inFlight: gate.inFlight,
    waiting: gate.waiting,
    minRttMs: tenths(l.minRttMs),
    rttMs: tenths(l.rttMs),
    probing: l.probing,
  };
}

function tenths(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function sweep(gate: ConcurrencyGate): void {
  gate.sweepExpired(performance.now());
  gate.rearm();
}
