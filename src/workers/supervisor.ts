/**
 * The supervisor: the `gangway` process when `workers` is above 1. It forks the workers with
 * node:cluster (for the IPC channel and the worker bookkeeping); each worker binds every
 * listener itself with SO_REUSEPORT, so the kernel spreads new connections over the workers
 * and the supervisor is never in a connection's path — a worker that crashes takes only its
 * own socket and its own connections with it, the others keep accepting. (Where SO_REUSEPORT
 * does not balance, node:cluster's supervisor holds the listeners and hands connections on.)
 * It restarts a worker that exits unexpectedly, after a backoff that doubles with each recent
 * crash, and gives up on one that crashes in a loop, saying so. It checks a reloaded
 * configuration once, and only then has every worker apply it; SIGTERM/SIGINT drain every
 * worker, then it exits. It answers no requests itself: it relays between workers what makes
 * the machine one (admin changes, reports for /metrics and /api/status, status steps).
 */
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { CommandIO } from '../cli/main.js';
import { refused } from '../cli/signals.js';
import { watchConfigFile } from '../cli/watch.js';
import { ConfigError, parseConfigText, type ConfigProblem } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { createLog, type Logger } from '../observe/logger.js';
import { storeFromConfig } from '../state/fleet-state.js';
import { MemoryStore } from '../state/memory.js';
import { RedisStore } from '../state/redis.js';
import type { StateStore } from '../state/store.js';
import { serveStore } from '../state/supervisor.js';
import {
  WORKER_SLOT_ENV,
  type AdminChange,
  type SupervisorMessage,
  type WorkerMessage,
  type WorkerReport,
  type WorkerState,
  type WorkerView,
} from './protocol.js';

/** The first restart waits this long; each further crash within CRASH_WINDOW_MS doubles it. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;
/** A worker that crashes this many times within the window is not started again. */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 60_000;
/** How long a gather waits for the workers' reports (a worker that does not answer is left out). */
const REPORT_MS = 1000;
/** How long a reload waits for every worker to apply the new configuration. */
const RELOAD_MS = 15_000;

interface Slot {
  readonly id: number;
  worker: Worker | undefined;
  state: WorkerState;
  startedAt: number;
  restarts: number;
  /** When this slot's recent unexpected exits happened. */
  crashes: number[];
  backoff: NodeJS.Timeout | undefined;
}

