/**
 * The demo's operator console: a web page showing, live over server-sent events, each
 * replica's traffic and state and what the gateway does about trouble (retries, hedges,
 * ejections, resumes, shed requests, the concurrency limit) — and the switches that inflict
 * real faults on one replica, an overload spike and maintenance. Each switch says in one
 * line what a plain proxy would have shown the listener.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { uplotAssets } from '../admin/status-page.js';
import type { Gateway } from '../gateway.js';
import { CONSOLE_PAGE } from './console-page.js';
import type { ReplicaFleet } from './fleet.js';
import type { ReplicaFault } from './replica.js';
import { spike, type SpikeResult } from './spike.js';

export interface ConsoleOptions {
  fleet: ReplicaFleet;
  gateway: Gateway;
  proxyOrigin: string;
  adminOrigin: string | undefined;
}

/** Cache results that answered without a request of their own to the replicas. */
const FROM_CACHE = new Set(['hit', 'collapsed', 'stale-while-revalidate', 'stale-if-error', 'revalidated']);

/** Faults set on a replica reach the requests it receives from then on; what is already flowing goes on. */
const FAULT_REACH: Record<Exclude<ReplicaFault, 'none'>, string> = {
  slow: 'new requests from now on',
  garbage: 'new requests from now on; answers already flowing are untouched',
  reset: 'streams that start from now on; tracks already playing go on',
  storm: 'new requests from now on',
};

/** What each switch would have meant behind a plain proxy, in one line. */
export const PLAIN_PROXY: Record<string, string> = {
  kill: 'A plain proxy: 502 Bad Gateway for everything on this replica, and songs that stop mid-track until someone restarts it.',
  freeze: 'A plain proxy: requests hang for a minute, then 504 Gateway Timeout; the music stalls.',
  slow: 'A plain proxy: a third of page loads take seconds, because round-robin keeps sending traffic there.',
  garbage: 'A plain proxy: 502 Bad Gateway (invalid response) for a third of the requests.',
  reset: 'A plain proxy: tracks that stop part way through — or a truncated file passed off as whole.',
  storm: 'A plain proxy: 503 Service Unavailable straight to a third of the listeners.',
  spike: 'A plain proxy: everything is queued at the replicas; every request waits seconds and most time out.',
  maintenance: 'A plain proxy: connection refused or a bare 502, and no word of when it ends.',
  outage:
    'A plain proxy: 502 Bad Gateway for everything — the track list, the player, the music — until a replica is back.',
};

interface Sample {
  at: number;
  counters: Map<string, number>;
}

type Metric = { name: string; values: Array<{ labels: Record<string, string | number>; value: number }> };

