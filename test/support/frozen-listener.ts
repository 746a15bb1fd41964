/**
 * A listening socket that never accepts: a child process listens with a backlog of 1 and is
 * frozen with SIGSTOP, then the accept queue is filled, so the kernel drops new SYNs and a
 * connect times out exactly as it does against an overloaded or black-holed host.
 */
import { fork } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function frozenListener(): Promise<{ port: number; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-frozen-'));
  const script = join(dir, 'listen.mjs');
  writeFileSync(
    script,
    `import net from 'node:net';
const s = net.createServer();
s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => process.send(s.address().port));`,
  );
  const child = fork(script, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  process.kill(child.pid!, 'SIGSTOP');
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 150));
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      process.kill(child.pid!, 'SIGKILL');
    },
  };
}
