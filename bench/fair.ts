/**
 * `npm run bench:fair`: fairness between concurrent large downloads. 64 keep-alive connections
 * download 1 MiB back to back for a bounded time (wrk), against the origin directly (the
 * control: what the origin and wrk do on their own), nginx with one worker, and Gangway with its
 * defaults, one at a time in interleaved rounds, each proxy pinned alone to core 1 as in
 * `npm run bench`. A download's latency is from its request to its last byte; a stream that
 * starves shows in the p99 and the max long before it shows in the median.
 *
 * Prints per round and peer: downloads per second (2xx), MiB/s, p50/p99/max latency, non-2xx;
 * then the median of each over the rounds, and the ratio p99 Gangway / p99 nginx of each round
 * (both measured in the same round) with its median (target: ≤ 2).
 *
 * Gangway runs twice per round: with its defaults, and without its adaptive concurrency limit
 * (see startGangway).
 *
 * Environment: BENCH_SECONDS (default 6), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default
 * 64); GANGWAY_BASELINE=path/to/dist adds rows for another build of Gangway (say, main's
 * dist before a change), run the same way.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LOAD_CPU,
  machine,
  runWrk,
  startNginx,
  startProcess,
  startStaticOrigin,
  which,
  type LoadResult,
  type Started,
} from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const BASELINE = process.env.GANGWAY_BASELINE;
/** wrk drops answers slower than its timeout from the latencies: the tail is what is measured here. */
const WRK_TIMEOUT_S = 30;
const ORIGIN_PORT = 18_101;
const PROXY_PORT = 18_180;
const ADMIN_PORT = 18_191;
const MiB = 1024 * 1024;

const work = mkdtempSync(join(tmpdir(), 'gangway-bench-fair-'));
// nginx workers run as an unprivileged user and must be able to read the origin's files.
chmodSync(work, 0o755);

for (const tool of ['wrk', 'nginx']) {
  if (!which(tool)) {
    process.stderr.write(`npm run bench:fair needs ${tool} (Debian: apt-get install wrk nginx-light)\n`);
    process.exit(1);
  }
}

/**
 * `limitOff`: without the adaptive concurrency limit. With it, Gangway sheds part of this load
 * with 503 on this machine (time to headers rises when wrk and the origin share a saturated
 * core), and wrk's latencies mix those quick refusals with the downloads: the row without it is
 * every request a download, as through nginx.
 */
function startGangway(dist: string, name: string, limitOff = false): Promise<Started> {
  const conf = join(work, `${name.replace(/[^a-z0-9]+/gi, '-')}.yaml`);
  writeFileSync(
    conf,
    `listen: "127.0.0.1:${PROXY_PORT}"
admin: "127.0.0.1:${ADMIN_PORT}"
upstreams:
  origin: { hosts: ["127.0.0.1:${ORIGIN_PORT}"]${limitOff ? ', concurrency: { enabled: false }' : ''} }
routes:
  - { match: { path: "/" }, upstream: origin }
`,
  );
  return startProcess(name, process.execPath, [join(dist, 'cli.js'), 'start', '-c', conf], PROXY_PORT);
}

type Peer = [string, () => Promise<Started>];
const gangways = (label: string, dist: string): Peer[] => [
  [label, () => startGangway(dist, label)],
  [`${label}, limit off`, () => startGangway(dist, `${label}, limit off`, true)],
];

