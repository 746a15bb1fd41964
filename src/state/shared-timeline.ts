/**
 * The status timeline as the fleet saw it, kept across restarts. Each gateway process appends
 * every step it closes (its routes' points, the ones with traffic) to a bounded list in the
 * store and announces it on a channel; every process's view — what the status page, its live
 * updates and /api/status draw — is its own timeline plus every other process's steps, summed by
 * step start time. At start, and when the store answers again after an outage, the list is read
 * back: a restarted instance draws the hour it missed, and steps made during an outage (kept and
 * appended when the store returns) fill the gap everyone else saw.
 *
 * Steps start on wall-clock boundaries (multiples of the step since the epoch), so instances
 * whose clocks differ a little still name a step alike. A step of another instance that arrives
 * ahead of this one's clock is held until this process closes the same step (up to a minute
 * ahead; further is a broken clock, and dropped); one that arrives after this process announced
 * that step to the status page (a clock behind, an outage's backlog) is added where it belongs
 * and the page is sent the whole hour again. Steps older than the hour age out; an instance that
 * stops simply stops adding steps. An announcement lost (a subscriber reconnecting) is made up
 * for by reading the last steps again every minute or so. A worker's steps reach the machine's
 * other workers over IPC too (../workers/link.ts), so the machine's view holds while the store
 * is away; both ways carry the worker's name in the machine, and a step that comes both ways
 * counts once.
 */
import type { Timeline, TimelinePoint, TimelineView } from '../observe/timeline.js';
import type { StoreLink } from './link.js';
import type { StateStore } from './store.js';

const KEY = 'timeline';
const CHANNEL = 'timeline';
/** How long after its own step closes a process waits for the others' before announcing it. */
const SETTLE_MS = 500;
/** A step from further ahead of this clock is dropped: that instance's clock is wrong. */
const MAX_AHEAD_MS = 60_000;
/**
 * The list's bound, whatever the count of processes: an hour of 5 s steps for 34 processes.
 * A larger fleet reads back less than the hour at start; it still sees every step live.
 */
const MAX_RECORDS = 25_000;
/** Every this many steps the last few are read again, in case an announcement was lost. */
const CATCH_UP_STEPS = 12;
/** How long after the store came back the others' outage steps are read once more. */
const AFTER_RECOVERY_MS = 2500;
/** Records read back per turn of the event loop (a few milliseconds' work). */
const READ_SLICE = 100;

/** A route's point in a record: requests, errors, shed, prevented, p99 time to first byte, failure kinds. */
type PackedPoint = [number, number, number, number, number | null, Record<string, number>?];

/** One process's closed step, as it travels through the store. */
interface StepRecord {
  /** The process that closed it (the link's instance): its own records are not counted twice. */
  i: string;
  /** Whose steps these are in the view: the process, or for a worker its machine and slot. */
  s: string;
  /** The step's length: a record made with another length is not summed with these. */
  ms: number;
  /** The step's start, ms since the epoch. */
  t: number;
  /** Route → its point, for the routes that had requests. */
  r: Record<string, PackedPoint>;
}

export class FleetTimeline implements TimelineView {
  /** Other processes' closed steps: source → step start → route → point. */
  private readonly peers = new Map<string, Map<number, Map<string, TimelinePoint>>>();
  private readonly listeners = new Set<(t: number) => void>();
  /** This process's steps not yet in the store (an outage's backlog), oldest first. */
  private readonly unsent: StepRecord[] = [];
  private sending: Promise<void> | undefined;
  /** The instances counted at each of the hour's steps: the list keeps an hour of the most. */
  private readonly counted: number[] = [];
  /** The newest step closed here, and the newest announced to the status page. */
  private closed: number;
  private announced: number;
  private subscribed = false;
  /** Steps closed since start. */
  private steps = 0;
  private stopOwn: (() => void) | undefined;
  /** Grows whenever steps already announced change (late steps, a read back): pages redraw the hour. */
  revision = 0;

  constructor(
    private readonly link: StoreLink,
    private readonly own: Timeline,
    /** This process's name in the view (a worker's names its machine and slot). */
    private readonly source: string = link.instance,
  ) {
    const step = own.stepMs;
    this.closed = Math.floor(Date.now() / step) * step - step;
    this.announced = this.closed;
    link.onRecovered(() => {
      if (!this.subscribed) this.subscribe();
      void this.read();
      // The others write the steps they closed during the outage once they find the store again
      // (within their next heartbeat), maybe after this read and before their subscribers are
      // back: their records are read once more a moment later rather than at the next catch-up.
      setTimeout(() => void this.catchUp(), AFTER_RECOVERY_MS).unref();
    });
  }

  get stepMs(): number {
    return this.own.stepMs;
  }

  /** Starts sharing: subscribes, reads the fleet's hour back (never longer than the store's deadline). */
  async start(): Promise<void> {
    this.stopOwn ??= this.own.onStep((t) => this.stepClosed(t));
    this.subscribe();
    await this.read();
  }

  stop(): void {
    this.stopOwn?.();
    this.stopOwn = undefined;
  }

