/**
 * `gangway demo` (and `npm start`): three replicas of the example streaming service as
 * child processes, and a gateway in front of them on examples/gangway.yaml. Ctrl-C stops
 * everything it started.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { formatAddress } from '../config/units.js';
import { createGateway } from '../gateway.js';
import { runUntilSignalled } from '../server/signals.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/gangway.yaml', import.meta.url));
const REPLICA = fileURLToPath(new URL('./replica.js', import.meta.url));

export async function runDemo(): Promise<number> {
  const config = loadConfigFile(EXAMPLE);
  const hosts = config.upstreams.music!.hosts;
  const children: ChildProcess[] = [];
  const stopChildren = (): void => { for (const c of children) if (c.exitCode === null) c.kill('SIGTERM'); };
  process.once('exit', stopChildren);
  try {
    await Promise.all(hosts.map((h, i) => new Promise<void>((resolve, reject) => {
      const port = Number(new URL(h.origin).port);
      const child = fork(REPLICA, [String(port), `replica-${i + 1}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`replica on port ${port} exited (${code}); is the port free?`)));
    })));
  } catch (err) {
    process.stderr.write(`gangway demo: ${(err as Error).message}\n`);
    stopChildren();
    return 1;
  }
  try {
    return await serve(config);
  } finally {
    stopChildren();
  }
}

async function serve(config: GatewayConfig): Promise<number> {
  const gateway = createGateway(config, { configFile: EXAMPLE });
  try {
    const { proxy, admin } = await gateway.listen();
    process.stdout.write(`\nGangway demo is running:\n  player      http://${formatAddress(proxy)}/\n  catalogue   http://${formatAddress(proxy)}/api/tracks\n`
      + (admin ? `  status      http://${formatAddress(admin)}/api/status\n  metrics     http://${formatAddress(admin)}/metrics\n` : '')
      + `Press Ctrl-C to stop.\n\n`);
  } catch (err) {
    process.stderr.write(`gangway demo: cannot listen: ${(err as Error).message}\n`);
    await gateway.close();
    return 1;
  }
  return runUntilSignalled(gateway, EXAMPLE);
}
