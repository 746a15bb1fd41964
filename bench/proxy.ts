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
 * The workers row: Gangway with `workers: 2` beside `workers: 1`, and nginx with
 * `worker_processes auto` beside 1, in the same run — everything unpinned, since workers
 * must spread over the cores, which wrk and the origin share. Each cell also reports the CPU
 * time per request of the proxy's whole process tree (supervisor and workers; nginx's master
 * and workers), read from /proc: N workers scale to N cores as far as that cost stays flat.
 * wrk saturates the proxy, and a Node process that is not saturated spends more CPU per request
 * (fewer requests share each turn of its event loop, its caches go cold between them), so the
 * row also measures CPU per request at the same load per worker — an open loop of
 * BENCH_WORKER_RATE requests/s (default 2,000) against `workers: 1` and twice that against
 * `workers: 2` — which tells what a worker costs beyond the requests it serves.
 *
 * Environment: BENCH_SECONDS (default 8), BENCH_CONNECTIONS (default 64), BENCH_ROUNDS (default 3),
 * BENCH_ONLY=workers (the workers row alone), BENCH_WORKER_RATE.
 */
import { chmodSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ALL_CPUS,
  cpuSecondsOfTree,
  LOAD_CPU,
  machine,
  runWrk,
  startHaproxy,
  startNginx,
  startProcess,
  startStaticOrigin,
  which,
  type LoadResult,
  type Started,
} from './lib.js';
import { openLoop } from './open-loop.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const WORKER_RATE = Number(process.env.BENCH_WORKER_RATE ?? 2000);
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
  ['HAProxy (1 thread)', async () => startHaproxy(work, PROXY_PORT, ORIGIN_PORT)],
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

/** A gateway config file for the workers row. */
function gangwayWith(workers: number): string {
  const conf = join(work, `gangway-workers-${workers}.yaml`);
  writeFileSync(
    conf,
    `workers: ${workers}\nlisten: "127.0.0.1:${PROXY_PORT}"\nadmin: "127.0.0.1:18901"\n` +
      `upstreams:\n  origin: { hosts: ["127.0.0.1:${ORIGIN_PORT}"] }\n` +
      'routes:\n  - { match: { path: "/" }, upstream: origin }\n',
  );
  return conf;
}

