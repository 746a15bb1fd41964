/**
 * `npm run bench:fleet`: a global rate limit across a fleet. Two Gangway instances share one
 * redis-server (the same `name`); one route has `rateLimit: { requests: 1000, window: "10s" }`
 * keyed by client address, and the open-loop generator offers 5× that (500 req/s, half to each
 * instance) for 20 s with Redis up; then Redis is killed and started again (empty, as after a
 * crash) twice, each outage and each return lasting 6 s. It reports what the fleet admitted in each
 * 10 s window of the first 20 s (the first includes the bucket's initial burst of 1,000) and in
 * the outages, any failed request (anything but 200 or 429), and the latency with Redis up (10–20
 * s and the returns) against Redis down (the outages), each phase from 1 s after its switch. The
 * outages and returns alternate so that both sample the same stretch of this shared machine's
 * noise, which moves a one-second p99 by tens of ms: the added p99 is what an outage cost a
 * request. Instances run on core 1, Redis, the origin and this generator on core 0 (with taskset).
 * The origin and each instance's load run in worker threads of their own: starting and killing
 * Redis from the main thread (a fork) and its garbage collection would otherwise pause them, and
 * those pauses — tens of ms, in both instances at once — read as the gateways' latency.
 *
 * FLEET_SECONDS_UP (first phase), FLEET_SECONDS_DOWN (each outage and return) and FLEET_OUTAGES
 * change the schedule.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
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
const DOWN_S = Number(process.env.FLEET_SECONDS_DOWN ?? 6);
const OUTAGES = Number(process.env.FLEET_OUTAGES ?? 2);
/**
 * Answers in the first second after Redis stopped or came back are left out of that phase's
 * latency (the switch-over).
 */
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

type ThreadJob = { role: 'origin' } | { role: 'load'; port: number; rate: number; seconds: number };

/** Runs `job` in a worker thread of this file; resolves with what it posts first. */
function inThread<T>(job: ThreadJob): { result: Promise<T>; worker: Worker } {
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { result, worker };
}

/** A worker thread's side: the origin (posts its port, then serves until terminated) or one instance's load. */
async function thread(job: ThreadJob): Promise<void> {
  if (job.role === 'origin') {
    const origin = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    parentPort!.postMessage((origin.address() as AddressInfo).port);
    return;
  }
  parentPort!.postMessage(await openLoop(job.port, '/', job.rate, job.seconds, 5000, 100));
}

