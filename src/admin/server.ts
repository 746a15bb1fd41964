/**
 * The admin listener: liveness and readiness for orchestrators, Prometheus metrics, a
 * JSON view of routes, upstreams and hosts, and the operator's changes (maintenance,
 * drain, reload; see ./changes.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Runtime } from '../runtime.js';
import { machineRegistry } from '../workers/machine-metrics.js';
import type { WorkerLink } from '../workers/link.js';
import type { WorkerView } from '../workers/protocol.js';
import { postPurge, postReload, putDrain, putMaintenance } from './changes.js';
import { refuseAdminRequest } from './guard.js';
import { json, text } from './respond.js';
import { buildStatus, type StatusReport, type StatusSources } from './status-model.js';
import { serveStatusPage } from './status-page.js';

export interface AdminFacts {
  current(): Runtime;
  version: string;
  startedAt: number;
  /** Bearer token that changes require; undefined: changes only from a loopback admin listener. */
  token: string | undefined;
  /** What the status page reads. */
  status: () => StatusSources;
  /** Reads the configuration file again and applies it (rejects with a ConfigError when it is invalid); absent without a file. */
  reload: (() => Promise<void>) | undefined;
  /**
   * When workers share the listeners: the way to the others, so that /metrics and /api/status
   * speak for the whole machine and changes hold on every worker. Absent in a single process.
   */
  machine?: WorkerLink;
}

/** The requests that change something (the guard's write checks apply to them). */
const CHANGES = new Set(['PUT /api/maintenance', 'POST /api/reload', 'PUT /api/drain', 'POST /api/cache/purge']);

export function createAdminServer(facts: AdminFacts): Server {
  return createServer((req, res) => {
    void answer(facts, req, res).catch((err: Error) => {
      facts.current().logger.error({ err }, 'admin request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
}

async function answer(facts: AdminFacts, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const runtime = facts.current();
  const path = (req.url ?? '/').split('?')[0];
  const change = CHANGES.has(`${req.method} ${path}`);
  const refusal = refuseAdminRequest(req, runtime.adminHosts, change);
  if (refusal !== undefined) return json(res, refusal.status, { error: refusal.error });
  if (path === '/api/maintenance' && req.method === 'PUT') return putMaintenance(facts, runtime, req, res);
  if (path === '/api/reload' && req.method === 'POST') return postReload(facts, req, res);
  if (path === '/api/drain' && req.method === 'PUT') return putDrain(facts, runtime, req, res);
  if (path === '/api/cache/purge' && req.method === 'POST') return postPurge(facts, runtime, req, res);
  if (req.method === 'GET' && serveStatusPage(facts.status, req, res, '/status', false)) return;
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return json(
      res,
      405,
      { error: `${req.method} is not served at ${path}` },
      { allow: path === '/api/maintenance' ? 'GET, HEAD, PUT' : 'GET, HEAD' },
    );
  switch (path) {
    case '/healthz':
      return text(res, 200, 'ok\n');
    case '/readyz':
      return runtime.draining ? text(res, 503, 'draining\n') : text(res, 200, 'ready\n');
    case '/metrics': {
      const registry =
        facts.machine === undefined ? runtime.metrics.registry : machineRegistry(await facts.machine.gather());
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    case '/api/status': {
      const status = buildStatus(facts.status(), { public: false, history: (req.url ?? '').includes('history=1') });
      if (facts.machine !== undefined) status.workers = workersJson(await facts.machine.gather(), facts.machine.id);
      return json(res, 200, status);
    }
    case '/api/maintenance':
      return json(res, 200, runtime.maintenance.describe(runtime.config));
    default:
      return json(res, 404, {
        error: `no admin endpoint ${path}`,
        endpoints: [
          '/healthz',
          '/readyz',
          '/metrics',
          '/api/status',
          '/status',
          '/api/maintenance',
          'POST /api/reload',
          'PUT /api/drain',
          'POST /api/cache/purge',
        ],
      });
  }
}

/** Each worker of the machine as /api/status shows it; `answered_by` marks the one that answered. */
function workersJson(workers: readonly WorkerView[], self: number): NonNullable<StatusReport['workers']> {
  return workers.map((w) => ({
    worker: w.worker,
    pid: w.pid,
    state: w.state,
    answered_by: w.worker === self || undefined,
    started_at: new Date(w.startedAt).toISOString(),
    restarts: w.restarts,
    requests: w.report?.requests,
    in_flight: w.report?.inFlight,
    rss_bytes: w.report?.rssBytes,
  }));
}
