/**
 * `npm run bench`: throughput and latency of Gangway beside other proxies, in one run on
 * loopback. Each proxy runs alone (one at a time) in front of the same origin, and wrk
 * drives it with keep-alive connections, for 1 KiB and 1 MiB responses.
 *
 * Peers: the origin directly; Gangway (default config, access log on, to /dev/null);
 * http-proxy; @fastify/http-proxy; a bare node:http + undici forwarder (the floor of what
 * Node can do); nginx and HAProxy with one worker each, when installed.
 *
 * This machine is small (2 cores shared by wrk, the proxy and the origin) and noisy, so
 * the peers are measured in BENCH_ROUNDS interleaved rounds and each cell reports the
 * median round. The proxy under test runs alone on core 1; wrk and the origin share core 0
 * (taskset), which takes the scheduler's luck out of the comparison.
 *
 * Environment: BENCH_SECONDS (default 8), BENCH_CONNECTIONS (default 64), BENCH_ROUNDS (default 3).
 */
import { chmodSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
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
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const ORIGIN_PORT = 18_001;
const PROXY_PORT = 18_080;
const work = mkdtempSync(join(tmpdir(), 'gangway-bench-'));
// nginx workers run as an unprivileged user and must be able to read the origin's files.
chmodSync(work, 0o755);

if (!which('wrk')) {
  process.stderr.write(
    'npm run bench needs wrk (Debian: apt-get install wrk); nginx-light and haproxy are measured when installed.\n',
  );
  process.exit(1);
}

async function startOrigin(): Promise<Started> {
  return (
    startStaticOrigin(work, ORIGIN_PORT) ??
    startProcess(
      'origin (node)',
      process.execPath,
      [join(ROOT, 'bench/peers/upstream.mjs'), String(ORIGIN_PORT)],
      ORIGIN_PORT,
      LOAD_CPU,
    )
  );
}

type PeerStarter = () => Promise<Started | undefined>;
const origin = `http://127.0.0.1:${ORIGIN_PORT}`;

const peers: Array<[string, PeerStarter]> = [
  [
    'gangway',
    async () => {
      const conf = join(work, 'gangway.yaml');
      writeFileSync(
        conf,
        `listen: "127.0.0.1:${PROXY_PORT}"\nadmin: "127.0.0.1:18901"\nupstreams:\n  origin: { hosts: ["127.0.0.1:${ORIGIN_PORT}"] }\nroutes:\n  - { match: { path: "/" }, upstream: origin }\n`,
      );
      return startProcess('gangway', process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', conf], PROXY_PORT);
    },
  ],
  [
    'floor (node:http + undici)',
    () =>
      startProcess(
        'floor',
        process.execPath,
        [join(ROOT, 'bench/peers/floor.mjs'), String(PROXY_PORT), origin],
        PROXY_PORT,
      ),
  ],
  [
    'http-proxy',
    () =>
      startProcess(
        'http-proxy',
        process.execPath,
        [join(ROOT, 'bench/peers/http-proxy.cjs'), String(PROXY_PORT), origin],
        PROXY_PORT,
      ),
  ],
  [
    '@fastify/http-proxy',
    () =>
      startProcess(
        '@fastify/http-proxy',
        process.execPath,
        [join(ROOT, 'bench/peers/fastify-proxy.mjs'), String(PROXY_PORT), origin],
        PROXY_PORT,
      ),
  ],
  [
    'nginx (1 worker)',
    async () =>
      startNginx(
        'nginx',
        work,
        PROXY_PORT,
        `access_log off; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:${ORIGIN_PORT}; keepalive 64; }
  server { listen 127.0.0.1:${PROXY_PORT};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      ),
  ],
  [
    'HAProxy (1 thread)',
    async () => {
      const haproxy = which('haproxy');
      if (!haproxy) return undefined;
      const conf = join(work, 'haproxy.cfg');
      writeFileSync(
        conf,
        `global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:${PROXY_PORT}
  default_backend be
backend be
  server origin 127.0.0.1:${ORIGIN_PORT}
`,
      );
      return startProcess('haproxy', haproxy, ['-f', conf, '-db'], PROXY_PORT);
    },
  ],
];

interface Row {
  peer: string;
  size: string;
  result: LoadResult;
}

function measure(peer: string, url: string, size: string, rows: Row[]): void {
  runWrk(url, 1, CONNECTIONS); // warm-up: connections, JIT, pools
  const result = runWrk(url, SECONDS, CONNECTIONS);
  rows.push({ peer, size, result });
  process.stdout.write(
    `  ${peer.padEnd(28)} ${size.padEnd(6)} ${result.rps.toFixed(0).padStart(8)} req/s   p50 ${result.p50ms.toFixed(2)} ms   p99 ${result.p99ms.toFixed(2)} ms${result.errors || result.non2xx ? `   errors ${result.errors} non-2xx ${result.non2xx}` : ''}\n`,
  );
}

/** The round with the median throughput, per peer and size. */
function medians(all: Row[]): Row[] {
  const out: Row[] = [];
  for (const r of all) {
    if (out.some((o) => o.peer === r.peer && o.size === r.size)) continue;
    const same = all.filter((o) => o.peer === r.peer && o.size === r.size).sort((a, b) => a.result.rps - b.result.rps);
    out.push(same[Math.floor((same.length - 1) / 2)]!);
  }
  return out;
}

async function main(): Promise<void> {
  process.stdout.write(
    `Machine: ${machine()}\nwrk -t1 -c${CONNECTIONS} -d${SECONDS}s, one proxy at a time pinned to core 1 (wrk and origin on core 0), ${ROUNDS} rounds\n`,
  );
  const all: Row[] = [];
  const originProc = await startOrigin();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`\nround ${round} of ${ROUNDS}\n`);
      for (const size of ['1k', '1m']) measure('direct (no proxy)', `${origin}/${size}`, size, all);
      for (const [name, start] of peers) {
        const proc = await start();
        if (!proc) {
          if (round === 1) process.stdout.write(`  ${name.padEnd(28)} not installed, skipped\n`);
          continue;
        }
        try {
          for (const size of ['1k', '1m']) measure(name, `http://127.0.0.1:${PROXY_PORT}/${size}`, size, all);
        } finally {
          await proc.stop();
        }
      }
    }
  } finally {
    await originProc.stop();
  }
  const rows = medians(all);

  const find = (peer: string, size: string) => rows.find((r) => r.peer.startsWith(peer) && r.size === size)?.result;
  let table = `| peer | size | 2xx req/s | non-2xx | p50 ms | p99 ms | × floor | × http-proxy |\n|---|---|---:|---:|---:|---:|---:|---:|\n`;
  for (const r of rows) {
    const floor = find('floor', r.size);
    const hp = find('http-proxy', r.size);
    table += `| ${r.peer} | ${r.size === '1k' ? '1 KiB' : '1 MiB'} | ${r.result.rps.toFixed(0)} | ${r.result.non2xx} | ${r.result.p50ms.toFixed(2)} | ${r.result.p99ms.toFixed(2)} | ${floor ? (r.result.rps / floor.rps).toFixed(2) : '–'} | ${hp ? (r.result.rps / hp.rps).toFixed(2) : '–'} |\n`;
  }
  const gw1k = find('gangway', '1k');
  const gw1m = find('gangway', '1m');
  const summary = [
    gw1k && find('http-proxy', '1k')
      ? `Gangway 1 KiB: ${(gw1k.rps / find('http-proxy', '1k')!.rps).toFixed(2)}× http-proxy (target ≥ 1.5), ${(gw1k.rps / find('floor', '1k')!.rps).toFixed(2)}× the floor (target ≥ 0.85)`
      : '',
    gw1m && find('floor', '1m')
      ? `Gangway 1 MiB: ${(gw1m.rps / find('floor', '1m')!.rps).toFixed(2)}× the floor (target ≥ 0.9)`
      : '',
  ]
    .filter(Boolean)
    .join('\n');
  const report = `Machine: ${machine()}\nCommand: npm run bench (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s per cell after a 1 s warm-up; median of ${ROUNDS} interleaved rounds)\n\n${table}\n${summary}\n`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/proxy.md'), report);
  process.stdout.write(`\n${table}\n${summary}\n(written to bench/results/proxy.md)\n`);
}

await main();
