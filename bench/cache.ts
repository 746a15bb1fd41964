/**
 * `npm run bench:cache`: Gangway's HTTP cache beside nginx's proxy_cache, in one run on
 * loopback, in three parts:
 *
 *   1. throughput of 1 KiB hits (wrk, keep-alive): Gangway with the cache, Gangway without it
 *      (the same origin through an uncached route), nginx proxy_cache with one worker;
 *      target: Gangway's hits ≥ 1.5× its own uncached proxying
 *   2. a total outage of a cached route: 50 URLs stored with max-age=1, the origin killed once
 *      they are stale, then every URL asked 10 times — answered from the stale copies?
 *      (Gangway `staleIfError: 10m`; nginx `proxy_cache_use_stale error timeout http_502
 *      http_503 http_504`)
 *   3. 1,000 concurrent requests for one cold object that takes 300 ms: how many reach the
 *      origin (Gangway collapses; nginx with `proxy_cache_lock on`)
 *
 * The proxy under test runs on core 1, wrk and the origin on core 0 (taskset), as in
 * `npm run bench`. Environment: BENCH_SECONDS (default 8), BENCH_CONNECTIONS (default 64).
 */
import { mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { LOAD_CPU, machine, runWrk, startNginx, startProcess, which, type Started } from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const ORIGIN_PORT = 18_101;
const PROXY_PORT = 18_180;
const ADMIN_PORT = 18_191;
const work = mkdtempSync(join(tmpdir(), 'gangway-bench-cache-'));
chmodSync(work, 0o755);
const out: string[] = [];
const say = (line: string): void => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};

if (!which('wrk')) {
  process.stderr.write(
    'npm run bench:cache needs wrk (apt-get install wrk); nginx-light is measured when installed.\n',
  );
  process.exit(1);
}

const startOrigin = (): Promise<Started> =>
  startProcess(
    'origin',
    process.execPath,
    [join(ROOT, 'bench/peers/cache-origin.mjs'), String(ORIGIN_PORT)],
    ORIGIN_PORT,
    LOAD_CPU,
  );

