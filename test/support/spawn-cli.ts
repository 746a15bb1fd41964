/**
 * The `gangway` command as a process of its own, for what needs one: signals, --watch, several
 * workers, a demo with child processes. Its standard output and error are gathered as they come,
 * and a test waits for a line of it or for its exit. The caller ends it (by PID) in its cleanup.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');

export interface CliProcess {
  child: ChildProcess;
  /** Everything it wrote to standard output and error so far. */
  output(): string;
  /** Its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** True once `text` is in its output; false when it exits, or `ms` pass, first. */
  until(text: string, ms: number): Promise<boolean>;
}

/** Starts `gangway ARGS…` on tsx, with `env` as its environment and `nodeFlags` for node itself (say, --trace-gc). */
export function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  nodeFlags: readonly string[] = [],
): CliProcess {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', CLI, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const gather = (c: Buffer): void => {
    out += c.toString();
  };
  child.stdout!.on('data', gather);
  child.stderr!.on('data', gather);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async until(text, ms) {
      const deadline = Date.now() + ms;
      while (!out.includes(text)) {
        if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 25));
      }
      return true;
    },
  };
}
