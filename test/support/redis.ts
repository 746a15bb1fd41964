/**
 * A real redis-server for tests: started on a free loopback port (Redis cannot take port 0, so a
 * port is found by binding and closing), without persistence, and stopped and started again on
 * the same port to play an outage. Without redis-server installed the tests skip — except under
 * CI=true, where that is a failure (.ci/run installs the Debian package).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { closedPort } from './harness.js';

const BINARY = '/usr/bin/redis-server';

/** Why Redis tests cannot run here, or undefined when they can. */
export function redisMissing(): string | undefined {
  const probe = spawnSync(BINARY, ['--version']);
  if (probe.status === 0) return undefined;
  const why = 'redis-server is not installed';
  if (process.env.CI === 'true') throw new Error(`${why}: required under CI`);
  return why;
}

export interface RedisServer {
  port: number;
  url: string;
  /** Stops the server (SIGKILL: an outage, not a goodbye) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty (no persistence). */
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open and nothing answers — a Redis too slow to wait for. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  /** One command over a raw connection (RESP inline), its reply's first line. */
  command(...args: string[]): Promise<string>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await closedPort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while ((await command(port, 'PING').catch(() => '')) !== '+PONG') {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on ${port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      const c = child;
      // Stopped already: a process ended by a signal has no exit code, only its signal.
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    command: (...args) => command(port, ...args),
  };
}

function command(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('redis did not answer')));
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply.split('\r\n')[0]!);
      }
    });
    socket.on('error', reject);
  });
}
