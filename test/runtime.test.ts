/**
 * The runtime Gangway is built for: Node.js 24 LTS, brought by `npm install` when the
 * machine's own Node is older, for the test runner and for the gateway processes it starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startChildGateway } from './support/child-gateway.js';
import { httpUpstream } from './support/harness.js';

const major = (version: string): number => Number(/^v(\d+)\./.exec(version)?.[1]);

test("the tests run on Node.js 24 or newer, as package.json's engines say", () => {
  const engines = (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
  ).engines.node;
  const required = Number(/(\d+)\./.exec(engines)?.[1]);
  assert.ok(required >= 24, `engines.node is ${engines}`);
  assert.ok(major(process.version) >= required, `running on ${process.version}, engines say ${engines}`);
});

test('a gateway started from the command line runs on the same Node.js and says which', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startChildGateway(up.address);
  try {
    const listening = gw
      .output()
      .split('\n')
      .find((l) => l.includes('gangway listening'))!;
    const node = (JSON.parse(listening) as { node: string }).node;
    assert.equal(node, process.version);
    assert.ok(major(node) >= 24);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
    await up.close();
  }
});
