/**
 * Shared pieces of the benchmarks: starting peers as child processes, waiting for their
 * ports, running wrk, and describing the machine.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export function which(cmd: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/sbin', '/bin']) {
    try {
      execFileSync('test', ['-x', `${dir}/${cmd}`]);
      return `${dir}/${cmd}`;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${port} did not open`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export interface Started {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * CPU pinning. Two cores shared by the load generator, the proxy and the origin make the
 * scheduler the biggest source of noise; so the proxy under test gets core 1 to itself and
 * wrk and the origin share core 0. Without taskset everything floats.
 */
const TASKSET = which('taskset');
export const PROXY_CPU = '1';
export const LOAD_CPU = '0';

/** Run on every core, unpinned: for processes that must spread over the cores (workers). */
export const ALL_CPUS = 'all';

function pinned(cpu: string, cmd: string, args: string[]): [string, string[]] {
  return TASKSET && cpu !== ALL_CPUS ? [TASKSET, ['-c', cpu, cmd, ...args]] : [cmd, args];
}

export async function startProcess(
  name: string,
  command: string,
  commandArgs: string[],
  port: number,
  cpu = PROXY_CPU,
): Promise<Started> {
  const [cmd, args] = pinned(cpu, command, commandArgs);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  try {
    await waitForPort(port);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${name} did not start: ${(err as Error).message}\n${stderr}`);
  }
  return {
    name,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Runs this benchmark script again pinned to the load generator's core, once: a generator
 * written in Node must not float onto the proxy's core. Returns true in the parent, which
 * should then stop.
 */
export function pinSelfToLoadCpu(): boolean {
  if (!TASKSET || process.env.GANGWAY_BENCH_PINNED) return false;
  const r = spawnSync(TASKSET, ['-c', LOAD_CPU, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, GANGWAY_BENCH_PINNED: '1' },
  });
  process.exitCode = r.status ?? 1;
  return true;
}

/**
 * Starts nginx on one `http { … }` block; the frame around it — one worker in the
 * foreground, pid and error log under `work` — is the same for every bench. Undefined when
 * nginx is not installed.
 */
export function startNginx(
  name: string,
  work: string,
  port: number,
  http: string,
  opts: { workerConnections?: number; cpu?: string; workerProcesses?: number | 'auto' } = {},
): Promise<Started> | undefined {
  const nginx = which('nginx');
  if (!nginx) return undefined;
  const file = name.replace(/[^a-z0-9]+/gi, '-');
  const conf = join(work, `${file}.conf`);
  writeFileSync(
    conf,
    `worker_processes ${opts.workerProcesses ?? 1}; daemon off; pid ${work}/${file}.pid;
error_log ${work}/${file}-error.log error;
events { worker_connections ${opts.workerConnections ?? 4096}; }
http { ${http} }
`,
  );
  return startProcess(name, nginx, ['-c', conf, '-p', work], port, opts.cpu);
}

/**
 * Starts HAProxy with one thread in front of `origin`, listening on `port` (its `bind` line gets
 * `bindOptions`, e.g. TLS); the same defaults for every bench. Undefined when HAProxy is not
 * installed.
 */
export function startHaproxy(
  work: string,
  port: number,
  origin: number,
  bindOptions = '',
): Promise<Started> | undefined {
  return startHaproxyWith(
    work,
    port,
    `global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}${bindOptions ? ` ${bindOptions}` : ''}
  default_backend be
backend be
  server origin 127.0.0.1:${origin}
`,
  );
}

/** Starts HAProxy on `config`, a whole configuration listening on `port`; undefined when HAProxy is not installed. */
export function startHaproxyWith(work: string, port: number, config: string): Promise<Started> | undefined {
  const haproxy = which('haproxy');
  if (!haproxy) return undefined;
  const conf = join(work, 'haproxy.cfg');
  writeFileSync(conf, config);
  return startProcess('haproxy', haproxy, ['-f', conf, '-db'], port);
}

/**
 * The benchmarks' origin: nginx serving fixed 1 KiB and 1 MiB files from `work`, on the load
 * generator's core; undefined when nginx is not installed.
 */
export function startStaticOrigin(work: string, port: number, cpu = LOAD_CPU): Promise<Started> | undefined {
  if (!which('nginx')) return undefined;
  const root = join(work, 'www');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, '1k'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(root, '1m'), Buffer.alloc(1024 * 1024, 'b'));
  return startNginx(
    'origin (nginx static)',
    work,
    port,
    `access_log off; keepalive_requests 1000000; default_type application/octet-stream;
  server { listen 127.0.0.1:${port}; root ${root}; }`,
    { cpu },
  );
}

export interface LoadResult {
  /** Every answer wrk counted, 2xx or not. */
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** The slowest answer. */
  maxMs: number;
  /** Bytes read per second (wrk's Transfer/sec: heads and bodies). */
  bytesPerSec: number;
  errors: number;
  non2xx: number;
}

const UNIT: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/**
 * Closed-loop load with wrk: `connections` keep-alive connections for `seconds`, on `cpu`. wrk
 * leaves an answer slower than its `timeout` (2 s by default) out of the latencies, so a bench
 * about the tail gives a longer one.
 */
export function runWrk(
  url: string,
  seconds: number,
  connections: number,
  cpu = LOAD_CPU,
  timeoutSeconds?: number,
): LoadResult {
  const timeout = timeoutSeconds === undefined ? [] : [`--timeout`, `${timeoutSeconds}s`];
  const [cmd, args] = pinned(cpu, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, ...timeout, '--latency', url]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (re: RegExp): number => {
    const m = re.exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/) || 0;
  // Answers that were not 2xx (a proxy shedding load with 503) do not count as throughput.
  const requests = num(/(\d+) requests in ([\d.]+)(ms|s|m)/);
  const duration = ms(/\d+ requests in ([\d.]+)(ms|s|m)/) / 1000;
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(out);
  return {
    requests,
    rps: (requests - non2xx) / duration,
    p50ms: ms(/\s50%\s+([\d.]+)(us|ms|s)/),
    p99ms: ms(/\s99%\s+([\d.]+)(us|ms|s)/),
    maxMs: ms(/Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/),
    bytesPerSec: transfer ? Number(transfer[1]) * UNIT[transfer[2]!]! : NaN,
    errors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx,
  };
}

export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

/**
 * CPU time (user + system) used so far by a process and every process below it (a
 * supervisor and its workers; nginx's master and workers), in seconds, from /proc.
 */
export function cpuSecondsOfTree(pid: number): number {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const parents = new Map<number, number>();
  const used = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name (which may hold spaces) in parentheses: state ppid … utime stime.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parents.set(Number(entry), Number(f[1]));
    used.set(Number(entry), Number(f[11]) + Number(f[12]));
  }
  let total = 0;
  const inTree = (p: number): boolean => {
    for (let q: number | undefined = p, depth = 0; q !== undefined && q > 1 && depth < 8; q = parents.get(q), depth++)
      if (q === pid) return true;
    return false;
  };
  for (const [p, t] of used) if (inTree(p)) total += t;
  return total / ticks;
}