const nginxProxy = (name: string, workerProcesses: number | 'auto'): Promise<Started> | undefined =>
  startNginx(
    name,
    work,
    PROXY_PORT,
    `access_log off; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:${ORIGIN_PORT}; keepalive 64; }
  server { listen 127.0.0.1:${PROXY_PORT};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
    { cpu: ALL_CPUS, workerProcesses },
  );

const workerPeers: Array<[string, PeerStarter]> = [
  [
    'gangway workers: 1',
    () =>
      startProcess(
        'gangway workers: 1',
        process.execPath,
        [join(ROOT, 'dist/cli.js'), 'start', '-c', gangwayWith(1)],
        PROXY_PORT,
        ALL_CPUS,
      ),
  ],
  [
    'gangway workers: 2',
    async () => {
      const started = await startProcess(
        'gangway workers: 2',
        process.execPath,
        [join(ROOT, 'dist/cli.js'), 'start', '-c', gangwayWith(2)],
        PROXY_PORT,
        ALL_CPUS,
      );
      // The port answers once the first worker listens; the second must have joined before measuring.
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const status = await fetch('http://127.0.0.1:18901/api/status').then(
          async (r) => (await r.json()) as { workers?: Array<{ state: string }> },
          () => undefined,
        );
        if (status?.workers?.every((w) => w.state === 'running')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return started;
    },
  ],
  ['nginx worker_processes 1', async () => nginxProxy('nginx-wp-1', 1)],
  ['nginx worker_processes auto', async () => nginxProxy('nginx-wp-auto', 'auto')],
];

interface WorkersCell {
  peer: string;
  result: LoadResult;
  /** CPU time of the proxy's process tree per request, microseconds. */
  cpuUs: number;
}

/** The workers row: every peer unpinned, 1 KiB answers, CPU per request of the whole process tree. */
async function workersRow(): Promise<string> {
  process.stdout.write(`\nworkers row: unpinned, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, 1 KiB, ${ROUNDS} rounds\n`);
  const originProc = await (startStaticOrigin(work, ORIGIN_PORT, ALL_CPUS) ?? startOrigin());
  const all: WorkersCell[] = [];
  const equalLoad: Array<{ workers: number; cpuUs: number }> = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, start] of workerPeers) {
        const proc = await start();
        if (!proc) continue;
        try {
          const url = `http://127.0.0.1:${PROXY_PORT}/1k`;
          runWrk(url, 1, CONNECTIONS, ALL_CPUS);
          const cpuBefore = cpuSecondsOfTree(proc.child.pid!);
          const result = runWrk(url, SECONDS, CONNECTIONS, ALL_CPUS);
          const cpuUs = ((cpuSecondsOfTree(proc.child.pid!) - cpuBefore) / result.requests) * 1e6;
          all.push({ peer: name, result, cpuUs });
          process.stdout.write(
            `  ${name.padEnd(28)} ${result.rps.toFixed(0).padStart(8)} req/s   p99 ${result.p99ms.toFixed(2)} ms   ` +
              `CPU ${cpuUs.toFixed(1)} µs/request` +
              (result.errors || result.non2xx ? `   errors ${result.errors} non-2xx ${result.non2xx}` : '') +
              '\n',
          );
        } finally {
          await proc.stop();
        }
      }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [workers, name] of [
        [1, 'gangway workers: 1'],
        [2, 'gangway workers: 2'],
      ] as const) {
        const proc = await workerPeers.find(([n]) => n === name)![1]();
        if (!proc) continue;
        try {
          const rate = WORKER_RATE * workers;
          await openLoop(PROXY_PORT, '/1k', rate, 1, 5000, CONNECTIONS);
          const cpuBefore = cpuSecondsOfTree(proc.child.pid!);
          const answers = await openLoop(PROXY_PORT, '/1k', rate, SECONDS, 5000, CONNECTIONS);
          const cpuUs = ((cpuSecondsOfTree(proc.child.pid!) - cpuBefore) / answers.length) * 1e6;
          equalLoad.push({ workers, cpuUs });
          const failed = answers.filter((a) => a.status !== 200).length;
          process.stdout.write(
            `  ${`${name}, ${rate} req/s`.padEnd(36)} CPU ${cpuUs.toFixed(1)} µs/request` +
              (failed ? `   not 200: ${failed}` : '') +
              '\n',
          );
        } finally {
          await proc.stop();
        }
      }
    }
  } finally {
    await originProc.stop();
  }
  const equalMedian = (workers: number): number => {
    const v = equalLoad
      .filter((e) => e.workers === workers)
      .map((e) => e.cpuUs)
      .sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)] ?? NaN;
  };
  const median = (peer: string): WorkersCell | undefined => {
    const same = all.filter((c) => c.peer === peer).sort((a, b) => a.result.rps - b.result.rps);
    return same[Math.floor((same.length - 1) / 2)];
  };
  const cells = workerPeers.map(([name]) => median(name)).filter((c) => c !== undefined);
  let table =
    '| peer | 2xx req/s | × its 1 worker | p99 ms | CPU µs/request (all processes) | CPU × its 1 worker |\n' +
    '|---|---:|---:|---:|---:|---:|\n';
  const one = (c: WorkersCell): WorkersCell | undefined =>
    median(c.peer.startsWith('gangway') ? 'gangway workers: 1' : 'nginx worker_processes 1');
  for (const c of cells) {
    const base = one(c)!;
    table +=
      `| ${c.peer} | ${c.result.rps.toFixed(0)} | ${(c.result.rps / base.result.rps).toFixed(2)} | ` +
      `${c.result.p99ms.toFixed(2)} | ${c.cpuUs.toFixed(1)} | ${(c.cpuUs / base.cpuUs).toFixed(2)} |\n`;
  }
  const g1 = median('gangway workers: 1');
  const g2 = median('gangway workers: 2');
  const summary =
    g1 && g2
      ? `Gangway workers: 2 = ${(g2.result.rps / g1.result.rps).toFixed(2)}× workers: 1 on this machine (aim ≥ 1.15; ` +
        `wrk and the origin share the 2 cores); CPU per request ${(g2.cpuUs / g1.cpuUs).toFixed(2)}× one worker's ` +
        `(aim ≤ 1.10), so N cores would give about ${(g1.cpuUs / g2.cpuUs).toFixed(2)}·N× (aim ≥ 0.8·N×)`
      : '';
  const e1 = equalMedian(1);
  const e2 = equalMedian(2);
  const equal =
    `At the same load per worker (open loop, ${WORKER_RATE} req/s per worker, median of ${ROUNDS}): CPU per ` +
    `request ${e1.toFixed(1)} µs with workers: 1, ${e2.toFixed(1)} µs with workers: 2 = ${(e2 / e1).toFixed(2)}× ` +
    `(aim ≤ 1.10), so N workers on N free cores would give about ${(e1 / e2).toFixed(2)}·N× (aim ≥ 0.8·N×)`;
  return `${table}\n${summary}\n${equal}\n`;
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'workers') {
    const row = await workersRow();
    const report =
      `Machine: ${machine()}\nCommand: BENCH_ONLY=workers npm run bench (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s per ` +
      `cell after a 1 s warm-up, unpinned; median of ${ROUNDS} rounds)\n\n${row}`;
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/workers.md'), report);
    process.stdout.write(`\n${row}(written to bench/results/workers.md)\n`);
    return;
  }
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
  const workers = await workersRow();
  const command =
    `npm run bench (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s per cell after a 1 s warm-up; ` +
    `median of ${ROUNDS} interleaved rounds)`;
  const report = `Machine: ${machine()}\nCommand: ${command}\n\n${table}\n${summary}\n\n## Workers\n\n${workers}`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/proxy.md'), report);
  process.stdout.write(`\n${table}\n${summary}\n\n${workers}(written to bench/results/proxy.md)\n`);
}

await main();
