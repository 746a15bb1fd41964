/**
 * The demo's replicas as real child processes, and the faults an operator can inflict on
 * one: kill and restart (SIGKILL, then a new process on the same port), freeze and thaw
 * (SIGSTOP / SIGCONT), and the replica's own fault modes over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { OpenStream, ReplicaFault } from './replica.js';

/** Words for a replica's listen failure (its error code). */
function describeListenError(code: string): string {
  if (code === 'EADDRINUSE') return 'the port is in use by another program';
  if (code === 'EACCES') return 'permission denied';
  return code;
}

const REPLICA = fileURLToPath(new URL('./replica.js', import.meta.url));

export type ReplicaState = 'starting' | 'running' | 'frozen' | 'killed';

export interface Replica {
  name: string;
  port: number;
  state: ReplicaState;
  fault: ReplicaFault;
  child: ChildProcess | undefined;
  /** The audio streams it is sending now, as it last said. */
  streams: OpenStream[];
}

export class ReplicaFleet {
  readonly replicas: Replica[];

  constructor(ports: number[]) {
    this.replicas = ports.map((port, i) => ({
      name: `replica-${i + 1}`,
      port,
      state: 'killed',
      fault: 'none',
      child: undefined,
      streams: [],
    }));
  }

  private consoleUrl: string | undefined;

  /** Tells every replica, now and after restarts, where the console is (the player asks it who streams). */
  setConsole(url: string): void {
    this.consoleUrl = url;
    for (const r of this.replicas) if (r.child?.connected) r.child.send({ console: url });
  }

  async startAll(): Promise<void> {
    await Promise.all(this.replicas.map((_, i) => this.start(i)));
  }

  start(i: number): Promise<void> {
    const r = this.replica(i);
    if (r.child && r.child.exitCode === null && r.child.signalCode === null) return Promise.resolve();
    r.state = 'starting';
    r.fault = 'none';
    const child = fork(REPLICA, [String(r.port), r.name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    r.child = child;
    r.streams = [];
    return new Promise<void>((resolve, reject) => {
      child.on('message', (m: { ready?: number; error?: string; streams?: OpenStream[] }) => {
        if (m.streams !== undefined && r.child === child) r.streams = m.streams;
        if (m.error !== undefined)
          reject(new Error(`${r.name} cannot listen on 127.0.0.1:${r.port}: ${describeListenError(m.error)}`));
        if (m.ready === undefined) return;
        r.state = 'running';
        if (this.consoleUrl !== undefined) child.send({ console: this.consoleUrl });
        resolve();
      });
      child.once('exit', (code, signal) => {
        if (r.child === child) {
          r.state = 'killed';
          r.child = undefined;
          r.streams = [];
        }
        reject(new Error(`${r.name} on port ${r.port} exited (${code ?? signal}); is the port free?`));
      });
    });
  }

  kill(i: number): void {
    const r = this.replica(i);
    if (r.state === 'frozen') r.child?.kill('SIGCONT');
    r.child?.kill('SIGKILL');
    r.child = undefined;
    r.state = 'killed';
    r.streams = [];
  }

  async restart(i: number): Promise<void> {
    this.kill(i);
    await new Promise((res) => setTimeout(res, 50));
    await this.start(i).catch(() => undefined);
  }

  freeze(i: number): void {
    const r = this.replica(i);
    if (r.state !== 'running') return;
    r.child?.kill('SIGSTOP');
    r.state = 'frozen';
  }

  thaw(i: number): void {
    const r = this.replica(i);
    if (r.state !== 'frozen') return;
    r.child?.kill('SIGCONT');
    r.state = 'running';
  }

  setFault(i: number, fault: ReplicaFault): void {
    const r = this.replica(i);
    if (r.state !== 'running' || !r.child?.connected) return;
    r.child.send({ fault });
    r.fault = fault;
  }

  /** Stops every replica it started, frozen ones included. */
  stopAll(): void {
    for (const r of this.replicas) {
      if (r.child === undefined) continue;
      if (r.state === 'frozen') r.child.kill('SIGCONT');
      r.child.kill('SIGKILL');
      r.child = undefined;
      r.state = 'killed';
    }
  }

  private replica(i: number): Replica {
    const r = this.replicas[i];
    if (r === undefined) throw new Error(`no replica ${i + 1}`);
    return r;
  }
}
