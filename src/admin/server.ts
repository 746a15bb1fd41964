/**
 * The admin listener: liveness and readiness for orchestrators, Prometheus metrics, and
 * a JSON view of routes, upstreams and hosts. Read-only for now; nothing here changes
 * the gateway.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Runtime } from '../proxy/runtime.js';

export interface AdminFacts {
  current(): Runtime;
  version: string;
  startedAt: number;
}

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
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'only GET and HEAD are served here' }, { allow: 'GET, HEAD' });
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
      return json(res, 200, statusOf(facts, runtime));
    default:
      return json(res, 404, { error: `no admin endpoint ${path}`, endpoints: ['/healthz', '/readyz', '/metrics', '/api/status'] });
  }
}

export function statusOf(facts: AdminFacts, runtime: Runtime): Record<string, unknown> {
  return {
    name: runtime.config.name,
    version: facts.version,
    uptime_s: Math.round((Date.now() - facts.startedAt) / 1000),
    draining: runtime.draining,
    routes: runtime.router.routes.map((r) => ({ name: r.name, upstream: r.upstream.name })),
    upstreams: [...runtime.pools.values()].map((p) => ({
      name: p.name,
      balance: p.config.balance,
      hosts: p.hosts.map((h) => ({
        address: h.label,
        state: h.state(Date.now()),
        healthy: h.healthy,
        ejected_until: h.ejectedUntil > Date.now() ? new Date(h.ejectedUntil).toISOString() : undefined,
        ejections: h.ejections,
        outstanding: h.outstanding,
        latency_ms: Math.round(h.latency(performance.now()) * 10) / 10,
      })),
    })),
  };
}

function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra });
  res.end(JSON.stringify(body, null, 2) + '\n');
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}
