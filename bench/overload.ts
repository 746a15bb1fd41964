/**
 * `npm run bench:overload`: an upstream with a fixed capacity (8 requests at a time, 20 ms
 * each: ≈ 400 req/s) is offered three times that (1,200 req/s, open loop, 5 s) through
 * Gangway (default settings) and, when installed, nginx and HAProxy with their usual
 * settings. What matters to the people sending the requests: how many got a useful answer
 * in time (goodput: 200s within 1 s, per second), how long the admitted ones took, and
 * whether the rest got a fast, honest refusal (503/429 with Retry-After) or a long wait.
 * Each proxy first gets a 2 s warm-up at half the capacity. The proxy runs on core 1, the
 * origin and this load generator on core 0.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LOAD_CPU,
  machine,
  pinSelfToLoadCpu,
  startHaproxyWith,
  startNginx,
  startProcess,
  type Started,
} from './lib.js';
import { openLoop, type OpenLoopAnswer } from './open-loop.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PROXY_PORT = 18_380;
const ORIGIN_PORT = 18_390;
const SLOTS = 8;
const WORK_MS = 20;
const CAPACITY = (SLOTS * 1000) / WORK_MS;
const RATE = Number(process.env.OVERLOAD_RATE ?? CAPACITY * 3);
const SECONDS = 5;
const CLIENT_TIMEOUT_MS = 15_000;
const work = mkdtempSync(join(tmpdir(), 'gangway-overload-'));
chmodSync(work, 0o755);
const origin = `127.0.0.1:${ORIGIN_PORT}`;

const proxies: Array<[string, () => Promise<Started | undefined>]> = [
  [
    'gangway',
    async () => {
      const conf = join(work, 'gangway.yaml');
      writeFileSync(
        conf,
        `listen: "127.0.0.1:${PROXY_PORT}"\nadmin: false\nlog: { access: false }\nupstreams:\n  app: { hosts: ["${origin}"] }\nroutes:\n  - { upstream: app }\n`,
      );
      return startProcess('gangway', process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', conf], PROXY_PORT);
    },
  ],
  [
    'nginx',
    async () =>
      startNginx(
        'nginx',
        work,
        PROXY_PORT,
        `access_log off;
  upstream app { server ${origin}; keepalive 32; }
  server { listen 127.0.0.1:${PROXY_PORT};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
        { workerConnections: 16384 },
      ),
  ],
  [
    'HAProxy',
    async () =>
      startHaproxyWith(
        work,
        PROXY_PORT,
        `global
  maxconn 8000
defaults
  mode http
  maxconn 8000
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${PROXY_PORT}
  default_backend be
backend be
  server s0 ${origin}
`,
      ),
  ],
];

function startOrigin(): Promise<Started> {
  return startProcess(
    'origin',
    process.execPath,
    [join(ROOT, 'bench/peers/capacity-origin.mjs'), String(ORIGIN_PORT), String(SLOTS), String(WORK_MS)],
    ORIGIN_PORT,
    LOAD_CPU,
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Figures {
  proxy: string;
  goodput: number;
  okP50: number;
  okP99: number;
  ok: number;
  shed: number;
  shedWithRetryAfter: number;
  shedP50: number;
  otherErrors: number;
  unanswered: number;
}

function figures(proxy: string, answers: OpenLoopAnswer[]): Figures {
  const ok = answers
    .filter((a) => a.status === 200)
    .map((a) => a.ms)
    .sort((a, b) => a - b);
  const shed = answers.filter((a) => a.status === 503 || a.status === 429);
  const shedMs = shed.map((a) => a.ms).sort((a, b) => a - b);
  return {
    proxy,
    goodput: ok.filter((ms) => ms <= 1000).length / SECONDS,
    okP50: percentile(ok, 50),
    okP99: percentile(ok, 99),
    ok: ok.length,
    shed: shed.length,
    shedWithRetryAfter: shed.filter((a) => a.retryAfter).length,
    shedP50: percentile(shedMs, 50),
    otherErrors: answers.filter((a) => a.status !== 0 && a.status !== 200 && a.status !== 503 && a.status !== 429)
      .length,
    unanswered: answers.filter((a) => a.status === 0).length,
  };
}

async function main(): Promise<void> {
  if (pinSelfToLoadCpu()) return;
  process.stdout.write(
    `Machine: ${machine()}\nOrigin capacity ${SLOTS} × ${WORK_MS} ms ≈ ${CAPACITY} req/s; offered ${RATE} req/s open loop for ${SECONDS} s\n\n`,
  );
  const rows: Figures[] = [];
  const only = process.env.OVERLOAD_PROXIES?.split(',');
  for (const [name, start] of proxies) {
    if (only && !only.includes(name)) continue;
    const originChild = await startOrigin();
    let proxy: Started | undefined;
    try {
      proxy = await start();
      if (!proxy) continue;
      // Warm-up at half the capacity: JIT-compiled code in every process, connections open,
      // and the gateway's unloaded latency measured — a gateway meets a spike warm.
      await openLoop(PROXY_PORT, '/', CAPACITY / 2, 2, CLIENT_TIMEOUT_MS, 50);
      await new Promise((r) => setTimeout(r, 1000));
      const answers = await openLoop(PROXY_PORT, '/', RATE, SECONDS, CLIENT_TIMEOUT_MS);
      const f = figures(name, answers);
      rows.push(f);
      process.stdout.write(
        `  ${name.padEnd(8)} goodput ${f.goodput.toFixed(0).padStart(4)}/s (${((f.goodput / CAPACITY) * 100).toFixed(0)}% of capacity)  200s ${f.ok}  p50 ${f.okP50.toFixed(0)} ms  p99 ${f.okP99.toFixed(0)} ms  shed ${f.shed} (Retry-After ${f.shedWithRetryAfter}, p50 ${f.shedP50.toFixed(1)} ms)  other ${f.otherErrors}  unanswered ${f.unanswered}\n`,
      );
    } finally {
      await proxy?.stop();
      await originChild.stop();
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  let table =
    '| proxy | goodput (200 within 1 s) | share of capacity | 200s | admitted p50 ms | admitted p99 ms | shed (503/429) | with Retry-After | shed answer p50 ms | other statuses | unanswered |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const f of rows) {
    table += `| ${f.proxy} | ${f.goodput.toFixed(0)}/s | ${((f.goodput / CAPACITY) * 100).toFixed(0)}% | ${f.ok} | ${f.okP50.toFixed(0)} | ${f.okP99.toFixed(0)} | ${f.shed} | ${f.shedWithRetryAfter} | ${Number.isNaN(f.shedP50) ? '–' : f.shedP50.toFixed(1)} | ${f.otherErrors} | ${f.unanswered} |\n`;
  }
  const report = `Machine: ${machine()}\nCommand: npm run bench:overload (origin ${SLOTS} slots × ${WORK_MS} ms ≈ ${CAPACITY} req/s; ${RATE} req/s open loop for ${SECONDS} s; latency from each request's scheduled time; client timeout ${CLIENT_TIMEOUT_MS / 1000} s)\n\n${table}`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/overload.md'), report);
  process.stdout.write(`\n${table}\n(written to bench/results/overload.md)\n`);
}

await main();
