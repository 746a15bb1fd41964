/**
 * The admin API's changes: maintenance on/off, draining a host, purging the cache, reloading
 * the configuration file. Each needs the bearer token when one is configured (without one, the schema only
 * lets the admin listener bind to loopback), and each validates its JSON body with field paths.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ConfigError, formatPath } from '../config/load.js';
import type { Runtime } from '../runtime.js';
import type { AdminChange } from '../workers/protocol.js';
import { json } from './respond.js';
import type { AdminFacts } from './server.js';

/** The body of PUT /api/maintenance. */
const maintenanceSwitch = z.strictObject({
  enabled: z.boolean(),
  until: z
    .string()
    .refine((v) => !Number.isNaN(Date.parse(v)), 'not an ISO 8601 date and time')
    .optional(),
  message: z.string().max(2000).optional(),
  routes: z.array(z.string().min(1)).min(1).optional(),
});

const MAX_BODY = 64 * 1024;

/** PUT /api/maintenance: switches maintenance on (optionally until a time, for some routes) or off. */
export async function putMaintenance(
  facts: AdminFacts,
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const change = await readChange(facts, req, res, maintenanceSwitch, 'invalid maintenance switch');
  if (change === undefined) return;
  const known = new Set(runtime.router.routes.map((r) => r.name));
  const unknown = change.routes?.filter((r) => !known.has(r)) ?? [];
  if (unknown.length > 0)
    return json(res, 400, {
      error: 'invalid maintenance switch',
      problems: unknown.map((r) => ({ path: 'routes', message: `no route named "${r}"` })),
    });
  const { enabled, until, message, routes } = change;
  await share(facts, runtime, {
    kind: 'maintenance',
    enabled,
    until: until === undefined ? undefined : Date.parse(until),
    message,
    routes,
  });
  runtime.logger.warn(
    { enabled, until, message, routes },
    enabled ? 'maintenance switched on' : 'maintenance switched off',
  );
  return json(res, 200, runtime.maintenance.describe(runtime.config));
}

const drainSwitch = z.strictObject({ upstream: z.string().min(1), host: z.string().min(1), drain: z.boolean() });

/** PUT /api/drain: takes one host out of rotation (or back), letting its requests under way finish. */
export async function putDrain(
  facts: AdminFacts,
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const change = await readChange(facts, req, res, drainSwitch, 'invalid drain switch');
  if (change === undefined) return;
  const { upstream, host, drain } = change;
  const target = runtime.pools.get(upstream)?.hosts.find((h) => h.label === host);
  if (target === undefined) return json(res, 404, { error: `no host ${host} in upstream ${upstream}` });
  await share(facts, runtime, { kind: 'drain', upstream, host, drain });
  runtime.logger.warn(
    { upstream, host, drain, outstanding: target.outstanding },
    drain ? 'host draining' : 'host back in rotation',
  );
  return json(res, 200, { upstream, host, state: target.state(Date.now()), outstanding: target.outstanding });
}

/**
 * Applies a change here, then has it applied on every other worker (when workers share the
 * listeners), so that the machine answers as one. Returns what applyChange returns.
 */
async function share(facts: AdminFacts, runtime: Runtime, change: AdminChange): Promise<number> {
  const result = applyChange(runtime, change);
  // The answer waits until every worker holds the change: a client's next request may land on any.
  await facts.machine?.broadcast(change);
  return result;
}

/**
 * Makes an admin change hold in this process: the admin API's own, or one that another
 * worker's admin API received. Returns the responses purged (0 for other changes).
 */
export function applyChange(runtime: Runtime, change: AdminChange): number {
  switch (change.kind) {
    case 'maintenance': {
      const { enabled, until, message, routes } = change;
      runtime.maintenance.override = { enabled, until, message, routes };
      return 0;
    }
    case 'drain': {
      const { upstream, host, drain } = change;
      const target = runtime.pools.get(upstream)?.hosts.find((h) => h.label === host);
      if (target !== undefined) target.draining = drain;
      if (drain) runtime.maintenance.drained.add(`${upstream}/${host}`);
      else runtime.maintenance.drained.delete(`${upstream}/${host}`);
      return 0;
    }
    case 'purge': {
      let purged = 0;
      for (const r of runtime.router.routes)
        if (r.cache !== undefined && (change.route === undefined || r.name === change.route))
          purged += r.cache.purge(change.authority, change.path, change.prefix);
      return purged;
    }
  }
}