export interface ReloadResult {
  ok: boolean;
  problems?: ConfigProblem[];
  applied: number;
  of: number;
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private readonly gathers = new Map<number, { views: Map<number, WorkerReport>; done(): void }>();
  private readonly reloads = new Map<number, (ok: boolean) => void>();
  /** Changes being applied by the other workers: id → called as each acknowledges. */
  private readonly applying = new Map<number, () => void>();
  private nextId = 1;
  private reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, applied: 0, of: 0 });
  /**
   * Admin changes made since start, replayed to a worker that starts again so it holds what
   * the others hold (maintenance, drains). With the shared store in place this is redundant.
   */
  private readonly changes = new Map<string, AdminChange>();
  /**
   * The machine's shared state (maintenance, drains, rate limits, incidents), served to every
   * worker over IPC: in memory here, or the configuration's Redis for a fleet of machines.
   */
  private store: StateStore | undefined;
  private whenStopped!: () => void;
  private readonly allStopped = new Promise<void>((resolve) => {
    this.whenStopped = resolve;
  });

  constructor(
    private readonly file: string,
    private config: GatewayConfig,
    private readonly count: number,
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Forks the workers; resolves once every one listens, or rejects when one cannot start. */
  async start(): Promise<{ listen: string[]; admin: string | undefined }> {
    // Where the supervisor holds the listeners (no SO_REUSEPORT): round-robin, not the kernel's pick.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    const store = storeFromConfig(this.config) ?? new MemoryStore();
    if (store instanceof RedisStore) store.connect();
    this.store = store;
    const up: Promise<{ listen: string[]; admin: string | undefined }>[] = [];
    for (let id = 1; id <= this.count; id++) {
      const slot: Slot = {
        id,
        worker: undefined,
        state: 'starting',
        startedAt: Date.now(),
        restarts: 0,
        crashes: [],
        backoff: undefined,
      };
      this.slots.push(slot);
      up.push(this.firstStart(slot));
    }
    const bound = await Promise.all(up);
    return bound[0]!;
  }

  /** Resolves when the workers have drained and exited after stop(). */
  stopped(): Promise<void> {
    return this.allStopped;
  }

  /** The configuration last checked good (the one every worker runs). */
  get current(): GatewayConfig {
    return this.config;
  }

  /** Drains every worker (each finishes its requests in flight) and resolves once all exited. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.backoff);
      if (slot.worker !== undefined && slot.state !== 'failed') {
        slot.state = 'draining';
        slot.worker.process.kill(signal);
      }
    }
    return this.stopped();
  }

  /** Ends every worker at once (a second signal). */
  kill(): void {
    for (const slot of this.slots) slot.worker?.process.kill('SIGKILL');
  }

  /**
   * Reloads the whole machine: the file is checked here, once; when it is invalid every
   * worker keeps its configuration; else each applies it. Reloads are taken one at a time.
   */
  reload(): Promise<ReloadResult> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  /** Every slot, and each running worker's report when it answers within REPORT_MS. */
  gather(): Promise<WorkerView[]> {
    const id = this.nextId++;
    const views = new Map<number, WorkerReport>();
    const asked = this.slots.filter((s) => s.state === 'running' && s.worker !== undefined);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.gathers.delete(id);
        resolve(this.slots.map((s) => ({ ...this.viewOf(s), report: views.get(s.id) })));
      };
      const timer = setTimeout(done, REPORT_MS);
      this.gathers.set(id, {
        views,
        done: () => {
          if (views.size >= asked.length) done();
        },
      });
      if (asked.length === 0) done();
      for (const s of asked) this.send(s, { t: 'report', id });
    });
  }

  private viewOf(s: Slot): WorkerView {
    return { worker: s.id, pid: s.worker?.process.pid, state: s.state, startedAt: s.startedAt, restarts: s.restarts };
  }

  private async reloadNow(): Promise<ReloadResult> {
    let config: GatewayConfig;
    let text: string;
    try {
      // Read once: every worker applies exactly these bytes, whatever happens to the file meanwhile.
      text = readFile(this.file);
      config = parseConfigText(text, this.file, this.env);
    } catch (err) {
      const problems =
        err instanceof ConfigError ? err.problems : [{ file: this.file, path: '', message: String(err) }];
      this.logger.error(
        { file: this.file, problems },
        'configuration refused; every worker keeps the running configuration',
      );
      return { ok: false, problems, applied: 0, of: this.count };
    }
    if (JSON.stringify(config.workers) !== JSON.stringify(this.config.workers))
      this.logger.warn({ workers: this.config.workers }, 'the number of workers changes only on restart');
    this.config = config;
    const running = this.slots.filter((s) => s.state === 'running' && s.worker !== undefined);
    const results = await Promise.all(
      running.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            const id = this.nextId++;
            const timer = setTimeout(() => {
              this.reloads.delete(id);
              resolve(false);
            }, RELOAD_MS);
            this.reloads.set(id, (ok) => {
              clearTimeout(timer);
              this.reloads.delete(id);
              resolve(ok);
            });
            this.send(s, { t: 'reload', id, text });
          }),
      ),
    );
    const applied = results.filter((ok) => ok).length;
    if (applied === running.length) this.logger.info({ workers: applied }, 'configuration reloaded on every worker');
    else
      this.logger.error(
        { applied, of: running.length },
        'configuration reloaded on some workers only; the others refused it (see their log lines)',
      );
    return { ok: applied === running.length, applied, of: running.length };
  }

  private firstStart(slot: Slot): Promise<{ listen: string[]; admin: string | undefined }> {
    return new Promise((resolve, reject) => {
      const worker = this.fork(slot);
      const onMessage = (m: WorkerMessage): void => {
        if (m.t !== 'listening') return;
        worker.off('exit', onExit);
        worker.off('message', onMessage);
        resolve({ listen: m.listen, admin: m.admin });
      };
      const onExit = (): void => {
        worker.off('message', onMessage);
        reject(new Error(`worker ${slot.id} exited before it was listening`));
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
    });
  }

  private fork(slot: Slot): Worker {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.id) });
    // Every worker started, restarted ones too, shares the machine's maintenance, drains, rate limits
    // and incidents through the supervisor's store.
    if (this.store !== undefined) worker.once('exit', serveStore(this.store, worker));
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    worker.on('message', (m: WorkerMessage) => this.receive(slot, worker, m));
    worker.once('exit', (code, signal) => this.exited(slot, worker, code, signal));
    return worker;
  }

  private receive(slot: Slot, worker: Worker, m: WorkerMessage): void {
    if (slot.worker !== worker) return;
    switch (m.t) {
      case 'listening': {
        const restarted = slot.restarts > 0;
        slot.state = this.stopping ? 'draining' : 'running';
        this.logger.info(
          { worker: slot.id, pid: worker.process.pid },
          restarted ? 'worker restarted' : 'worker started',
        );
        return;
      }
      case 'gather':
        void this.gather().then((workers) => this.send(slot, { t: 'gathered', id: m.id, workers }));
        return;
      case 'reported': {
        const g = this.gathers.get(m.id);
        if (g === undefined) return;
        g.views.set(slot.id, m.report);
        g.done();
        return;
      }
      case 'broadcast':
        // A purge is not replayed: a worker that starts again starts with an empty cache.
        if (m.change.kind !== 'purge') this.changes.set(changeKey(m.change), m.change);
        void this.passOn(slot, m.change).then((r) => this.send(slot, { t: 'broadcasted', id: m.id, ...r }));
        return;
      case 'catch-up':
        // A worker started again holds what the admin API changed since the machine started.
        this.send(slot, { t: 'caught-up', id: m.id, changes: [...this.changes.values()] });
        return;
      case 'applied':
        this.applying.get(m.id)?.();
        return;
      case 'reload-request':
        void this.reload().then((r) => this.send(slot, { t: 'reloaded', id: m.id, ...r }));
        return;
      case 'reload-done':
        this.reloads.get(m.id)?.(m.ok);
        return;
      case 'step':
        for (const other of this.slots)
          if (other !== slot) this.send(other, { t: 'step', worker: slot.id, points: m.points });
        return;
    }
  }

  /** Has every other running worker apply a change; resolves when they all said so (or REPORT_MS passed). */
  private passOn(from: Slot, change: AdminChange): Promise<{ applied: number; of: number }> {
    const others = this.slots.filter((s) => s !== from && s.state === 'running' && s.worker !== undefined);
    const id = this.nextId++;
    let applied = 0;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.applying.delete(id);
        resolve({ applied, of: others.length });
      };
      const timer = setTimeout(done, REPORT_MS);
      this.applying.set(id, () => {
        if (++applied >= others.length) done();
      });
      if (others.length === 0) done();
      for (const s of others) this.send(s, { t: 'change', id, change });
    });
  }

  private send(slot: Slot, message: SupervisorMessage): void {
    const w = slot.worker;
    if (w?.isConnected()) w.send(message);
  }

  private exited(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    const pid = worker.process.pid;
    if (this.stopping) {
      this.logger.info({ worker: slot.id, pid, code, signal }, 'worker stopped');
      this.checkStopped();
      return;
    }
    if (slot.state === 'starting' && slot.restarts === 0) return; // start() reports it
    const now = Date.now();
    slot.crashes = slot.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    slot.crashes.push(now);
    if (slot.crashes.length >= CRASH_LIMIT) {
      slot.state = 'failed';
      this.logger.error(
        { worker: slot.id, pid, code, signal, crashes: slot.crashes.length, withinMs: CRASH_WINDOW_MS },
        'worker crashes in a loop: not restarting it (the other workers keep serving; restart gangway once fixed)',
      );
      if (this.slots.every((s) => s.state === 'failed')) {
        this.logger.fatal('every worker crashes in a loop: stopping');
        this.stopping = true;
        this.checkStopped();
      }
      return;
    }
    const backoffMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (slot.crashes.length - 1));
    slot.state = 'backoff';
    this.logger.warn({ worker: slot.id, pid, code, signal, backoffMs }, 'worker exited unexpectedly; restarting it');
    slot.backoff = setTimeout(() => {
      slot.backoff = undefined;
      slot.restarts++;
      this.fork(slot);
    }, backoffMs);
  }

  private checkStopped(): void {
    if (!this.stopping || this.slots.some((s) => s.worker !== undefined)) return;
    const store = this.store;
    this.store = undefined;
    void (store?.close() ?? Promise.resolve()).catch(() => undefined).then(this.whenStopped);
  }
}

