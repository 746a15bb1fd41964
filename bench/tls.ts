/**
 * `npm run bench:tls`: terminating TLS in front of one origin — Gangway beside nginx (1 worker,
 * `ssl` + `http2`), HAProxy (1 thread, `alpn h2,http/1.1`) and Caddy (`GOMAXPROCS=1`), each with
 * the tests' certificate, one at a time on core 1 (load generators and the origin on core 0):
 *
 *   HTTP/1.1 over TLS, 1 KiB and 1 MiB   wrk -t1 -c64, keep-alive
 *   HTTP/2, 1 KiB                        h2load -c16 -m10 (16 connections, 10 streams each)
 *   new handshakes                       h2load --h1 with one request per connection
 *
 * and Gangway in cleartext (1 KiB, wrk) for its own TLS cost. Peers that are not installed are
 * skipped and said so. Environment: BENCH_SECONDS (default 8).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LOAD_CPU,
  machine,
  runWrk,
  startHaproxy,
  startNginx,
  startProcess,
  startStaticOrigin,
  which,
  type Started,
} from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ORIGIN_PORT = 18_401;
const PROXY_PORT = 18_443;
const CLEAR_PORT = 18_480;
const TLS_DIR = join(ROOT, 'test/support/tls');
const work = mkdtempSync(join(tmpdir(), 'gangway-bench-tls-'));
chmodSync(work, 0o755);
const CERT = join(work, 'cert.pem');
const KEY = join(work, 'key.pem');
writeFileSync(CERT, readFileSync(join(TLS_DIR, 'localhost-cert.pem')));
writeFileSync(KEY, readFileSync(join(TLS_DIR, 'localhost-key.pem')));
chmodSync(KEY, 0o644);
const out: string[] = [];
const say = (line: string): void => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};

for (const tool of ['wrk', 'h2load', 'nginx']) {
  if (!which(tool)) {
    process.stderr.write(`npm run bench:tls needs ${tool} (apt-get install wrk nghttp2-client nginx-light)\n`);
    process.exit(1);
  }
}

const gangway = (tls: boolean) => (): Promise<Started> => {
  const conf = join(work, `gangway-${tls ? 'tls' : 'clear'}.yaml`);
  const port = tls ? PROXY_PORT : CLEAR_PORT;
  writeFileSync(
    conf,
    `listen: ${
      tls ? `{ address: "127.0.0.1:${port}", tls: { cert: "cert.pem", key: "key.pem" } ` + `}` : `"127.0.0.1:${port}"`
    }
admin: false
log: { access: false }
upstreams:
  origin: { hosts: ["127.0.0.1:${ORIGIN_PORT}"], healthCheck: { enabled: false }, concurrency: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: origin }
`,
  );
  return startProcess('gangway', process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', conf], port);
};

const peers: Array<[string, () => Promise<Started> | undefined]> = [
  ['gangway', gangway(true)],
  [
    'nginx (1 worker)',
    () =>
      startNginx(
        'nginx-tls',
        work,
        PROXY_PORT,
        `access_log off; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:${ORIGIN_PORT}; keepalive 64; }
  server { listen 127.0.0.1:${PROXY_PORT} ssl http2; ssl_certificate ${CERT}; ssl_certificate_key ${KEY};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      ),
  ],
  [
    'HAProxy (1 thread)',
    () => {
      // HAProxy reads the certificate and its key from one file.
      const pem = join(work, 'haproxy.pem');
      writeFileSync(pem, Buffer.concat([readFileSync(CERT), readFileSync(KEY)]));
      return startHaproxy(work, PROXY_PORT, ORIGIN_PORT, `ssl crt ${pem} alpn h2,http/1.1`);
    },
  ],
  [
    'Caddy (GOMAXPROCS=1)',
    () => {
      const caddy = which('caddy');
      if (!caddy) return undefined;
      const file = join(work, 'Caddyfile');
      writeFileSync(
        file,
        `{
  admin off
  auto_https off
}
https://localhost:${PROXY_PORT}, https://127.0.0.1:${PROXY_PORT} {
  bind 127.0.0.1
  tls ${CERT} ${KEY}
  reverse_proxy 127.0.0.1:${ORIGIN_PORT}
}
`,
      );
      process.env.GOMAXPROCS = '1';
      return startProcess('caddy', caddy, ['run', '--config', file, '--adapter', 'caddyfile'], PROXY_PORT);
    },
  ],
];

function h2load(args: string[]): { rps: number; failed: number; seconds: number } {
  const text = execFileSync('taskset', ['-c', LOAD_CPU, 'h2load', ...args], { encoding: 'utf8' });
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text)?.[1] ?? Number.NaN);
  const failed = Number(/requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed/.exec(text)?.[1] ?? 0);
  const took = /finished in ([\d.]+)(ms|s)/.exec(text);
  const seconds = took ? Number(took[1]) / (took[2] === 'ms' ? 1000 : 1) : Number.NaN;
  return { rps, failed, seconds };
}

async function main(): Promise<void> {
  say(`Machine: ${machine()}`);
  say(
    `TLS 1.3 with the tests' P-256 certificate; each proxy alone on core 1, ` +
      `wrk/h2load and the origin (nginx) on core 0`,
  );
  const origin = await startStaticOrigin(work, ORIGIN_PORT)!;
  try {
    const clear = await gangway(false)();
    try {
      runWrk(`http://127.0.0.1:${CLEAR_PORT}/1k`, 1, 64);
      const r = runWrk(`http://127.0.0.1:${CLEAR_PORT}/1k`, SECONDS, 64);
      say(`\n  ${'gangway, cleartext HTTP/1.1'.padEnd(30)} 1 KiB ${r.rps.toFixed(0).padStart(7)} req/s`);
    } finally {
      await clear.stop();
    }
    for (const [name, start] of peers) {
      const proc = await start();
      if (proc === undefined) {
        say(`  ${name.padEnd(30)} not installed, skipped`);
        continue;
      }
      try {
        const url = `https://127.0.0.1:${PROXY_PORT}`;
        runWrk(`${url}/1k`, 1, 64);
        const h1k = runWrk(`${url}/1k`, SECONDS, 64);
        const h1m = runWrk(`${url}/1m`, SECONDS, 16);
        const h2 = h2load(['-D', String(SECONDS), '-c', '16', '-m', '10', `${url}/1k`]);
        const hs = h2load(['--h1', '-n', '1000', '-c', '1000', '-m', '1', `${url}/1k`]);
        say(
          `  ${name.padEnd(30)} h1 1 KiB ${h1k.rps.toFixed(0).padStart(7)} req/s · ` +
            `h1 1 MiB ${h1m.rps.toFixed(0).padStart(5)} req/s · h2 1 KiB ${h2.rps.toFixed(0).padStart(7)} ` +
            `req/s (${h2.failed} failed) · handshakes ${(1000 / hs.seconds).toFixed(0).padStart(5)}/s ` +
            `(${hs.failed} failed)`,
        );
      } finally {
        await proc.stop();
      }
    }
  } finally {
    await origin.stop();
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const report = `# TLS — npm run bench:tls\n\n\`\`\`\n${out.join('\n')}\n\`\`\`\n`;
  writeFileSync(join(ROOT, 'bench/results/tls.md'), report);
  process.stdout.write('\n(written to bench/results/tls.md)\n');
}

await main();
