/**
 * A worker process: one gateway on the listeners the supervisor shares (node:cluster hands
 * the same listening sockets to every worker), tied to its supervisor. It reloads when the
 * supervisor says so (the supervisor checked the file first), drains and exits on SIGTERM or
 * SIGINT — and when its supervisor is gone, so that no worker outlives it. SIGHUP is the
 * supervisor's to act on: a terminal hang-up that reaches the whole process group reloads once.
 */
import cluster from 'node:cluster';
import { fstatSync } from 'node:fs';
import type { CommandIO } from '../cli/main.js';
import { loadConfigFile, parseConfigText } from '../config/load.js';
import { formatAddress } from '../config/units.js';
import { createGateway, type Gateway } from '../gateway.js';
import { LogSink } from '../observe/log-sink.js';
import { type StoreChannel, SupervisorStore } from '../state/supervisor.js';
import { SupervisorLink } from './link.js';
import { WORKER_SLOT_ENV, type SupervisorMessage } from './protocol.js';

/** The largest write a pipe keeps whole (PIPE_BUF on Linux). */
const PIPE_BUF = 4096;

export async function runWorker(file: string, io: CommandIO): Promise<number> {
  const slot = Number(io.env[WORKER_SLOT_ENV] ?? '1');
  const link = new SupervisorLink(slot);
  let gateway: Gateway;
  try {
    // Maintenance, drains, rate limits and incidents are the machine's, served by the supervisor.
    gateway = createGateway(loadConfigFile(file, io.env), {
      configFile: file,
      worker: link,
      store: new SupervisorStore(process as unknown as StoreChannel),
      logDestination: sharedOutputSafe() ? new LogSink(1, PIPE_BUF) : undefined,
    });
  } catch (err) {
    io.stderr.write(`gangway worker ${slot}: ${(err as Error).message}\n`);
    return leave(1);
  }
  let bound: Awaited<ReturnType<Gateway['listen']>>;
  try {
    await link.catchUp();
    bound = await gateway.listen();
  } catch (err) {
    io.stderr.write(`gangway: ${(err as Error).message}; see ${file}\n`);
    await gateway.close();
    return leave(1);
  }
  link.listening(
    bound.listeners.map((a) => formatAddress(a)),
    bound.admin && formatAddress(bound.admin),
  );
  process.on('message', (m: SupervisorMessage) => {
    if (m.t !== 'reload') return;
    // The text the supervisor checked; the TLS files it names are read here, as at start.
    Promise.resolve()
      .then(() => gateway.reload(parseConfigText(m.text, file, io.env)))
      .then(
        () => process.send?.({ t: 'reload-done', id: m.id, ok: true }),
        (err: Error) => {
          gateway.logger.error(
            { file, problems: err.message },
            'configuration refused by this worker; it keeps its own',
          );
          process.send?.({ t: 'reload-done', id: m.id, ok: false });
        },
      );
  });
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) return;
      stopping = true;
      gateway.logger.info({ why }, 'worker draining');
      void gateway.close().then(() => resolve(leave(0)));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {});
    process.on('disconnect', () => stop('supervisor gone'));
  });
}

/** Leaves the cluster, which lets the process end (the IPC channel would keep it alive). */
function leave(code: number): number {
  if (process.connected) cluster.worker?.disconnect();
  return code;
}

/**
 * When standard output is a pipe or a socket its writes must be kept under PIPE_BUF, or two
 * workers' lines could interleave; a file or a terminal takes each write whole anyway.
 * Undefined (the usual sink) when there is nothing to guard against.
 */
function sharedOutputSafe(): boolean {
  try {
    const s = fstatSync(1);
    return s.isFIFO() || s.isSocket();
  } catch {
    return false;
  }
}