/** The peers measured through a proxy port; `direct` is measured on the origin's own port. */
const peers: Peer[] = [
  ...gangways('gangway', join(ROOT, 'dist')),
  ...(BASELINE ? gangways('baseline', BASELINE) : []),
  [
    'nginx (1 worker)',
    () =>
      startNginx(
        'nginx',
        work,
        PROXY_PORT,
        `access_log off; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:${ORIGIN_PORT}; keepalive 64; }
  server { listen 127.0.0.1:${PROXY_PORT};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      )!,
  ],
];

interface Row {
  round: number;
  peer: string;
  result: LoadResult;
}

const cell = (n: number): string => n.toFixed(0).padStart(5);

function line(peer: string, r: LoadResult): string {
  return (
    `  ${peer.padEnd(20)} ${cell(r.rps)} downloads/s ${cell(r.bytesPerSec / MiB)} MiB/s` +
    `   p50 ${cell(r.p50ms)} ms   p99 ${cell(r.p99ms)} ms   max ${cell(r.maxMs)} ms` +
    (r.non2xx || r.errors ? `   non-2xx ${r.non2xx} errors ${r.errors}` : '')
  );
}

function measure(round: number, peer: string, url: string, rows: Row[]): void {
  runWrk(url, 1, CONNECTIONS, LOAD_CPU, WRK_TIMEOUT_S); // warm-up: connections, JIT, pools, socket buffers
  const result = runWrk(url, SECONDS, CONNECTIONS, LOAD_CPU, WRK_TIMEOUT_S);
  rows.push({ round, peer, result });
  process.stdout.write(`${line(peer, result)}\n`);
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

async function main(): Promise<void> {
  process.stdout.write(
    `Machine: ${machine()}\nwrk -t1 -c${CONNECTIONS} -d${SECONDS}s --timeout ${WRK_TIMEOUT_S}s on 1 MiB, ` +
      `each proxy alone on core 1 (wrk and the origin on core 0), ${ROUNDS} interleaved rounds\n`,
  );
  const rows: Row[] = [];
  const origin = (await startStaticOrigin(work, ORIGIN_PORT))!;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`\nround ${round} of ${ROUNDS}\n`);
      measure(round, 'direct (no proxy)', `http://127.0.0.1:${ORIGIN_PORT}/1m`, rows);
      for (const [name, start] of peers) {
        const proc = await start();
        try {
          measure(round, name, `http://127.0.0.1:${PROXY_PORT}/1m`, rows);
        } finally {
          await proc.stop();
        }
      }
    }
  } finally {
    await origin.stop();
  }

  const names = ['direct (no proxy)', ...peers.map(([name]) => name)];
  let table =
    '| peer | downloads/s | MiB/s | p50 ms | p99 ms | max ms | non-2xx |\n|---|---:|---:|---:|---:|---:|---:|\n';
  for (const name of names) {
    const of = rows.filter((r) => r.peer === name).map((r) => r.result);
    const m = (f: (r: LoadResult) => number): number => median(of.map(f));
    table +=
      `| ${name} | ${m((r) => r.rps).toFixed(0)} | ${m((r) => r.bytesPerSec / MiB).toFixed(0)} | ` +
      `${m((r) => r.p50ms).toFixed(0)} | ${m((r) => r.p99ms).toFixed(0)} | ${m((r) => r.maxMs).toFixed(0)} | ` +
      `${of.reduce((n, r) => n + r.non2xx, 0)} |\n`;
  }
  const ratioOf = (peer: string): string => {
    const ratios: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const p99 = (name: string): number | undefined =>
        rows.find((r) => r.round === round && r.peer === name)?.result.p99ms;
      const gw = p99(peer);
      const ng = p99('nginx (1 worker)');
      if (gw !== undefined && ng !== undefined) ratios.push(gw / ng);
    }
    return (
      `p99 ${peer} / p99 nginx, per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}; ` +
      `median ${median(ratios).toFixed(2)} (target ≤ 2)`
    );
  };
  const summary = peers
    .map(([name]) => name)
    .filter((name) => !name.startsWith('nginx'))
    .map(ratioOf)
    .join('\n');
  const report =
    `Machine: ${machine()}\nCommand: npm run bench:fair (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s --timeout ` +
    `${WRK_TIMEOUT_S}s per cell after a 1 s warm-up; medians of ${ROUNDS} interleaved rounds; ` +
    `non-2xx summed over the rounds)\n\n${table}\n${summary}\n`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/fair.md'), report);
  process.stdout.write(`\n${table}\n${summary}\n(written to bench/results/fair.md)\n`);
}

await main();