function startGangway(): Promise<Started> {
  const conf = join(work, 'gangway.yaml');
  writeFileSync(
    conf,
    `listen: "127.0.0.1:${PROXY_PORT}"
admin: "127.0.0.1:${ADMIN_PORT}"
log: { access: false }
upstreams:
  origin:
    hosts: ["127.0.0.1:${ORIGIN_PORT}"]
    healthCheck: { enabled: false }
    concurrency: { enabled: false }
routes:
  - { match: { path: "/uncached" }, upstream: origin }
  - { match: { path: "/" }, upstream: origin, cache: { staleIfError: "10m" } }
`,
  );
  return startProcess('gangway', process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', conf], PROXY_PORT);
}

function startNginxCache(): Promise<Started> | undefined {
  const cacheDir = join(work, 'nginx-cache');
  mkdirSync(cacheDir, { recursive: true });
  chmodSync(cacheDir, 0o777);
  return startNginx(
    'nginx proxy_cache',
    work,
    PROXY_PORT,
    `access_log off; keepalive_requests 1000000;
  proxy_cache_path ${cacheDir} levels=1:2 keys_zone=bench:10m max_size=256m inactive=1h use_temp_path=off;
  upstream origin { server 127.0.0.1:${ORIGIN_PORT}; keepalive 64; }
  server { listen 127.0.0.1:${PROXY_PORT};
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache bench; proxy_cache_lock on; proxy_cache_lock_timeout 5s;
      proxy_cache_use_stale error timeout http_502 http_503 http_504 updating;
      add_header X-Cache-Status $upstream_cache_status;
    } }`,
  );
}

async function originCounts(): Promise<Record<string, number>> {
  const r = await request(`http://127.0.0.1:${ORIGIN_PORT}/__count`);
  return (await r.body.json()) as Record<string, number>;
}

const proxy = `http://127.0.0.1:${PROXY_PORT}`;

async function throughput(name: string, start: () => Promise<Started> | undefined, path: string) {
  const proc = await start();
  if (proc === undefined) return undefined;
  try {
    runWrk(`${proxy}${path}`, 1, CONNECTIONS); // warm-up: fills the cache, JIT, pools
    const r = runWrk(`${proxy}${path}`, SECONDS, CONNECTIONS);
    say(
      `  ${name.padEnd(30)} ${r.rps.toFixed(0).padStart(8)} req/s   p50 ${r.p50ms.toFixed(2)} ` +
        `ms   p99 ${r.p99ms.toFixed(2)} ms${r.errors || r.non2xx ? `   errors ${r.errors} non-2xx ${r.non2xx}` : ''}`,
    );
    return r.rps;
  } finally {
    await proc.stop();
  }
}

/** Stores 50 URLs, lets them go stale, kills the origin, asks each 10 times: how many got the stored copy? */
async function outage(name: string, start: () => Promise<Started> | undefined): Promise<void> {
  const origin = await startOrigin();
  const proc = await start();
  if (proc === undefined) {
    await origin.stop();
    return;
  }
  try {
    const urls = Array.from({ length: 50 }, (_, i) => `${proxy}/outage/${i}?ttl=1`);
    for (const u of urls) await (await request(u)).body.dump();
    await new Promise((r) => setTimeout(r, 2000));
    await origin.stop();
    let ok = 0;
    let total = 0;
    let withStatus = 0;
    for (let round = 0; round < 10; round++) {
      for (const u of urls) {
        const r = await request(u);
        await r.body.dump();
        total++;
        if (r.statusCode === 200) ok++;
        if (r.headers['cache-status'] !== undefined && r.headers['proxy-status'] !== undefined) withStatus++;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    say(
      `  ${name.padEnd(30)} ${ok} of ${total} answered 200 from the stale copy ` +
        `(${((ok / total) * 100).toFixed(0)}%)` +
        (withStatus ? `, ${withStatus} with Cache-Status and Proxy-Status` : ''),
    );
  } finally {
    await proc.stop();
    await origin.stop();
  }
}

/** 1,000 concurrent requests for a cold object: how many reached the origin? */
async function stampede(name: string, start: () => Promise<Started> | undefined): Promise<void> {
  const origin = await startOrigin();
  const proc = await start();
  if (proc === undefined) {
    await origin.stop();
    return;
  }
  const agent = new Agent({ connections: 1000, pipelining: 0 });
  try {
    const answers = await Promise.all(
      Array.from({ length: 1000 }, () =>
        request(`${proxy}/cold`, { dispatcher: agent }).then(
          async (r) => {
            await r.body.dump();
            return r.statusCode;
          },
          () => 0,
        ),
      ),
    );
    const counts = await originCounts();
    say(
      `  ${name.padEnd(30)} ${counts['/cold'] ?? 0} request(s) reached the origin; ` +
        `${answers.filter((s) => s === 200).length} of 1000 answered 200`,
    );
  } finally {
    await agent.close();
    await proc.stop();
    await origin.stop();
  }
}

async function main(): Promise<void> {
  say(`Machine: ${machine()}`);
  say(`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, the proxy pinned to core 1 (wrk and origin on core 0)`);
  say('\n1. Throughput, 1 KiB');
  const origin = await startOrigin();
  let hits: number | undefined;
  let uncached: number | undefined;
  let nginx: number | undefined;
  try {
    uncached = await throughput('gangway, no cache', startGangway, '/uncached/1k');
    hits = await throughput('gangway, cache hits', startGangway, '/1k');
    nginx = await throughput('nginx proxy_cache hits', startNginxCache, '/1k');
  } finally {
    await origin.stop();
  }
  if (hits !== undefined && uncached !== undefined)
    say(`  gangway hits / gangway uncached: ${(hits / uncached).toFixed(2)}× (target ≥ 1.5×)`);
  if (hits !== undefined && nginx !== undefined) say(`  gangway hits / nginx hits: ${(hits / nginx).toFixed(2)}×`);

  say('\n2. Total outage of a cached route (50 stale URLs × 10 requests, origin killed)');
  await outage('gangway (staleIfError 10m)', startGangway);
  await outage('nginx (proxy_cache_use_stale)', startNginxCache);

  say('\n3. 1,000 concurrent requests for one cold object (300 ms at the origin)');
  await stampede('gangway (collapsing)', startGangway);
  await stampede('nginx (proxy_cache_lock on)', startNginxCache);

  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench/results/cache.md'),
    `# Cache — npm run bench:cache\n\n\`\`\`\n${out.join('\n')}\n\`\`\`\n`,
  );
  process.stdout.write('\n(written to bench/results/cache.md)\n');
}

await main();
