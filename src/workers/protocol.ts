/**
 * The messages between the supervisor and its workers over node:cluster's IPC channel. A
 * worker asks the supervisor to gather every worker's report (for /metrics and /api/status),
 * to pass an admin change on to the others, or to reload the whole machine; the supervisor
 * tells workers to report, apply a change, reload, and relays each closed status step so that
 * every worker can draw the machine's timeline. Plain JSON: nothing here crosses by reference.
 */
import type { ConfigProblem } from '../config/load.js';
import type { TimelinePoint } from '../observe/timeline.js';

/** prom-client's JSON form of one metric family, as `registry.getMetricsAsJSON()` gives it. */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

/** An admin change that must hold on every worker (the admin API applied it on one). */
export type AdminChange =
  | {
      kind: 'maintenance';
      enabled: boolean;
      until: number | undefined;
      message: string | undefined;
      routes: string[] | undefined;
    }
  | { kind: 'drain'; upstream: string; host: string; drain: boolean }
  | { kind: 'purge'; authority: string | undefined; path: string; prefix: boolean; route: string | undefined };

/** What one worker says about itself when the supervisor gathers reports. */
export interface WorkerReport {
  metrics: MetricJson[];
  requests: number;
  inFlight: number;
  rssBytes: number;
  draining: boolean;
}

/** The supervisor's record of one worker slot, with the slot's report when it answered in time. */
export interface WorkerView {
  worker: number;
  pid: number | undefined;
  state: WorkerState;
  startedAt: number;
  restarts: number;
  report?: WorkerReport;
}

/**
 * starting: forked, not yet listening; running: serving; draining: told to stop; backoff:
 * crashed, waiting to be started again; failed: crashed in a loop, no longer restarted.
 */
export type WorkerState = 'starting' | 'running' | 'draining' | 'backoff' | 'failed';

/** Worker → supervisor. */
export type WorkerMessage =
  | { t: 'listening'; listen: string[]; admin: string | undefined }
  | { t: 'gather'; id: number }
  | { t: 'reported'; id: number; report: WorkerReport }
  | { t: 'broadcast'; id: number; change: AdminChange }
  | { t: 'applied'; id: number }
  | { t: 'catch-up'; id: number }
  | { t: 'reload-request'; id: number }
  | { t: 'reload-done'; id: number; ok: boolean }
  | { t: 'step'; points: Record<string, TimelinePoint> };

/** Supervisor → worker. */
export type SupervisorMessage =
  | { t: 'gathered'; id: number; workers: WorkerView[] }
  | { t: 'report'; id: number }
  | { t: 'change'; id: number; change: AdminChange }
  | { t: 'broadcasted'; id: number; applied: number; of: number }
  | { t: 'caught-up'; id: number; changes: AdminChange[] }
  /** `text`: the configuration file's bytes as the supervisor checked them. */
  | { t: 'reload'; id: number; text: string }
  | { t: 'reloaded'; id: number; ok: boolean; problems?: ConfigProblem[]; applied: number; of: number }
  | { t: 'step'; worker: number; points: Record<string, TimelinePoint> };

/** The environment variable that gives a worker its slot number (1…N), stable across restarts. */
export const WORKER_SLOT_ENV = 'GANGWAY_WORKER';