/** The configuration file's text, or a ConfigError that says why it cannot be read. */
function readFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `cannot read the configuration: ${(err as Error).message}` }]);
  }
}

/** Changes that replace one another share a key: the last maintenance switch, each host's last drain. */
function changeKey(change: AdminChange): string {
  return change.kind === 'drain' ? `drain ${change.upstream}/${change.host}` : change.kind;
}

/**
 * Runs the supervisor until SIGTERM/SIGINT have drained every worker (a second signal ends
 * them at once); SIGHUP and --watch reload the machine. Returns the exit code.
 */
export async function runSupervisor(
  file: string,
  config: GatewayConfig,
  count: number,
  watchFile: boolean,
  io: CommandIO,
): Promise<number> {
  const log = createLog(config.log);
  const logger = log.logger.child({ supervisor: process.pid });
  const supervisor = new Supervisor(file, config, count, logger, io.env);
  let bound: { listen: string[]; admin: string | undefined };
  try {
    bound = await supervisor.start();
  } catch (err) {
    io.stderr.write(`gangway: ${(err as Error).message}; stopping the others\n`);
    await supervisor.stop('SIGKILL');
    log.flush();
    return 1;
  }
  logger.info({ listen: bound.listen, admin: bound.admin, workers: count }, 'gangway listening');
  if (watchFile) {
    const machine = {
      get config() {
        return supervisor.current;
      },
      logger,
      reload: async () => {
        const r = await supervisor.reload();
        if (!r.ok) throw new Error('reload refused');
      },
    };
    watchConfigFile(machine, file);
  }
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: ending every worker now');
        supervisor.kill();
        log.flush();
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal, workers: count }, 'draining every worker');
      void supervisor.stop('SIGTERM').then(() => resolve(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      supervisor.reload().catch(refused);
    });
    // Every worker given up on: stop() is not needed, the slots are empty already.
    void supervisor.stopped().then(() => {
      if (!stopping) resolve(1);
    });
  });
  logger.info('gangway stopped');
  log.flush();
  return code;
}
