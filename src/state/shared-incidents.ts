/**
 * Incidents as the fleet saw them, kept across restarts. Each instance appends its incidents to
 * a bounded list in the store when they open and close (and again every half minute while open,
 * so the others know it is still being seen), and reads the list back at start and every few
 * seconds: the status page then lists every instance's incidents, and yesterday's outage is still
 * there after a deploy. An open incident nobody has reported for two minutes (its instance
 * stopped) is shown as over at the time it was last seen.
 */
import type { Incident, IncidentDetector } from '../observe/incidents.js';
import type { StoreLink } from './link.js';

const KEY = 'incidents';
/** Records kept in the store: each incident is there two or three times (opened, seen, closed). */
const KEEP_RECORDS = 500;
const READ_EVERY_MS = 5000;
const REPORT_OPEN_EVERY_MS = 30_000;
const STALE_AFTER_MS = 120_000;

interface IncidentRecord extends Incident {
  instance: string;
  /** When its instance last reported it, ms since the epoch. */
  seen: number;
}

export class SharedIncidents {
  private readTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: StoreLink,
    private readonly detector: IncidentDetector,
  ) {
    link.onRecovered(() => void this.read());
  }

  async start(): Promise<void> {
    this.readTimer = setInterval(() => void this.read(), READ_EVERY_MS).unref();
    this.reportTimer = setInterval(() => {
      for (const i of this.detector.ongoing()) this.changed(i);
    }, REPORT_OPEN_EVERY_MS).unref();
    await this.read();
  }

  stop(): void {
    clearInterval(this.readTimer);
    clearInterval(this.reportTimer);
  }

  /** An incident of this instance opened, closed or is still open: the store gets its state now. */
  changed(incident: Incident): void {
    const record: IncidentRecord = { ...incident, instance: this.link.instance, seen: Date.now() };
    const value = JSON.stringify(record);
    this.link.write(`${KEY}:${incident.id}`, 'append', (s) => s.append(KEY, value, KEEP_RECORDS));
  }

  /** Takes the fleet's incidents from the store: the latest record of each, this process's own left out. */
  async read(): Promise<void> {
    let raw: string[];
    try {
      raw = await this.link.call('recent', (s) => s.recent(KEY, KEEP_RECORDS));
    } catch {
      return; // The incidents already remembered stay.
    }
    const latest = new Map<string, IncidentRecord>();
    for (const line of raw) {
      try {
        const r = JSON.parse(line) as IncidentRecord;
        if (r.instance !== this.link.instance) latest.set(`${r.instance}/${r.id}`, r);
      } catch {
        // A record this version cannot read is skipped, not fatal.
      }
    }
    const now = Date.now();
    this.detector.remember(
      [...latest.values()].map(({ instance: _, seen, ...incident }) =>
        incident.end === null && now - seen > STALE_AFTER_MS ? { ...incident, end: seen } : incident,
      ),
    );
  }
}