export async function startConsole(
  opts: ConsoleOptions,
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const clients = new Set<ServerResponse>();
  const events: Array<{ at: string; text: string }> = [];
  let spikeState: (SpikeResult & { running: boolean }) | undefined;
  let maintenance = false;
  let last: Sample | undefined;
  const lastEjectionNote = new Map<string, number>();

  const note = (text: string): void => {
    events.unshift({ at: new Date().toISOString(), text });
    if (events.length > 30) events.pop();
  };

  const tick = async (): Promise<void> => {
    const metrics = (await opts.gateway.metrics.registry.getMetricsAsJSON()) as unknown as Metric[];
    const counters = new Map<string, number>();
    for (const m of metrics) for (const v of m.values) counters.set(`${m.name}${JSON.stringify(v.labels)}`, v.value);
    const now: Sample = { at: Date.now(), counters };
    const seconds = last ? (now.at - last.at) / 1000 : 1;
    const rate = (name: string, match: (labels: Record<string, string | number>) => boolean = () => true): number => {
      let sum = 0;
      for (const m of metrics) {
        if (m.name !== name) continue;
        for (const v of m.values) {
          if (!match(v.labels)) continue;
          const before = last?.counters.get(`${m.name}${JSON.stringify(v.labels)}`) ?? 0;
          sum += v.value - before;
        }
      }
      return last ? Math.max(0, sum / seconds) : 0;
    };
    const { hosts, gates } = opts.gateway.inspect();
    const ejectedNow = rate('gangway_ejections_total');
    if (ejectedNow > 0) {
      for (const m of metrics.filter((x) => x.name === 'gangway_ejections_total')) {
        for (const v of m.values) {
          const before = last?.counters.get(`${m.name}${JSON.stringify(v.labels)}`) ?? 0;
          // A host answering 503 + Retry-After is re-ejected at every probe: say so once a while.
          const key = `${v.labels.host}/${v.labels.reason}`;
          if (v.value > before && now.at - (lastEjectionNote.get(key) ?? 0) > 15_000) {
            lastEjectionNote.set(key, now.at);
            note(`Gangway ejected ${v.labels.host} (${v.labels.reason}) and routes around it`);
          }
        }
      }
    }
    // Only a resume that carried the listener to the end of the track counts as one.
    const resumed = rate('gangway_resumes_total', (l) => l.outcome === 'completed');
    if (resumed > 0) note(`Gangway resumed ${count(resumed * seconds, 'broken stream')} from another replica (Range)`);
    const cut = rate('gangway_request_outcomes_total', (l) => l.outcome === 'cut');
    const prevented = rate('gangway_errors_prevented_total');
    if (prevented > 0)
      note(
        `Gangway answered ${count(prevented * seconds, 'request')} from its cache ` +
          `in place of an error (stale-if-error)`,
      );
    if (cut > 0)
      note(`${count(cut * seconds, 'stream')} cut part way: no replica could finish it — listeners saw that`);
    const snapshot = {
      at: now.at,
      replicas: opts.fleet.replicas.map((r) => {
        const label = `127.0.0.1:${r.port}`;
        return {
          name: r.name,
          port: r.port,
          state: r.state,
          fault: r.fault,
          inRotation: hosts.find((h) => h.host === label)?.inRotation ?? false,
          openStreams: r.streams.length,
          okPerSecond: round(rate('gangway_upstream_attempts_total', (l) => l.host === label && l.outcome === 'ok')),
          failedPerSecond: round(
            rate('gangway_upstream_attempts_total', (l) => l.host === label && l.outcome !== 'ok'),
          ),
        };
      }),
      gateway: {
        requestsPerSecond: round(rate('gangway_requests_total')),
        // What a listener saw as a failure: a broken answer or a stream cut part way (observe/outcome.ts).
        clientErrorsPerSecond: round(
          rate('gangway_request_outcomes_total', (l) => l.outcome === 'failed' || l.outcome === 'cut'),
        ),
        cutPerSecond: round(cut),
        retriesPerSecond: round(rate('gangway_retries_total')),
        hedgesPerSecond: round(rate('gangway_hedges_total')),
        resumesPerSecond: round(resumed),
        shedPerSecond: round(rate('gangway_shed_total')),
        fromCachePerSecond: round(rate('gangway_cache_requests_total', (l) => FROM_CACHE.has(String(l.result)))),
        preventedPerSecond: round(prevented),
        ejectionsPerSecond: round(ejectedNow),
        concurrencyLimit: gates[0]?.limit ?? null,
        queued: gates[0]?.waiting ?? 0,
      },
      maintenance,
      spike: spikeState,
      events,
    };
    last = now;
    const frame = `event: tick\ndata: ${JSON.stringify(snapshot)}\n\n`;
    for (const c of clients) c.write(frame);
  };
  const timer = setInterval(() => {
    void tick().catch(() => undefined);
  }, 1000);

  const act = async (res: ServerResponse, path: string): Promise<void> => {
    const reply = (status: number, message: string, plain?: string): void => {
      if (status === 200) note(message);
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ok: status === 200, message, plainProxy: plain }));
    };
    const m = /^\/api\/replicas\/(\d+)\/(kill|restart|freeze|thaw|fault)(?:\/(none|slow|garbage|reset|storm))?$/.exec(
      path,
    );
    if (m) {
      const i = Number(m[1]) - 1;
      const r = opts.fleet.replicas[i];
      if (r === undefined) return reply(404, `no replica ${m[1]}`);
      switch (m[2]) {
        case 'kill':
          if (r.state === 'killed') return reply(409, `${r.name} is not running`);
          opts.fleet.kill(i);
          return reply(200, `${r.name} killed (SIGKILL)`, PLAIN_PROXY.kill);
        case 'restart':
          await opts.fleet.restart(i);
          return reply(200, `${r.name} restarted; Gangway brings it back slowly (slow start)`);
        case 'freeze':
          if (r.state !== 'running') return reply(409, `${r.name} is ${r.state}: only a running replica can freeze`);
          opts.fleet.freeze(i);
          return reply(200, `${r.name} frozen (SIGSTOP)`, PLAIN_PROXY.freeze);
        case 'thaw':
          if (r.state !== 'frozen') return reply(409, `${r.name} is not frozen`);
          opts.fleet.thaw(i);
          return reply(200, `${r.name} thawed (SIGCONT)`);
        default: {
          const fault = (m[3] ?? 'none') as ReplicaFault;
          if (r.state !== 'running') return reply(409, `${r.name} is ${r.state}: restart or thaw it first`);
          opts.fleet.setFault(i, fault);
          return reply(
            200,
            fault === 'none' ? `${r.name} healed` : `${r.name}: ${fault} — ${FAULT_REACH[fault]}`,
            PLAIN_PROXY[fault],
          );
        }
      }
    }
    if (path === '/api/outage') {
      for (let i = 0; i < opts.fleet.replicas.length; i++) opts.fleet.kill(i);
      return reply(
        200,
        'Total outage: every replica killed. The track list keeps answering from ' +
          "Gangway's cache (fresh for 10 s, then stale while Gangway tries the replicas, " +
          'then in place of the errors); new tracks cannot start, and the player says ' +
          'why',
        PLAIN_PROXY.outage,
      );
    }
    if (path === '/api/restart-all') {
      await Promise.all(opts.fleet.replicas.map((_, i) => opts.fleet.restart(i)));
      return reply(200, 'Every replica restarted; Gangway brings them back slowly (slow start)');
    }
    if (path === '/api/spike') {
      if (spikeState?.running) return reply(409, 'a spike is already running');
      spikeState = { sent: 0, ok: 0, shed: 0, other: 0, failed: 0, running: true };
      void spike(opts.proxyOrigin, '/api/tracks', 1000, 5, (r) => {
        spikeState = { ...r, running: spikeState!.running };
      }).then((r) => {
        spikeState = { ...r, running: false };
        note(`Spike over: ${r.ok} served, ${r.shed} shed at once with 503 + Retry-After, ${r.other + r.failed} failed`);
      });
      return reply(
        200,
        'Overload spike: 1,000 catalogue requests a second for 5 s, each asking past the cache (no-cache)',
        PLAIN_PROXY.spike,
      );
    }
    const mm = /^\/api\/maintenance\/(on|off)$/.exec(path);
    if (mm) {
      if (opts.adminOrigin === undefined) return reply(409, 'the gateway has no admin API');
      const on = mm[1] === 'on';
      const body = on
        ? {
            enabled: true,
            until: new Date(Date.now() + 10 * 60_000).toISOString(),
            message: 'The demo is in planned maintenance for ten minutes.',
          }
        : { enabled: false };
      const r = await fetch(`${opts.adminOrigin}/api/maintenance`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!r.ok) return reply(502, `the admin API answered ${r.status}`);
      maintenance = on;
      return reply(
        200,
        on ? 'Maintenance on for 10 minutes (PUT /api/maintenance)' : 'Maintenance off',
        on ? PLAIN_PROXY.maintenance : undefined,
      );
    }
    reply(404, `no action ${path}`);
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'POST') {
      void act(res, path).catch((err: Error) => res.writeHead(500).end(err.message));
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(
        CONSOLE_PAGE.replace('__PLAIN_PROXY__', JSON.stringify(PLAIN_PROXY).replace(/</g, '\\u003c')).replace(
          '__PROXY_ORIGIN__',
          JSON.stringify(opts.proxyOrigin),
        ),
      );
      return;
    }
    if (path === '/uplot.js' || path === '/uplot.css') {
      const a = uplotAssets();
      res.writeHead(200, {
        'content-type': path.endsWith('.js') ? 'text/javascript' : 'text/css',
        'cache-control': 'max-age=86400',
      });
      res.end(path.endsWith('.js') ? a.js : a.css);
      return;
    }
    const listener = /^\/api\/listeners\/([\w-]{1,40})$/.exec(path);
    if (listener) {
      // Asked by the player (another origin): which replica streams this listener's audio now.
      res.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'access-control-allow-origin': '*',
      });
      res.end(JSON.stringify(streamingReplica(opts.fleet, listener[1]!)));
      return;
    }
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      clients.add(res);
      res.once('close', () => clients.delete(res));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${bound}/`;
  opts.fleet.setConsole(url);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        for (const c of clients) c.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The replica whose stream to this listener started last (a frozen one may still hold an older one). */
function streamingReplica(fleet: ReplicaFleet, listener: string): { replica: string | null; since: number | null } {
  let best: { replica: string | null; since: number | null } = { replica: null, since: null };
  for (const r of fleet.replicas)
    for (const s of r.streams)
      if (s.listener === listener && s.since > (best.since ?? 0)) best = { replica: r.name, since: s.since };
  return best;
}

/** "1 broken stream", "3 broken streams". */
function count(n: number, noun: string): string {
  const whole = Math.max(1, Math.round(n));
  return `${whole} ${noun}${whole === 1 ? '' : 's'}`;
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
