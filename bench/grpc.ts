/**
 * npm run bench:grpc — what Gangway costs a gRPC service: unary calls (a JSON-encoded Get of
 * test/support/grpc-host.mjs, a real @grpc/grpc-js server on h2c) sent by h2load straight to the
 * host, then through Gangway (h2c listener, h2c pool); and plain GETs from HTTP/1.1 clients
 * through Gangway to the same 2-byte answer from an h2c origin (node:http2, pool protocol h2c)
 * and from an HTTP/1.1 origin (node:http), the cost of speaking HTTP/2 upstream. Gangway alone
 * on core 1, the hosts and h2load on core 0. Reports requests/s and Gangway's CPU time per
 * request (/proc): on a shared machine the throughput is the noisy figure, the CPU the steadier.
 *
 *   GANGWAY_BENCH_SECONDS   seconds per run (default 5)
 *   GANGWAY_BENCH_PROFILE   a directory: Gangway writes a V8 CPU profile there when it stops
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOAD_CPU, machine, startProcess, which } from './lib.js';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.GANGWAY_BENCH_SECONDS ?? 5);
const PROFILE = process.env.GANGWAY_BENCH_PROFILE
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.GANGWAY_BENCH_PROFILE}`]
  : [];
const work = mkdtempSync(join(tmpdir(), 'gangway-bench-grpc-'));
const out: string[] = [];
const say = (line: string): void => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};

for (const tool of ['h2load', 'taskset']) {
  if (which(tool) === undefined) {
    process.stderr.write(`${tool} is needed (Debian: nghttp2-client, util-linux)\n`);
    process.exit(1);
  }
}

/** Clock ticks of CPU (user + system) a process has used; 100 per second on Linux. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function h2load(args: string[]): { rps: number; done: number; failed: number; errored: number } {
  const text = execFileSync('taskset', ['-c', LOAD_CPU, 'h2load', ...args], { encoding: 'utf8' });
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text)?.[1] ?? Number.NaN);
  const m = /requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored/.exec(text);
  if (!m) process.stderr.write(`h2load said:\n${text}\n`);
  return { rps, done: Number(m?.[1] ?? 0), failed: Number(m?.[2] ?? 0), errored: Number(m?.[3] ?? 0) };
}

/** A port the OS just gave out and took back: nothing else on the shared machine is on it. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function main(): Promise<void> {
  const GATEWAY_PORT = await freePort();
  const H1_PORT = await freePort();
  const ORIGIN_PORT = await freePort();
  say(`Machine: ${machine()}`);
  say(`h2load for ${SECONDS} s a run; Gangway alone on core 1, the hosts and h2load on core 0`);
  const host = fork(join(ROOT, 'test/support/grpc-host.mjs'), ['bench', 'h2c'], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const hostPort = await new Promise<number>((resolve) =>
    host.on('message', (m: { ready?: boolean; port?: number }) => {
      if (m.ready) resolve(m.port!);
    }),
  );
  execFileSync('taskset', ['-pc', LOAD_CPU, String(host.pid)]);
  // The host reports every call over IPC; nobody listens here.
  host.channel?.unref();
  // The HTTP/1.1 baseline: a node:http origin answering 2 bytes, as small as the gRPC answer.
  const origin = await startProcess(
    'origin',
    process.execPath,
    ['-e', `require('http').createServer((q,s)=>s.end('ok')).listen(${ORIGIN_PORT},'127.0.0.1')`],
    ORIGIN_PORT,
    LOAD_CPU,
  );
  // The same answer over h2c (node:http2), for an HTTP/1.1 client spoken upstream in HTTP/2.
  const H2C_ORIGIN_PORT = await freePort();
  const h2cOrigin = await startProcess(
    'h2c origin',
    process.execPath,
    ['-e', `require('http2').createServer((q,s)=>s.end('ok')).listen(${H2C_ORIGIN_PORT},'127.0.0.1')`],
    H2C_ORIGIN_PORT,
    LOAD_CPU,
  );
  const conf = join(work, 'gangway.yaml');
  writeFileSync(
    conf,
    `listen:\n  - { address: "127.0.0.1:${GATEWAY_PORT}", h2c: true }\n  - "127.0.0.1:${H1_PORT}"\n` +
      // No shedding on event-loop delay: on a shared machine it would turn a slow second into 503s.
      'admin: false\nlog: { level: warn, access: false }\nserver: { maxEventLoopDelay: 0s }\n' +
      'upstreams:\n  catalogue:\n    protocol: h2c\n' +
      `    hosts: ["127.0.0.1:${hostPort}"]\n    healthCheck: { enabled: false }\n` +
      `  web:\n    hosts: ["127.0.0.1:${ORIGIN_PORT}"]\n    healthCheck: { enabled: false }\n` +
      `  web2:\n    protocol: h2c\n    hosts: ["127.0.0.1:${H2C_ORIGIN_PORT}"]\n    healthCheck: { enabled: false }\n` +
      'routes:\n  - { match: { path: /web2 }, upstream: web2 }\n  - { match: { path: /web }, upstream: web }\n' +
      '  - { match: { path: / }, upstream: catalogue }\n',
  );
  const gangway = await startProcess(
    'gangway',
    process.execPath,
    [...PROFILE, join(ROOT, 'dist/cli.js'), 'start', '-c', conf],
    GATEWAY_PORT,
  );
  const call = join(work, 'get.bin');
  const message = Buffer.from(JSON.stringify({ id: '7' }));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  writeFileSync(call, frame);
  const grpc = ['-c', '16', '-m', '10', '-d', call, '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
  const h1 = ['--h1', '-c', '16', '-m', '1'];
  const get = '/gangway.test.Catalogue/Get';
  /** One run after a second of warm-up; Gangway's CPU per request when `gateway` says it is in the path. */
  const measure = (label: string, args: string[], url: string, gateway: boolean): void => {
    h2load(['-D', '1', ...args, url]);
    const before = cpuTicks(gangway.child.pid!);
    const r = h2load(['-D', String(SECONDS), ...args, url]);
    const cpu = gateway ? ((cpuTicks(gangway.child.pid!) - before) * 10_000) / Math.max(1, r.done) : undefined;
    say(
      `  ${label.padEnd(40)} ${r.rps.toFixed(0).padStart(7)} req/s (${r.failed} failed, ${r.errored} errored)` +
        (cpu === undefined ? '' : ` · Gangway CPU ${cpu.toFixed(0)} µs/request`),
    );
  };
  try {
    measure('gRPC unary, straight to the host', grpc, `http://127.0.0.1:${hostPort}${get}`, false);
    measure('gRPC unary through Gangway (h2c → h2c)', grpc, `http://127.0.0.1:${GATEWAY_PORT}${get}`, true);
    measure('HTTP/1.1 client → Gangway → h2c origin', h1, `http://127.0.0.1:${H1_PORT}/web2`, true);
    measure('HTTP/1.1 client → Gangway → HTTP/1.1 origin', h1, `http://127.0.0.1:${H1_PORT}/web`, true);
  } finally {
    await gangway.stop();
    await origin.stop();
    await h2cOrigin.stop();
    host.kill('SIGKILL');
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench/results/grpc.md'),
    `# gRPC — npm run bench:grpc\n\n\`\`\`\n${out.join('\n')}\n\`\`\`\n`,
  );
  process.stdout.write('\n(written to bench/results/grpc.md)\n');
}

await main();
