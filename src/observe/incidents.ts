/**
 * Incidents the gateway itself observed: episodes of elevated failure on a route. Failures are
 * what a listener saw break — a failed answer or a stream cut part way (./outcome.ts); requests
 * shed at a limit with Retry-After are not failures and never open one, however many (an
 * overload spike makes a service busy, which the status page shows apart). One opens when,
 * over the last 30 s, at least 5% of a route's requests (and at least 5 of them) failed; it
 * closes once the failure rate stayed under 1% for a minute. Each carries its start, end, the
 * worst rate seen and its cause — the failure kind behind most of its errors — so the status
 * page can say "connection_refused from the music service, 14:02–14:09". With a shared store the
 * list is the fleet's: the incidents other instances (and this one before a restart) recorded
 * are `remember`ed beside this process's own (../state/shared-incidents.ts).
 */
import type { Timeline, TimelinePoint } from './timeline.js';

const WINDOW_MS = 30_000;
const CALM_MS = 60_000;
const OPEN_RATE = 0.05;
const OPEN_MIN_ERRORS = 5;
const CALM_RATE = 0.01;
const KEEP = 50;

export interface Incident {
  id: number;
  route: string;
  /** ms since the epoch. */
  start: number;
  end: number | null;
  cause: string;
  errors: number;
  requests: number;
  peakErrorRate: number;
}

interface Open {
  incident: Incident;
  causes: Map<string, number>;
  calmSince: number | null;
}

export class IncidentDetector {
  private readonly open = new Map<string, Open>();
  private readonly closed: Incident[] = [];
  /** Incidents the fleet's store holds that this process did not see itself. */
  private remembered: Incident[] = [];
  /** Ids from the clock: a restarted process, or another instance, does not reuse them. */
  private nextId = Date.now();

  constructor(
    private readonly timeline: Timeline,
    private readonly onChange: (incident: Incident, opened: boolean) => void = () => undefined,
  ) {
    timeline.onStep((t) => this.evaluate(t));
  }

  /** Open incidents first, then the most recent closed ones (the fleet's, when it shares a store). */
  list(): Incident[] {
    const own = [...[...this.open.values()].map((o) => o.incident), ...[...this.closed].reverse()];
    if (this.remembered.length === 0) return own;
    const all = [...own, ...this.remembered];
    const ongoing = all.filter((i) => i.end === null).sort((a, b) => b.start - a.start);
    const over = all.filter((i) => i.end !== null).sort((a, b) => b.start - a.start);
    return [...ongoing, ...over.slice(0, KEEP)];
  }

  /** This process's incidents still open. */
  ongoing(): Incident[] {
    return [...this.open.values()].map((o) => o.incident);
  }

  /** Incidents recorded elsewhere in the fleet (or before a restart), shown beside this process's own. */
  remember(incidents: Incident[]): void {
    this.remembered = incidents;
  }

  private evaluate(t: number): void {
    const steps = Math.max(1, Math.round(WINDOW_MS / this.timeline.stepMs));
    for (const route of this.timeline.keys()) {
      const window = this.timeline.series(route, steps);
      const last = window[window.length - 1];
      if (last === undefined) continue;
      let requests = 0;
      let errors = 0;
      for (const p of window) {
        requests += p.requests;
        errors += p.errors;
      }
      const rate = requests === 0 ? 0 : errors / requests;
      const current = this.open.get(route);
      if (current === undefined) {
        if (errors >= OPEN_MIN_ERRORS && rate >= OPEN_RATE) this.openIncident(route, window, rate);
        continue;
      }
      this.add(current, last);
      current.incident.peakErrorRate = Math.max(current.incident.peakErrorRate, rate);
      if (rate < CALM_RATE) {
        current.calmSince ??= t;
        if (t + this.timeline.stepMs - current.calmSince >= CALM_MS) this.closeIncident(route, current);
      } else {
        current.calmSince = null;
      }
    }
  }

  private openIncident(route: string, window: TimelinePoint[], rate: number): void {
    const firstBad = window.find((p) => p.errors > 0) ?? window[0]!;
    const o: Open = {
      incident: {
        id: this.nextId++,
        route,
        start: firstBad.t,
        end: null,
        cause: '',
        errors: 0,
        requests: 0,
        peakErrorRate: rate,
      },
      causes: new Map(),
      calmSince: null,
    };
    for (const p of window) if (p.t >= firstBad.t) this.add(o, p);
    this.open.set(route, o);
    this.onChange(o.incident, true);
  }

  private add(o: Open, p: TimelinePoint): void {
    o.incident.requests += p.requests;
    o.incident.errors += p.errors;
    for (const [k, v] of Object.entries(p.causes)) o.causes.set(k, (o.causes.get(k) ?? 0) + v);
    let best = '';
    let most = 0;
    for (const [k, v] of o.causes)
      if (v > most) {
        best = k;
        most = v;
      }
    o.incident.cause = best;
  }

  private closeIncident(route: string, o: Open): void {
    o.incident.end = o.calmSince;
    this.open.delete(route);
    this.closed.push(o.incident);
    if (this.closed.length > KEEP) this.closed.shift();
    this.onChange(o.incident, false);
  }
}
