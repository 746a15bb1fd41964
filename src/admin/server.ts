/**
 * The admin listener: liveness and readiness for orchestrators, Prometheus metrics, and
 * a JSON view of routes, upstreams and hosts. Read-only for now; nothing here changes
 * the gateway.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { ConfigError, formatPath } from '../config/load.js';
import type { Runtime } from '../proxy/runtime.js';

export interface AdminFacts {
  current(): Runtime;
  version: string;
  startedAt: number;
  /** Bearer token that changes require; undefined: changes only from a loopback admin listener. */
  token: string | undefined;
  /** Reads the configuration file again and applies it (throws ConfigError when it is invalid); absent without a file. */
  reloadFromFile: (() => void) | undefined;
}

/** The body of PUT /api/maintenance. */
const maintenanceSwitch = z.strictObject({
  enabled: z.boolean(),
  until: z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'not an ISO 8601 date and time').optional(),
  message: z.string().max(2000).optional(),
  routes: z.array(z.string().min(1)).min(1).optional(),
});

const MAX_BODY = 64 * 1024;

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
  if (path === '/api/maintenance' && req.method === 'PUT') return putMaintenance(facts, runtime, req, res);
  if (path === '/api/reload' && req.method === 'POST') return postReload(facts, req, res);
  if (path === '/api/drain' && req.method === 'PUT') return putDrain(facts, runtime, req, res);
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: `${req.method} is not served at ${path}` }, { allow: path === '/api/maintenance' ? 'GET, HEAD, PUT' : 'GET, HEAD' });
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
    case '/api/maintenance':
      return json(res, 200, runtime.maintenance.describe(runtime.config));
    default:
      return json(res, 404, { error: `no admin endpoint ${path}`, endpoints: ['/healthz', '/readyz', '/metrics', '/api/status', '/api/maintenance', 'POST /api/reload', 'PUT /api/drain'] });
  }
}

/** PUT /api/maintenance: switches maintenance on (optionally until a time, for some routes) or off. */
async function putMaintenance(facts: AdminFacts, runtime: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!authorised(facts, req)) return json(res, 401, { error: 'this change needs Authorization: Bearer <admin token>' }, { 'www-authenticate': 'Bearer' });
  const body = await readJson(req);
  if (body === undefined) return json(res, 400, { error: 'the body is not JSON (or over 64 KiB)' });
  const parsed = maintenanceSwitch.safeParse(body);
  if (!parsed.success) {
    return json(res, 400, { error: 'invalid maintenance switch', problems: parsed.error.issues.map((i) => ({ path: formatPath(i.path as PropertyKey[]), message: i.message })) });
  }
  const known = new Set(runtime.router.routes.map((r) => r.name));
  const unknown = parsed.data.routes?.filter((r) => !known.has(r)) ?? [];
  if (unknown.length > 0) return json(res, 400, { error: 'invalid maintenance switch', problems: unknown.map((r) => ({ path: 'routes', message: `no route named "${r}"` })) });
  const { enabled, until, message, routes } = parsed.data;
  runtime.maintenance.override = { enabled, until: until === undefined ? undefined : Date.parse(until), message, routes };
  runtime.logger.warn({ enabled, until, message, routes }, enabled ? 'maintenance switched on' : 'maintenance switched off');
  return json(res, 200, runtime.maintenance.describe(runtime.config));
}

const drainSwitch = z.strictObject({ upstream: z.string().min(1), host: z.string().min(1), drain: z.boolean() });

/** PUT /api/drain: takes one host out of rotation (or back), letting its requests under way finish. */
async function putDrain(facts: AdminFacts, runtime: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!authorised(facts, req)) return json(res, 401, { error: 'this change needs Authorization: Bearer <admin token>' }, { 'www-authenticate': 'Bearer' });
  const body = await readJson(req);
  if (body === undefined) return json(res, 400, { error: 'the body is not JSON (or over 64 KiB)' });
  const parsed = drainSwitch.safeParse(body);
  if (!parsed.success) return json(res, 400, { error: 'invalid drain switch', problems: parsed.error.issues.map((i) => ({ path: formatPath(i.path as PropertyKey[]), message: i.message })) });
  const { upstream, host, drain } = parsed.data;
  const target = runtime.pools.get(upstream)?.hosts.find((h) => h.label === host);
  if (target === undefined) return json(res, 404, { error: `no host ${host} in upstream ${upstream}` });
  target.draining = drain;
  if (drain) runtime.maintenance.drained.add(`${upstream}/${host}`);
  else runtime.maintenance.drained.delete(`${upstream}/${host}`);
  runtime.logger.warn({ upstream, host, drain, outstanding: target.outstanding }, drain ? 'host draining' : 'host back in rotation');
  return json(res, 200, { upstream, host, state: target.state(Date.now()), outstanding: target.outstanding });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let raw = '';
  for await (const chunk of req) {
    raw += (chunk as Buffer).toString();
    if (raw.length > MAX_BODY) return undefined;
  }
  try { return JSON.parse(raw); } catch { return undefined; }
}

/** POST /api/reload: applies the configuration file again; an invalid file is refused with its problems and the running configuration stays. */
function postReload(facts: AdminFacts, req: IncomingMessage, res: ServerResponse): void {
  if (!authorised(facts, req)) return json(res, 401, { error: 'this change needs Authorization: Bearer <admin token>' }, { 'www-authenticate': 'Bearer' });
  if (facts.reloadFromFile === undefined) return json(res, 409, { error: 'this gateway was not started from a configuration file; use reload() of the library' });
  try {
    facts.reloadFromFile();
  } catch (err) {
    if (err instanceof ConfigError) {
      facts.current().logger.error({ problems: err.problems }, 'configuration refused; the running configuration stays');
      return json(res, 400, { error: 'configuration refused; the running configuration stays', problems: err.problems });
    }
    throw err;
  }
  const runtime = facts.current();
  return json(res, 200, { reloaded: true, routes: runtime.router.routes.length, upstreams: runtime.pools.size });
}

/** A change is allowed with the right bearer token, or without any token configured when the admin listener is on loopback (checked at start). */
function authorised(facts: AdminFacts, req: IncomingMessage): boolean {
  if (facts.token === undefined) return true;
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(facts.token);
  return a.length === b.length && timingSafeEqual(a, b);
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