  onStep(listener: (t: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Summed in place, step by step: the hour of a few processes' routes is tens of thousands of
   * points, and the status page asks for it on every load (sumPoints would copy each one).
   */
  series(key?: string, last = this.own.capacity): TimelinePoint[] {
    const step = this.own.stepMs;
    const from = this.closed - (last - 1) * step;
    const sums: Array<TimelinePoint | undefined> = new Array(last);
    const at = (t: number): TimelinePoint | undefined => {
      const i = (t - from) / step;
      if (i < 0 || i >= last) return undefined;
      sums[i] ??= emptyPoint(t);
      return sums[i];
    };
    for (const p of this.own.series(key, last)) addTo(at(p.t), p);
    for (const steps of this.peers.values()) {
      for (let i = 0; i < last; i++) {
        const t = from + i * step;
        const routes = steps.get(t);
        if (routes === undefined) continue;
        if (key !== undefined) {
          const p = routes.get(key);
          if (p !== undefined) addTo(at(t), p);
          continue;
        }
        // A step with no traffic still has its place on the time axis.
        const sum = at(t);
        for (const p of routes.values()) addTo(sum, p);
      }
    }
    return sums.filter((p) => p !== undefined);
  }

  /** Another worker of this machine's closed step (route → point), relayed by the supervisor. */
  relayed(source: string, points: Record<string, TimelinePoint>): void {
    const first = Object.values(points)[0];
    if (first === undefined) return;
    const routes = new Map<string, TimelinePoint>();
    for (const [route, p] of Object.entries(points)) if (p.requests > 0) routes.set(route, p);
    this.take(source, first.t, routes);
  }

  /**
   * Reads the fleet's recent steps back from the store (a slow answer is taken when it comes);
   * this process's own steps of the hour that the store lacks — it came back empty — are written
   * again, so the instances rebuild the fleet's history as they rebuild the rest of its state.
   */
  async read(): Promise<void> {
    let lines: string[];
    try {
      lines = await this.link.call(
        'recent',
        (s) => s.recent(KEY, MAX_RECORDS),
        (late) => void this.readBack(late, true),
      );
    } catch {
      return; // Unreachable or slow: the steps already known stay, and recovery reads again.
    }
    await this.readBack(lines, true);
  }

  /** Reads the last few steps of every process again, in case an announcement was lost. */
  private async catchUp(): Promise<void> {
    const count = Math.min(MAX_RECORDS, 2 * CATCH_UP_STEPS * this.mostInstances());
    try {
      await this.readBack(
        await this.link.call(
          'recent',
          (s) => s.recent(KEY, count),
          (late) => void this.readBack(late, false),
        ),
        false,
      );
    } catch {
      // The next one, or recovery, reads again.
    }
  }

  /**
   * Takes the records read back, a slice per turn of the event loop: an hour of a fleet is
   * thousands of records, and the requests being served must not wait for them all.
   */
  private async readBack(lines: readonly string[], whole: boolean): Promise<void> {
    const stored = new Set<number>();
    for (let i = 0; i < lines.length; i++) {
      if (i > 0 && i % READ_SLICE === 0) await new Promise((r) => setImmediate(r));
      const r = parse(lines[i]!);
      if (r === undefined) continue;
      if (r.i === this.link.instance) stored.add(r.t);
      else this.takeRecord(r);
    }
    // Only the whole list says which of this process's steps the store lacks.
    if (!whole) return;
    for (const r of this.unsent) stored.add(r.t);
    const missing = this.ownRecords().filter((r) => !stored.has(r.t));
    if (missing.length === 0) return;
    this.unsent.push(...missing);
    this.link.write(KEY, 'append', (s) => this.send(s));
  }

  private subscribe(): void {
    this.subscribed = true;
    this.link.store
      .subscribe(CHANNEL, (message) => this.receive(message))
      .catch(() => {
        // Subscribed again when the store is found again.
        this.subscribed = false;
      });
  }

  private stepClosed(t: number): void {
    const step = this.own.stepMs;
    this.closed = t;
    // The hour's window moves on: older steps age out, an instance gone leaves nothing behind.
    const oldest = t - (this.own.capacity - 1) * step;
    for (const [source, steps] of this.peers) {
      for (const at of steps.keys()) if (at < oldest) steps.delete(at);
      if (steps.size === 0) this.peers.delete(source);
    }
    if (++this.steps % CATCH_UP_STEPS === 0) void this.catchUp();
    this.counted.push(this.link.instances);
    if (this.counted.length > this.own.capacity) this.counted.shift();
    this.unsent.push(this.recordOf(t));
    if (this.unsent.length > this.own.capacity) this.unsent.shift();
    this.link.write(KEY, 'append', (s) => this.send(s));
    setTimeout(() => {
      this.announced = t;
      for (const l of this.listeners) l(t);
    }, SETTLE_MS).unref();
  }

  /** This process's step `t`: each route that had requests. */
  private recordOf(t: number): StepRecord {
    const r: Record<string, PackedPoint> = {};
    for (const key of this.own.keys()) {
      const p = this.own.series(key, 1)[0];
      if (p !== undefined && p.t === t && p.requests > 0) r[key] = pack(p);
    }
    return { i: this.link.instance, s: this.source, ms: this.own.stepMs, t, r };
  }

  /** Every step of the hour this process closed, as records. */
  private ownRecords(): StepRecord[] {
    const byTime = new Map<number, StepRecord>();
    for (const key of this.own.keys()) {
      for (const p of this.own.series(key)) {
        let record = byTime.get(p.t);
        if (record === undefined) {
          record = { i: this.link.instance, s: this.source, ms: this.own.stepMs, t: p.t, r: {} };
          byTime.set(p.t, record);
        }
        if (p.requests > 0) record.r[key] = pack(p);
      }
    }
    return [...byTime.values()].sort((x, y) => x.t - y.t);
  }

  /**
   * Appends and announces the steps not yet sent, oldest first; one pass at a time (the link
   * may call again while a long backlog is still going out).
   */
  private send(store: StateStore): Promise<void> {
    this.sending ??= (async () => {
      try {
        while (this.unsent.length > 0) {
          const record = this.unsent[0]!;
          const text = JSON.stringify(record);
          await store.append(KEY, text, this.keep());
          await store.publish(CHANNEL, text);
          // Gone already when an outage's backlog outgrew the hour.
          const sent = this.unsent.indexOf(record);
          if (sent >= 0) this.unsent.splice(sent, 1);
        }
      } finally {
        this.sending = undefined;
      }
    })();
    return this.sending;
  }

  /** An hour of steps of the most processes counted in the hour (one more: a restart overlaps). */
  private keep(): number {
    return Math.min(MAX_RECORDS, this.own.capacity * (this.mostInstances() + 1));
  }

  private mostInstances(): number {
    let most = this.link.instances;
    for (const n of this.counted) if (n > most) most = n;
    return most;
  }

  private receive(message: string): void {
    const r = parse(message);
    if (r !== undefined && r.i !== this.link.instance) this.takeRecord(r);
  }

  private takeRecord(r: StepRecord): void {
    if (r.ms !== this.own.stepMs || typeof r.s !== 'string' || typeof r.r !== 'object' || r.r === null) return;
    const routes = new Map<string, TimelinePoint>();
    for (const [route, p] of Object.entries(r.r)) {
      if (!Array.isArray(p) || p.slice(0, 4).some((n) => typeof n !== 'number')) continue;
      const [requests, errors, shed, prevented, ttfbP99, causes] = p;
      routes.set(route, {
        t: r.t,
        requests,
        errors,
        shed,
        prevented,
        ttfbP99: typeof ttfbP99 === 'number' ? ttfbP99 : null,
        causes: typeof causes === 'object' && causes !== null ? causes : {},
      });
    }
    this.take(r.s, r.t, routes);
  }

  /**
   * Keeps `source`'s step `t`, if it belongs in the hour; the same step again (both ways from a
   * worker, or read back after it came live) replaces it. A worker's own name may come back from
   * the store: its predecessor in the same slot, whose steps count like any other's.
   */
  private take(source: string, t: number, routes: Map<string, TimelinePoint>): void {
    const step = this.own.stepMs;
    if (!Number.isInteger(t) || t % step !== 0) return;
    if (t <= this.closed - this.own.capacity * step || t > Date.now() + MAX_AHEAD_MS) return;
    let steps = this.peers.get(source);
    if (steps === undefined) {
      steps = new Map();
      this.peers.set(source, steps);
    }
    // A step new here that pages already drew without: they get the hour again.
    if (!steps.has(t) && t <= this.announced) this.revision++;
    steps.set(t, routes);
  }
}

/** A record as another process wrote it; undefined when this version cannot read it (skipped, not fatal). */
function parse(text: string): StepRecord | undefined {
  try {
    const r = JSON.parse(text) as StepRecord;
    return typeof r === 'object' && r !== null ? r : undefined;
  } catch {
    return undefined;
  }
}

function pack(p: TimelinePoint): PackedPoint {
  const packed: PackedPoint = [p.requests, p.errors, p.shed, p.prevented, p.ttfbP99];
  if (p.errors > 0) packed.push(p.causes);
  return packed;
}

/** Adds `p` to `sum`: counts add up, the worst p99 stands for the whole (as in sumPoints). */
function addTo(sum: TimelinePoint | undefined, p: TimelinePoint): void {
  if (sum === undefined) return;
  sum.requests += p.requests;
  sum.errors += p.errors;
  sum.shed += p.shed;
  sum.prevented += p.prevented;
  if (p.ttfbP99 !== null && (sum.ttfbP99 === null || p.ttfbP99 > sum.ttfbP99)) sum.ttfbP99 = p.ttfbP99;
  for (const kind in p.causes) sum.causes[kind] = (sum.causes[kind] ?? 0) + p.causes[kind]!;
}

function emptyPoint(t: number): TimelinePoint {
  return { t, requests: 0, errors: 0, shed: 0, prevented: 0, ttfbP99: null, causes: {} };
}
