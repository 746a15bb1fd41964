/**
 * `npm run bench:fleet`: a global rate limit across a fleet. Two Gangway instances share one
 * redis-server (the same `name`); one route has `rateLimit: { requests: 1000, window: "10s" }`
 * keyed by client address, and the open-loop generator offers 5× that (500 req/s, half to each
 * instance) for 20 s with Redis up, then stops Redis and goes on for 8 s more. It reports what
 * the fleet admitted in each 10 s window (the first includes the bucket's initial burst of
 * 1,000), any failed request (anything but 200 or 429), and the p99 latency with Redis up and
 * with Redis down — the added p99 is what the outage cost a request. Instances run on core 1,
 * Redis, the origin and this generator on core 0 (with taskset).
 *
 * FLEET_SECONDS_UP / FLEET_SECONDS_DOWN shorten or lengthen the phases.
 */
import { NODE_FLAGS } from '../src/node-flags.js';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, machine, startProcess, waitForPort, which, type Started } from './lib.js';
import { openLoop, type OpenLoopAnswer } from './open-loop.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PORTS = [18_480, 18_481];
const ADMIN_PORTS = [18_490, 18_491];
const REDIS_PORT = 18_499;
const LIMIT = 1000;
const WINDOW_S = 10;
const RATE = (5 * LIMIT) / WINDOW_S;
const UP_S = Number(process.env.FLEET_SECONDS_UP ?? 20);
const DOWN_S = Number(process.env.FLEET_SECONDS_DOWN ?? 8);
/** Answers in the first second after Redis stopped are left out of the outage's p99 (the switch-over). */
const SETTLE_MS = 1000;

const redisBinary = which('redis-server');
if (redisBinary === undefined) {
  console.error('redis-server is not installed (apt-get install redis-server)');
  process.exit(1);
}

