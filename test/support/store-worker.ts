/**
 * A worker process for the supervisor store's tests, forked by the test (its supervisor). It
 * talks to the supervisor's store through a SupervisorStore over the IPC channel, and lets the
 * test drive that store: `{ test: 'call', id, op, args }` runs one operation and answers
 * `{ test: 'result', id, value | error }`; what it subscribed to comes back as `{ test: 'message' }`.
 * With `{ test: 'gateway', config }` it runs a whole gateway on that store instead, as a worker
 * of the lead's src/workers/ will, and answers `{ test: 'listening', url, adminUrl }`.
 */
import { createGateway } from '../../src/index.js';
import { SupervisorStore, type StoreChannel } from '../../src/state/supervisor.js';
import type { StateStore } from '../../src/state/store.js';

const channel = process as unknown as StoreChannel;
const store = new SupervisorStore(channel);
const send = (m: unknown): void => {
  process.send?.(m);
};

process.on('message', (m: { test?: string; id?: number; op?: string; args?: unknown[]; config?: unknown }) => {
  if (m.test === 'call') {
    const args = m.args ?? [];
    const op = m.op as keyof StateStore;
    const result =
      op === 'subscribe'
        ? store.subscribe(String(args[0]), (message) => send({ test: 'message', channel: args[0], message }))
        : (store[op] as (...a: unknown[]) => Promise<unknown>).apply(store, args);
    result.then(
      (value) => send({ test: 'result', id: m.id, value }),
      (err: Error) => send({ test: 'result', id: m.id, error: err.message }),
    );
  } else if (m.test === 'gateway') {
    const gateway = createGateway(m.config as Parameters<typeof createGateway>[0], {
      store,
      processMetrics: false,
      logDestination: { write: () => undefined },
    });
    void gateway.listen().then(({ proxy, admin }) => {
      send({ test: 'listening', url: `http://127.0.0.1:${proxy.port}`, adminUrl: `http://127.0.0.1:${admin?.port}` });
    });
  }
});
// The test's `disconnect` (or its exit) ends this worker.
process.on('disconnect', () => process.exit(0));
send({ test: 'ready' });
