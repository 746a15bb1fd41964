/**
 * `npm run bench:faults`: the resilience scenarios, side by side, through Gangway (default
 * settings) and, when installed, nginx (`proxy_next_upstream error timeout http_502 http_503
 * http_504`, `max_fails`) and HAProxy (`retry-on all-retryable-errors`, `option redispatch`,
 * `option httpchk`). Each scenario is a bounded load with a 10 s client timeout; the figures
 * are what a client sees: failed requests, p99, truncated or corrupted streams.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { frozenListener } from '../test/support/frozen-listener.js';
import { runLoad } from '../test/support/load.js';
import { machine, startHaproxyWith, startNginx, startProcess, type Started } from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ORIGIN = join(ROOT, 'bench/peers/fault-origin.mjs');
const PROXY_PORT = 18_180;
const BASE_PORT = 18_200;
const work = mkdtempSync(join(tmpdir(), 'gangway-faults-'));
chmodSync(work, 0o755);

interface Row {
  scenario: string;
  proxy: string;
  failed: number;
  total: number;
  p99ms: number;
  note: string;
}

function startOrigin(port: number, name: string, mode = 'ok'): Promise<ChildProcess> {
  const child = fork(ORIGIN, [String(port), name, mode], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (c) => reject(new Error(`origin ${name} exited ${c}`)));
  });
}

type ProxyStarter = (hosts: string[]) => Promise<Started | undefined>;

const proxies: Array<[string, ProxyStarter]> = [
  [
    'gangway',
    async (hosts) => {
      const conf = join(work, 'gangway.yaml');
      writeFileSync(
        conf,
        `listen: "127.0.0.1:${PROXY_PORT}"\nadmin: false\nlog: { access: false }\nupstreams:\n  app: { hosts: [${hosts.map((h) => `"${h}"`).join(', ')}], healthCheck: { path: "/small" } }\nroutes:\n  - { upstream: app }\n`,
      );
      return startProcess('gangway', process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', conf], PROXY_PORT);
    },
  ],
  [
    'nginx',
    async (hosts) =>
      startNginx(
        'nginx',
        work,
        PROXY_PORT,
        `access_log off;
  upstream app { ${hosts.map((h) => `server ${h} max_fails=1 fail_timeout=10s;`).join(' ')} keepalive 32; }
  server { listen 127.0.0.1:${PROXY_PORT};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504; } }`,
      ),
  ],
  [
    'HAProxy',
    async (hosts) =>
      startHaproxyWith(
        work,
        PROXY_PORT,
        `defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
  retry-on all-retryable-errors
frontend fe
  bind 127.0.0.1:${PROXY_PORT}
  default_backend be
backend be
  option httpchk GET /small
  default-server check inter 1s
${hosts.map((h, i) => `  server s${i} ${h}`).join('\n')}
`,
      ),
  ],
];

const url = `http://127.0.0.1:${PROXY_PORT}`;
const LOAD = { total: 600, concurrency: 6, timeoutMs: 10_000 };

interface Scenario {
  name: string;
  /** Starts the hosts; returns their addresses and a hook run as the load progresses. */
  setup(): Promise<{ hosts: string[]; onProgress?: (done: number) => void; stop(): Promise<void> | void }>;
  run(onProgress?: (done: number) => void): Promise<{ failed: number; total: number; p99ms: number; note: string }>;
}

async function loadRun(onProgress?: (done: number) => void) {
  const r = await runLoad(`${url}/small`, { ...LOAD, onProgress });
  return {
    failed: LOAD.total - (r.byStatus[200] ?? 0),
    total: LOAD.total,
    p99ms: r.p99,
    note: JSON.stringify(r.byStatus),
  };
}

async function origins(modes: string[]): Promise<{ hosts: string[]; children: ChildProcess[] }> {
  const children = await Promise.all(modes.map((m, i) => startOrigin(BASE_PORT + i, `h${i}`, m)));
  return { hosts: modes.map((_, i) => `127.0.0.1:${BASE_PORT + i}`), children };
}

