/**
 * The machine's status timeline, as a worker sees it: its own timeline plus every other
 * worker's closed steps, which the supervisor relays as each step closes. Workers close their
 * steps on the same wall-clock boundaries, so a step is the sum of the workers' points with the
 * same start time. The status page is told of a closed step a moment after this worker closes
 * it, once the others' points for it have arrived.
 */
import { sumPoints, type Timeline, type TimelinePoint, type TimelineView } from '../observe/timeline.js';

/** How long after its own step closes a worker waits for the others' points before announcing it. */
const SETTLE_MS = 250;

export class MachineTimeline implements TimelineView {
  /** Other workers' closed steps: worker → route → points, oldest first. */
  private readonly peers = new Map<number, Map<string, TimelinePoint[]>>();
  private readonly listeners = new Set<(t: number) => void>();

  constructor(private readonly own: Timeline) {
    own.onStep((t) => {
      setTimeout(() => {
        for (const l of this.listeners) l(t);
      }, SETTLE_MS).unref();
    });
  }

  get stepMs(): number {
    return this.own.stepMs;
  }

  /** Records another worker's closed step (route → its point). */
  add(worker: number, points: Record<string, TimelinePoint>): void {
    let routes = this.peers.get(worker);
    if (routes === undefined) {
      routes = new Map();
      this.peers.set(worker, routes);
    }
    for (const [route, point] of Object.entries(points)) {
      let list = routes.get(route);
      if (list === undefined) {
        list = [];
        routes.set(route, list);
      }
      list.push(point);
      if (list.length > this.own.capacity) list.splice(0, list.length - this.own.capacity);
    }
  }

  series(key?: string, last = this.own.capacity): TimelinePoint[] {
    const lists: TimelinePoint[][] = [this.own.series(key, last)];
    for (const routes of this.peers.values()) {
      if (key !== undefined) lists.push((routes.get(key) ?? []).slice(-last));
      else for (const list of routes.values()) lists.push(list.slice(-last));
    }
    return sumPoints(lists).slice(-last);
  }

  onStep(listener: (t: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** This worker's newest closed step of every route, to send to the others. */
export function lastStep(timeline: Timeline): Record<string, TimelinePoint> {
  const points: Record<string, TimelinePoint> = {};
  for (const key of timeline.keys()) {
    const p = timeline.series(key, 1)[0];
    if (p !== undefined) points[key] = p;
  }
  return points;
}
