/**
 * The admin listener: liveness and readiness for orchestrators, Prometheus metrics, a
 * JSON view of routes, upstreams and hosts, and the operator's changes (maintenance,
 * drain, reload; see ./changes.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Runtime } from '../runtime.js';
import { postPurge, postReload, putDrain, putMaintenance } from './changes.js';
import { refuseAdminRequest } from './guard.js';
import { json, text } from './respond.js';
import { buildStatus, type StatusSources } from './status-model.js';
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
      const body = await runtime.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': runtime.metrics.registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    case '/api/status':
      return json(
        res,
        200,
        buildStatus(facts.status(), { public: false, history: (req.url ?? '').includes('history=1') }),
      );
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
