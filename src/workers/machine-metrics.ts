/**
 * One /metrics for the whole machine: every worker's families merged with prom-client's
 * AggregatorRegistry. Counters and histograms are summed — requests, failures, latency
 * buckets mean the machine's total. A gauge is summed only where the sum means something
 * (requests in flight, queue depth, cache bytes); every other gauge — a worker's event-loop
 * delay, its memory, its own concurrency limit or view of a host — would lie as a sum or an
 * average, so it keeps one series per worker with a `worker` label.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { MetricJson, WorkerView } from './protocol.js';

/** Gauges whose sum over the workers is the machine's value. */
export const SUMMED_GAUGES = new Set([
  'gangway_requests_in_flight',
  'gangway_concurrency_in_use',
  'gangway_queue_depth',
  'gangway_cache_bytes',
  'gangway_cache_entries',
]);

/** The machine's registry, built from the reports of the workers that answered. */
export function machineRegistry(workers: readonly WorkerView[]): Registry {
  const perWorker: MetricJson[][] = [];
  for (const w of workers) {
    if (w.report === undefined) continue;
    perWorker.push(w.report.metrics.map((m) => labelled(m, w.worker)));
  }
  perWorker.push(supervisorFamilies(workers));
  return AggregatorRegistry.aggregate(perWorker);
}

function labelled(metric: MetricJson, worker: number): MetricJson {
  if (metric.type !== 'gauge' || SUMMED_GAUGES.has(metric.name)) return { ...metric, aggregator: 'sum' };
  // Distinct `worker` labels keep the series apart under the sum aggregator.
  const id = String(worker);
  return {
    ...metric,
    aggregator: 'sum',
    values: metric.values.map((v) => ({ ...v, labels: { ...v.labels, worker: id } })),
  };
}

/** The families only the supervisor knows, each with a `worker` label (docs/metrics.md lists them). */
export const SUPERVISOR_FAMILIES = [
  {
    name: 'gangway_worker_restarts_total',
    help: 'Times the supervisor started a worker again after it exited unexpectedly, by worker (workers > 1 only)',
    type: 'counter',
    value: (w: WorkerView): number => w.restarts,
  },
  {
    name: 'gangway_worker_up',
    help: '1 while a worker is serving the listeners, else 0 (starting, in backoff, or given up on); workers > 1 only',
    type: 'gauge',
    value: (w: WorkerView): number => (w.state === 'running' ? 1 : 0),
  },
] as const;

/** What only the supervisor knows: each worker slot's restarts and whether it is serving. */
function supervisorFamilies(workers: readonly WorkerView[]): MetricJson[] {
  return SUPERVISOR_FAMILIES.map((f) => ({
    name: f.name,
    help: f.help,
    type: f.type,
    aggregator: 'sum',
    values: workers.map((w) => ({ value: f.value(w), labels: { worker: String(w.worker) } })),
  }));
}