async function main(): Promise<void> {
  const originThread = inThread<number>({ role: 'origin' });
  const originAddress = `127.0.0.1:${await originThread.result}`;
  let redis = startRedis();
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
      await startProcess(`gangway ${i}`, process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', conf], port),
    );
  }
  // Each instance has counted the other (a heartbeat a second) before the clock starts.
  await new Promise((r) => setTimeout(r, 2500));

  // The phases after the first: [from, to) in ms and whether Redis is down.
  const phases: Array<{ from: number; to: number; down: boolean }> = [];
  for (let i = 0; i < 2 * OUTAGES; i++)
    phases.push({ from: (UP_S + i * DOWN_S) * 1000, to: (UP_S + (i + 1) * DOWN_S) * 1000, down: i % 2 === 0 });
  const seconds = UP_S + 2 * OUTAGES * DOWN_S;
  const stopAt = UP_S * 1000;
  const switched = Promise.all(
    phases.map(
      (phase) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            if (phase.down) void redis.stop().then(resolve);
            else {
              redis = startRedis();
              resolve();
            }
          }, phase.from),
        ),
    ),
  );
  const runs = await Promise.all(
    PORTS.map((port) => inThread<OpenLoopAnswer[]>({ role: 'load', port, rate: RATE / PORTS.length, seconds }).result),
  );
  await switched;
  await redis.stop();
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
  // Redis comes back empty (as after a crash): each bucket starts full again, less what the instances
  // pay back of what their local shares admitted meanwhile.
  const returns = phases
    .filter((ph) => !ph.down)
    .map((ph) => {
      const admitted = answers.filter((a) => decided(a) >= ph.from && decided(a) < ph.to && passed(a)).length;
      const byRate = Math.round((LIMIT * (ph.to - ph.from)) / (WINDOW_S * 1000));
      return `  ${ph.from / 1000}–${ph.to / 1000} s: admitted ${admitted}; the rate alone allows ${byRate}`;
    });
  const settled = (down: boolean): OpenLoopAnswer[] =>
    answers.filter((a) => phases.some((ph) => ph.down === down && a.at >= ph.from + SETTLE_MS && a.at < ph.to));
  const upAnswers = [...answers.filter((a) => a.at >= WINDOW_S * 1000 && a.at < stopAt), ...settled(false)];
  const downAnswers = settled(true);
  const up = upAnswers.map((a) => a.ms);
  const down = downAnswers.map((a) => a.ms);
  const downAdmitted = downAnswers.filter(passed).length;
  const downSpan = (OUTAGES * (DOWN_S * 1000 - SETTLE_MS)) / 1000;
  const slow = (values: number[], ms: number): string =>
    `${((values.filter((v) => v > ms).length / values.length) * 100).toFixed(2)}%`;
  // p99 second by second: a cost that comes in bursts (a reconnection, a timer) shows where it lands.
  const bySecond: string[] = [];
  for (let sec = 0; sec < seconds; sec++) {
    const inSecond = answers.filter((a) => a.at >= sec * 1000 && a.at < (sec + 1) * 1000).map((a) => a.ms);
    const down = phases.some((ph) => ph.down && sec * 1000 >= ph.from && sec * 1000 < ph.to);
    bySecond.push(`${sec}${down ? '*' : ''}:${p(inSecond, 0.99).toFixed(1)}`);
  }
  const report = [
    `Machine: ${machine()}`,
    `Command: npm run bench:fleet (2 instances, 1 redis-server; rateLimit ${LIMIT} per ${WINDOW_S} s by address; ` +
      `${RATE} req/s open loop; Redis up ${UP_S} s, then ${OUTAGES} × (killed ${DOWN_S} s, started again ` +
      `empty ${DOWN_S} s))`,
    '',
    'Admitted per window, Redis up:',
    ...windows,
    `Redis down: admitted ${downAdmitted} in ${downSpan} s ` +
      `(${Math.round((downAdmitted / downSpan) * WINDOW_S)} per ` +
      `${WINDOW_S} s; each instance's local share is ${LIMIT / PORTS.length} per ${WINDOW_S} s)`,
    'Admitted after Redis came back empty:',
    ...returns,
    `Not 200 or 429: ${failed.length} of ${answers.length} ${JSON.stringify(breakdown(failed))} (shed by the ` +
      `event-loop guard: ${shedBefore}); with Redis up ${failed.filter((a) => !downAt(phases, a.at)).length}, ` +
      `down ${failed.filter((a) => downAt(phases, a.at)).length}`,
    `Latency p50 / p99 / over 10 ms, Redis up (${WINDOW_S}–${UP_S} s and the returns, ${up.length} answers): ` +
      `${p(up, 0.5).toFixed(2)} / ${p(up, 0.99).toFixed(2)} ms / ${slow(up, 10)}`,
    `Latency p50 / p99 / over 10 ms, Redis down (the outages, ${down.length} answers): ${p(down, 0.5).toFixed(2)} / ` +
      `${p(down, 0.99).toFixed(2)} ms / ${slow(down, 10)}`,
    `Added p99 with Redis down: ${(p(down, 0.99) - p(up, 0.99)).toFixed(2)} ms`,
    `p99 ms second by second (* Redis down): ${bySecond.join(' ')}`,
  ].join('\n');
  console.log(report);
  for (const g of gateways) await g.stop();
  await originThread.worker.terminate();
}

function downAt(phases: Array<{ from: number; to: number; down: boolean }>, at: number): boolean {
  return phases.some((ph) => ph.down && at >= ph.from && at < ph.to);
}

if (isMainThread) await main();
else await thread(workerData as ThreadJob);