const scenarios: Scenario[] = [
  {
    name: 'black-holed host (1 of 4, SYNs dropped)',
    async setup() {
      const { hosts, children } = await origins(['ok', 'ok', 'ok']);
      const hole = await frozenListener();
      return {
        hosts: [...hosts, `127.0.0.1:${hole.port}`],
        stop: () => {
          hole.close();
          for (const c of children) c.kill('SIGKILL');
        },
      };
    },
    run: loadRun,
  },
  {
    name: 'host killed under load, restarted',
    async setup() {
      const { hosts, children } = await origins(['ok', 'ok', 'ok']);
      let restarted: Promise<void> = Promise.resolve();
      return {
        hosts,
        onProgress: (done) => {
          if (done === 150) children[1]!.kill('SIGKILL');
          if (done === 400)
            restarted = startOrigin(BASE_PORT + 1, 'h1-again').then((c) => {
              children.push(c);
            });
        },
        stop: async () => {
          await restarted.catch(() => {});
          for (const c of children) c.kill('SIGKILL');
        },
      };
    },
    run: loadRun,
  },
  {
    name: 'host frozen under load (SIGSTOP)',
    async setup() {
      const { hosts, children } = await origins(['ok', 'ok', 'ok']);
      return {
        hosts,
        onProgress: (done) => {
          if (done === 100) process.kill(children[2]!.pid!, 'SIGSTOP');
        },
        stop: () => {
          process.kill(children[2]!.pid!, 'SIGCONT');
          for (const c of children) c.kill('SIGKILL');
        },
      };
    },
    run: loadRun,
  },
  {
    name: 'one slow host (250 ms) of 3',
    async setup() {
      const { hosts, children } = await origins(['ok', 'ok', 'slow:250']);
      return {
        hosts,
        stop: () => {
          for (const c of children) c.kill('SIGKILL');
        },
      };
    },
    run: loadRun,
  },
  {
    name: '2 MB stream cut at 30% by 1 host of 2',
    async setup() {
      const { hosts, children } = await origins(['cut:600000', 'ok']);
      return {
        hosts,
        stop: () => {
          for (const c of children) c.kill('SIGKILL');
        },
      };
    },
    async run() {
      let bad = 0;
      const times: number[] = [];
      let expected: string | undefined;
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        try {
          const res = await request(`${url}/blob`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
          const body = Buffer.from(await res.body.arrayBuffer());
          const digest = createHash('sha256').update(body).digest('hex');
          expected ??= body.length === 2_000_000 ? digest : undefined;
          if (res.statusCode !== 200 || body.length !== 2_000_000 || (expected && digest !== expected)) bad++;
        } catch {
          bad++;
        }
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      return { failed: bad, total: 20, p99ms: times[times.length - 1]!, note: 'truncated or failed downloads' };
    },
  },
];

async function main(): Promise<void> {
  process.stdout.write(`Machine: ${machine()}\n\n`);
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    for (const [proxyName, startProxy] of proxies) {
      const env = await scenario.setup();
      let proxy: Started | undefined;
      try {
        proxy = await startProxy(env.hosts);
        if (!proxy) continue;
        await new Promise((r) => setTimeout(r, 1500)); // health checks settle
        const result = await scenario.run(env.onProgress);
        rows.push({ scenario: scenario.name, proxy: proxyName, ...result });
        process.stdout.write(
          `  ${scenario.name.padEnd(42)} ${proxyName.padEnd(8)} failed ${String(result.failed).padStart(4)}/${result.total}  p99 ${result.p99ms.toFixed(0).padStart(6)} ms  ${result.note}\n`,
        );
      } finally {
        await proxy?.stop();
        await env.stop();
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }
  let table = '| scenario | proxy | client-visible failures | p99 ms |\n|---|---|---:|---:|\n';
  for (const r of rows) table += `| ${r.scenario} | ${r.proxy} | ${r.failed} / ${r.total} | ${r.p99ms.toFixed(0)} |\n`;
  const report = `Machine: ${machine()}\nCommand: npm run bench:faults (${LOAD.total} GETs at concurrency ${LOAD.concurrency} per scenario, 10 s client timeout; 20 sequential 2 MB downloads for the stream cut)\n\n${table}`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/faults.md'), report);
  process.stdout.write(`\n${table}\n(written to bench/results/faults.md)\n`);
}

await main();
