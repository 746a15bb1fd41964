/**
 * Graceful shutdown: SIGTERM during 100 slow in-flight requests lets every one of them
 * complete, then the process exits and the port is closed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { httpUpstream } from './support/harness.js';
import { startChildGateway } from './support/child-gateway.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('SIGTERM during 100 slow in-flight requests: every one completes, then the gateway exits', async () => {
  let received = 0;
  const up = await httpUpstream((_req, res) => {
    received++;
    setTimeout(() => res.end('done'), 800);
  });
  cleanups.push(() => up.close());
  const gw = await startChildGateway(up.address, 'server: { drainTimeout: "10s" }\n');
  cleanups.push(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });
  const client = new Agent({ connections: 100, pipelining: 0 });
  cleanups.push(() => client.close());

  const requests = Array.from({ length: 100 }, (_, i) =>
    request(`${gw.url}/slow/${i}`, { dispatcher: client }).then(
      async (r) => ({ status: r.statusCode, body: await r.body.text() }),
      (e: Error) => ({ status: 0, body: e.message }),
    ),
  );
  const deadline = Date.now() + 10_000;
  while (received < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(received, 100, 'all 100 requests are in flight at the upstream');

  gw.child.kill('SIGTERM');
  const results = await Promise.all(requests);
  const failed = results.filter((r) => r.status !== 200 || r.body !== 'done');
  assert.deepEqual(failed, [], 'every in-flight request completed');
  assert.equal(await gw.exited, 0, `exits cleanly:\n${gw.output()}`);
  await assert.rejects(request(`${gw.url}/after`, { dispatcher: new Agent() }), /ECONNREFUSED/, 'stopped accepting');
});
