/**
 * A worker's line to its supervisor: what the worker's gateway needs to act as part of one
 * machine. The admin API, whichever worker a connection lands on, gathers every worker's report
 * through it (for /metrics and /api/status), passes its changes on to the other workers, and
 * asks for a reload of the whole machine; the status timeline learns the other workers' steps
 * (they also come through the store, but this way they hold while a fleet's Redis is away).
 * Requests never touch it: nothing here is on the hot path.
 */
import { hostname } from 'node:os';
import { ConfigError } from '../config/load.js';
import type { Timeline, TimelinePoint } from '../observe/timeline.js';
import type { AdminChange, SupervisorMessage, WorkerMessage, WorkerReport, WorkerView } from './protocol.js';

/** What a worker's gateway offers the link: applying others' changes, and its own report. */
export interface WorkerHandlers {
  applyChange(change: AdminChange): void;
  report(): Promise<WorkerReport>;
}

export interface WorkerLink {
  /** This worker's slot (1…N): the `worker` label of its log lines and of its per-worker series. */
  readonly id: number;
  /**
   * Bind the listeners with SO_REUSEPORT, each worker its own sockets (Linux and FreeBSD);
   * otherwise node:cluster's supervisor holds them and hands connections round-robin.
   */
  readonly reusePort: boolean;
  /** Every worker slot as the supervisor knows it, with the report of each that answered in time. */
  gather(): Promise<WorkerView[]>;
  /** Has a change applied here applied on every other worker too; resolves once they all have. */
  broadcast(change: AdminChange): Promise<void>;
  /** Asks the supervisor to reload every worker; rejects with a ConfigError when the file is invalid. */
  reloadMachine(): Promise<void>;
  /**
   * This worker's name in the status timeline: its machine (host and supervisor) and slot, alike
   * whether its steps come over IPC or through the store, so that they count once.
   */
  readonly timelineSource: string;
  /** Sends each step `own` closes to the other workers, and hands theirs to `received` (by source). */
  relaySteps(own: Timeline, received: (source: string, points: Record<string, TimelinePoint>) => void): void;
  /** Called once by the gateway that runs in this worker. */
  attach(handlers: WorkerHandlers): void;
}

/** Where SO_REUSEPORT spreads connections over the sockets bound to one address. */
const REUSE_PORT_PLATFORMS = new Set<string>(['linux', 'freebsd']);

/** How long a worker waits for the supervisor's answer before it gives up on a request. */
const ANSWER_MS = 5000;

interface Pending {
  resolve(message: SupervisorMessage): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** The link over node:cluster's IPC channel (`process.send` and `process.on('message')`). */
export class SupervisorLink implements WorkerLink {
  private handlers: WorkerHandlers | undefined;
  private received: ((source: string, points: Record<string, TimelinePoint>) => void) | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  readonly reusePort = REUSE_PORT_PLATFORMS.has(process.platform);
  /** The machine: this host, and the supervisor all its workers share. */
  private readonly machine = `${hostname()}:${process.ppid}`;

  constructor(readonly id: number) {
    process.on('message', (m: SupervisorMessage) => this.receive(m));
  }

  attach(handlers: WorkerHandlers): void {
    this.handlers = handlers;
  }

  get timelineSource(): string {
    return this.sourceOf(this.id);
  }

  relaySteps(own: Timeline, received: (source: string, points: Record<string, TimelinePoint>) => void): void {
    this.received = received;
    own.onStep(() => this.send({ t: 'step', points: lastStep(own) }));
  }

  private sourceOf(worker: number): string {
    return `${this.machine}/w${worker}`;
  }

  async gather(): Promise<WorkerView[]> {
    const id = this.nextId++;
    const answer = await this.ask(id, { t: 'gather', id });
    return answer.t === 'gathered' ? answer.workers : [];
  }

  async broadcast(change: AdminChange): Promise<void> {
    const id = this.nextId++;
    await this.ask(id, { t: 'broadcast', id, change });
  }

  async reloadMachine(): Promise<void> {
    const id = this.nextId++;
    const answer = await this.ask(id, { t: 'reload-request', id });
    if (answer.t !== 'reloaded') return;
    if (answer.problems !== undefined) throw new ConfigError(answer.problems);
    if (!answer.ok) throw new Error(`the new configuration is in force on ${answer.applied} of ${answer.of} workers`);
  }

  /**
   * Applies the admin changes made on the machine before this worker started (a restarted
   * worker holds the maintenance switch the others hold); called before it listens.
   */
  async catchUp(): Promise<void> {
    const id = this.nextId++;
    const answer = await this.ask(id, { t: 'catch-up', id });
    if (answer.t === 'caught-up') for (const change of answer.changes) this.handlers?.applyChange(change);
  }

  /** Tells the supervisor that this worker serves its listeners. */
  listening(listen: string[], admin: string | undefined): void {
    this.send({ t: 'listening', listen, admin });
  }

  private ask(id: number, message: WorkerMessage): Promise<SupervisorMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the supervisor did not answer'));
      }, ANSWER_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.send(message);
    });
  }

  private send(message: WorkerMessage): void {
    // A worker whose supervisor is gone is draining anyway (see ./worker.ts).
    if (process.connected) process.send?.(message);
  }

  private receive(m: SupervisorMessage): void {
    switch (m.t) {
      case 'gathered':
      case 'caught-up':
      case 'broadcasted':
      case 'reloaded': {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m);
        return;
      }
      case 'report':
        void this.handlers?.report().then((report) => this.send({ t: 'reported', id: m.id, report }));
        return;
      case 'change':
        this.handlers?.applyChange(m.change);
        this.send({ t: 'applied', id: m.id });
        return;
      case 'step':
        this.received?.(this.sourceOf(m.worker), m.points);
        return;
      case 'reload':
        // Handled by ./worker.ts, which owns the gateway.
        return;
    }
  }
}

/** The newest closed step of every route of `timeline`, to send to the other workers. */
function lastStep(timeline: Timeline): Record<string, TimelinePoint> {
  const points: Record<string, TimelinePoint> = {};
  for (const key of timeline.keys()) {
    const p = timeline.series(key, 1)[0];
    if (p !== undefined) points[key] = p;
  }
  return points;
}
