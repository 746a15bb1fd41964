/**
 * The last hour of traffic, per route, in fixed steps (5 s by default): requests, errors
 * (failures a listener saw — broken answers and cut streams, see ./outcome.ts), requests shed
 * at a limit with Retry-After (counted apart: turned away, not broken), the failure kinds
 * behind the errors, and the 99th percentile of time to first byte. The status page draws it and the
 * incident detector reads it. Recording a request is a Map lookup, a few additions and a
 * log-scale bucket index; percentiles are computed once per step, when the step closes.
 */

import { isListenerFailure, type Outcome } from './outcome.js';

/** Time-to-first-byte buckets grow by 10%: the p99 read from them is within 10% of the truth. */
const GROWTH = Math.log(1.1);
const BUCKETS = 160; // 0.1 ms … ~400 s

export interface TimelinePoint {
  /** Start of the step, ms since the epoch. */
  t: number;
  requests: number;
  /** Failures a listener saw: broken answers and cut streams. */
  errors: number;
  /** Requests turned away at once with Retry-After (the service at its limit). */
  shed: number;
  /** Errors prevented: a stored copy answered in place of a 502/503/504 (stale-if-error). */
  prevented: number;
  /** p99 time to first byte (the answer's status and headers) in ms; null when there were no requests. */
  ttfbP99: number | null;
  /** Failure kinds of the errors, by count. */
  causes: Record<string, number>;
}

class StepCounts {
  requests = 0;
  errors = 0;
  shed = 0;
  prevented = 0;
  readonly firstByte = new Uint32Array(BUCKETS);
  causes: Map<string, number> | undefined = undefined;

  reset(): void {
    this.requests = 0;
    this.errors = 0;
    this.shed = 0;
    this.prevented = 0;
    this.firstByte.fill(0);
    this.causes = undefined;
  }

  close(t: number): TimelinePoint {
    const causes: Record<string, number> = {};
    if (this.causes) for (const [k, v] of this.causes) causes[k] = v;
    return {
      t,
      requests: this.requests,
      errors: this.errors,
      shed: this.shed,
      prevented: this.prevented,
      ttfbP99: percentile(this.firstByte, this.requests, 0.99),
      causes,
    };
  }
}

/** What the status page reads of a timeline: one process's (Timeline), or the fleet's (state/shared-timeline.ts). */
export interface TimelineView {
  readonly stepMs: number;
  /** The closed steps of one key (oldest first), or of all keys summed; only the newest `last` when given. */
  series(key?: string, last?: number): TimelinePoint[];
  /** Called with the start time of each step as it closes. */
  onStep(listener: (t: number) => void): () => void;
  /** Changes when steps already announced change (a fleet's late steps): a chart draws the hour again. */
  readonly revision?: number;
}

/**
 * Lists of points summed step by step (by start time), oldest first: several routes' into
 * the whole's, or several processes' into the fleet's.
 */
export function sumPoints(lists: ReadonlyArray<readonly TimelinePoint[]>): TimelinePoint[] {
  const byTime = new Map<number, TimelinePoint>();
  for (const points of lists) {
    for (const p of points) {
      const sum = byTime.get(p.t);
      if (sum === undefined) {
        byTime.set(p.t, { ...p, causes: { ...p.causes } });
        continue;
      }
      sum.requests += p.requests;
      sum.errors += p.errors;
      sum.shed += p.shed;
      sum.prevented += p.prevented;
      // The worst part's p99 is an upper bound of the whole's; close enough for a chart.
      sum.ttfbP99 =
        sum.ttfbP99 === null ? p.ttfbP99 : p.ttfbP99 === null ? sum.ttfbP99 : Math.max(sum.ttfbP99, p.ttfbP99);
      for (const [k, v] of Object.entries(p.causes)) sum.causes[k] = (sum.causes[k] ?? 0) + v;
    }
  }
  return [...byTime.values()].sort((a, b) => a.t - b.t);
}

export class Timeline implements TimelineView {
  private readonly current = new Map<string, StepCounts>();
  private readonly history = new Map<string, TimelinePoint[]>();
  private stepStart: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(t: number) => void>();
  readonly capacity: number;

  constructor(
    readonly stepMs = 5000,
    keepMs = 3_600_000,
  ) {
    this.capacity = Math.ceil(keepMs / stepMs);
    this.stepStart = Math.floor(Date.now() / stepMs) * stepMs;
  }

  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.closeStep();
      this.timer = setTimeout(tick, this.untilNextStep()).unref();
    };
    this.timer = setTimeout(tick, this.untilNextStep()).unref();
  }

  /** Never negative: a step closed late (a busy event loop) is followed at once, without a warning. */
  private untilNextStep(): number {
    return Math.max(0, this.stepStart + this.stepMs - Date.now());
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Called with the start time of each step as it closes. */
  onStep(listener: (t: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * `cause` names an error's failure kind (or `status_503` for an upstream's own 5xx);
   * `ttfbMs` is the time to the answer's status and headers.
   */
  record(key: string, outcome: Outcome, cause: string, ttfbMs: number, prevented = false): void {
    let c = this.current.get(key);
    if (c === undefined) {
      c = new StepCounts();
      this.current.set(key, c);
    }
    c.requests++;
    if (prevented) c.prevented++;
    if (outcome === 'shed') c.shed++;
    else if (isListenerFailure(outcome)) {
      c.errors++;
      c.causes ??= new Map();
      c.causes.set(cause, (c.causes.get(cause) ?? 0) + 1);
    }
    const i = ttfbMs <= 0.1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ttfbMs * 10) / GROWTH));
    c.firstByte[i]!++;
  }

  /**
   * The closed steps of one key (oldest first), or of all keys summed when key is undefined;
   * only the newest `last` steps when given (a live update needs one, not the hour).
   */
  series(key?: string, last = this.capacity): TimelinePoint[] {
    if (key !== undefined) return (this.history.get(key) ?? []).slice(-last);
    return sumPoints([...this.history.values()].map((points) => points.slice(-last)));
  }

  keys(): string[] {
    return [...this.history.keys()];
  }

  /** Closes the current step now (the timer does it on time; tests may call it). */
  closeStep(): void {
    const t = this.stepStart;
    this.stepStart += this.stepMs;
    const now = Date.now();
    if (this.stepStart + this.stepMs <= now) this.stepStart = Math.floor(now / this.stepMs) * this.stepMs;
    const keys = new Set([...this.current.keys(), ...this.history.keys()]);
    for (const key of keys) {
      const c = this.current.get(key);
      const point = c ? c.close(t) : { t, requests: 0, errors: 0, shed: 0, prevented: 0, ttfbP99: null, causes: {} };
      c?.reset();
      let h = this.history.get(key);
      if (h === undefined) {
        h = [];
        this.history.set(key, h);
      }
      h.push(point);
      if (h.length > this.capacity) h.splice(0, h.length - this.capacity);
    }
    for (const l of this.listeners) l(t);
  }
}

function percentile(counts: Uint32Array, total: number, p: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(total * p);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return Math.round(Math.exp(i * GROWTH)) / 10;
  }
  return null;
}