/**
 * A change's body, authorised and checked against its schema; undefined when it was refused
 * (401, or 400 with each problem's field path), the answer already sent.
 */
async function readChange<T extends z.ZodType>(
  facts: AdminFacts,
  req: IncomingMessage,
  res: ServerResponse,
  schema: T,
  refusal: string,
): Promise<z.output<T> | undefined> {
  if (!authorised(facts, req)) {
    unauthorised(res);
    return undefined;
  }
  const body = await readJson(req);
  if (body === undefined) {
    json(res, 400, { error: 'the body is not JSON (or over 64 KiB)' });
    return undefined;
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    json(res, 400, {
      error: refusal,
      problems: parsed.error.issues.map((i) => ({ path: formatPath(i.path as PropertyKey[]), message: i.message })),
    });
    return undefined;
  }
  return parsed.data;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let raw = '';
  for await (const chunk of req) {
    raw += (chunk as Buffer).toString();
    if (raw.length > MAX_BODY) return undefined;
  }
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

const purgeRequest = z.strictObject({
  url: z
    .string()
    .min(1)
    .refine(
      (u) => u.startsWith('/') || /^https?:\/\/[^/]+(\/|$)/i.test(u),
      'a path ("/api/tracks") or a whole http(s) URL',
    ),
  prefix: z.boolean().default(false),
  route: z.string().optional(),
});

/** POST /api/cache/purge: forgets a URL, or every URL under a prefix, in every cached route (or one). */
export async function postPurge(
  facts: AdminFacts,
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const change = await readChange(facts, req, res, purgeRequest, 'invalid purge request');
  if (change === undefined) return;
  const { url, prefix, route } = change;
  let authority: string | undefined;
  let path = url;
  if (!url.startsWith('/')) {
    const parsedUrl = new URL(url);
    authority = parsedUrl.host;
    path = `${parsedUrl.pathname}${parsedUrl.search}`;
  }
  const routes = runtime.router.routes.filter(
    (r) => r.cache !== undefined && (route === undefined || r.name === route),
  );
  if (routes.length === 0)
    return json(res, 404, { error: route === undefined ? 'no route has a cache' : `no cached route named ${route}` });
  // The count is this process's; other workers purge their own caches of the same URLs.
  const purged = await share(facts, runtime, { kind: 'purge', authority, path, prefix, route });
  runtime.logger.warn({ url, prefix, purged }, 'cache purged');
  return json(res, 200, { purged, routes: routes.map((r) => r.name) });
}

/** POST /api/reload: applies the configuration file again; an invalid file is refused with its problems and the running configuration stays. */
export async function postReload(facts: AdminFacts, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!authorised(facts, req)) return unauthorised(res);
  if (facts.reload === undefined)
    return json(res, 409, {
      error: 'this gateway was not started from a configuration file; use reload() of the library',
    });
  try {
    await facts.reload();
  } catch (err) {
    // The gateway logged the refusal; the operator gets the problems too.
    if (err instanceof ConfigError)
      return json(res, 400, {
        error: 'configuration refused; the running configuration stays',
        problems: err.problems,
      });
    throw err;
  }
  const runtime = facts.current();
  return json(res, 200, { reloaded: true, routes: runtime.router.routes.length, upstreams: runtime.pools.size });
}

function unauthorised(res: ServerResponse): void {
  json(res, 401, { error: 'this change needs Authorization: Bearer <admin token>' }, { 'www-authenticate': 'Bearer' });
}

/** A change is allowed with the right bearer token, or without any token configured when the admin listener is on loopback (checked at start). */
function authorised(facts: AdminFacts, req: IncomingMessage): boolean {
  if (facts.token === undefined) return true;
  // RFC 9110 §11.1: the scheme is case-insensitive.
  const given = /^bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(facts.token);
  return a.length === b.length && timingSafeEqual(a, b);
}