function startRedis(): Started & { port: number } {
  const taskset = which('taskset');
  const args = ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = taskset
    ? spawn(taskset, ['-c', LOAD_CPU, redisBinary!, ...args], { stdio: 'ignore' })
    : spawn(redisBinary!, args, { stdio: 'ignore' });
  return {
    name: 'redis',
    port: REDIS_PORT,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** Failures by status (0: no answer within the client timeout) and Proxy-Status error. */
function breakdown(answers: OpenLoopAnswer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const error = a.proxyStatus === undefined ? undefined : (/error=([a-z_]+)/.exec(a.proxyStatus)?.[1] ?? '');
    const key = error === undefined ? `${a.status}` : `${a.status} ${error}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

function p(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
}

async function main(): Promise<void> {
  const origin = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const originAddress = `127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const redis = startRedis();
  await waitForPort(REDIS_PORT);
  const work = mkdtempSync(join(tmpdir(), 'gangway-fleet-'));
  const gateways: Started[] = [];
  for (const [i, port] of PORTS.entries()) {
    const conf = join(work, `gangway-${i}.yaml`);
    writeFileSync(
      conf,
      `name: bench-fleet
listen: "127.0.0.1:${port}"
admin: "127.0.0.1:${ADMIN_PORTS[i]}"
log: { level: warn, access: false }
store: { redis: { url: "redis://127.0.0.1:${REDIS_PORT}" } }
upstreams:
  music: { hosts: ["${originAddress}"], healthCheck: { enabled: false } }
routes:
  - name: api
    match: { path: "/" }
    upstream: music
    rateLimit: { requests: ${LIMIT}, window: "${WINDOW_S}s" }
`,
    );
    gateways.push(
      await startProcess(
        `gangway ${i}`,
        process.execPath,
        [...NODE_FLAGS, join(ROOT, 'dist/cli.js'), 'start', '-c', conf],
        port,
      ),
    );
  }
  // Each instance has counted the other (a heartbeat a second) before the clock starts.
  await new Promise((r) => setTimeout(r, 2500));

  const seconds = UP_S + DOWN_S;
  const stopAt = UP_S * 1000;
  const redisStopped = new Promise<void>((resolve) => {
    setTimeout(() => void redis.stop().then(resolve), stopAt);
  });
  const runs = await Promise.all(PORTS.map((port) => openLoop(port, '/', RATE / PORTS.length, seconds, 5000, 100)));
  await redisStopped;
  const answers: OpenLoopAnswer[] = runs.flat();

  const failed = answers.filter((a) => a.status !== 200 && a.status !== 429);
  const shedBefore = answers.filter((a) => a.status === 503 && a.proxyStatus?.includes('gateway overloaded')).length;
  const windows: string[] = [];
  // By when each was answered (the limit decides then; a busy machine answers late), and every
  // answer that passed the limit: all but 429s and the event-loop guard's sheds, which come first.
  const decided = (a: OpenLoopAnswer): number => a.at + a.ms;
  const passed = (a: OpenLoopAnswer): boolean =>
    a.status !== 429 && a.status !== 0 && !(a.status === 503 && a.proxyStatus?.includes('gateway overloaded'));
  for (let w = 0; w * WINDOW_S * 1000 < stopAt; w++) {
    const from = w * WINDOW_S * 1000;
    const to = Math.min(stopAt, from + WINDOW_S * 1000);
    const inWindow = answers.filter((a) => decided(a) >= from && decided(a) < to);
    const admitted = inWindow.filter(passed).length;
    const limit = (LIMIT * (to - from)) / (WINDOW_S * 1000) + (w === 0 ? LIMIT : 0);
    windows.push(
      `  ${from / 1000}–${to / 1000} s: admitted ${admitted} of ${inWindow.length} offered; the limit allows ` +
        `${Math.round(limit)}${w === 0 ? ' (with the initial burst)' : ''}: ` +
        `${(((admitted - limit) / limit) * 100).toFixed(1)}%`,
    );
  }
  const up = answers.filter((a) => a.at >= WINDOW_S * 1000 && a.at < stopAt).map((a) => a.ms);
  const downAnswers = answers.filter((a) => a.at >= stopAt + SETTLE_MS);
  const down = downAnswers.map((a) => a.ms);
  const downAdmitted = downAnswers.filter(passed).length;
  const downSpan = (seconds * 1000 - stopAt - SETTLE_MS) / 1000;
  const report = [
    `Machine: ${machine()}`,
    `Command: npm run bench:fleet (2 instances, 1 redis-server; rateLimit ${LIMIT} per ${WINDOW_S} s by address; ` +
      `${RATE} req/s open loop; Redis up ${UP_S} s, then stopped for ${DOWN_S} s)`,
    '',
    'Admitted per window, Redis up:',
    ...windows,
    `Redis stopped: admitted ${downAdmitted} in ${downSpan} s ` +
      `(${Math.round((downAdmitted / downSpan) * WINDOW_S)} per ` +
      `${WINDOW_S} s; each instance's local share is ${LIMIT / PORTS.length} per ${WINDOW_S} s)`,
    `Not 200 or 429: ${failed.length} of ${answers.length} ${JSON.stringify(breakdown(failed))} (shed by the ` +
      `event-loop guard: ${shedBefore}); with Redis up ${failed.filter((a) => a.at < stopAt).length}, ` +
      `down ${failed.filter((a) => a.at >= stopAt).length}`,
    `Latency p50 / p99, Redis up (${WINDOW_S}–${UP_S} s): ${p(up, 0.5).toFixed(2)} / ${p(up, 0.99).toFixed(2)} ms`,
    `Latency p50 / p99, Redis down (from ${SETTLE_MS / 1000} s after the stop): ${p(down, 0.5).toFixed(2)} / ` +
      `${p(down, 0.99).toFixed(2)} ms`,
    `Added p99 with Redis down: ${(p(down, 0.99) - p(up, 0.99)).toFixed(2)} ms`,
  ].join('\n');
  console.log(report);
  for (const g of gateways) await g.stop();
  origin.close();
}

await main();
