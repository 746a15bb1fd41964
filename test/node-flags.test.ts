/**
 * Node's flags (src/node-flags.ts): V8 sizes its heap once, at start, so the settings a gateway
 * runs best with travel on node's command line — the gangway executable's first line, `npm
 * start`, the supervisor's workers. A gateway started without them says so in its log.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { missingNodeFlags, NODE_FLAGS, withNodeFlags } from '../src/node-flags.js';
import { startChildGateway, type ChildGateway } from './support/child-gateway.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

function started(gw: ChildGateway): ChildGateway {
  cleanups.push(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });
  return gw;
}

const WARNING = 'node was started without the flags Gangway runs best with';

test('a flag counts as given on the command line or in NODE_OPTIONS, in either spelling', () => {
  assert.deepEqual(missingNodeFlags([], ''), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--max-semi-space-size=16'], ''), [], "the operator's own value is kept");
  assert.deepEqual(missingNodeFlags([], '--enable-source-maps --max_semi_space_size=2'), []);
  assert.deepEqual(withNodeFlags(['--inspect']), [...NODE_FLAGS, '--inspect']);
  assert.deepEqual(withNodeFlags(['--max-semi-space-size=8']), ['--max-semi-space-size=8']);
});

test('the gangway executable and npm start carry the flags', () => {
  const shebang = readFileSync(new URL('../src/cli.ts', import.meta.url), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts.start, `node ${NODE_FLAGS.join(' ')} dist/cli.js demo`);
});

test('a gateway started without the flags warns once; with them, not at all', { timeout: 60_000 }, async () => {
  const bare = started(await startChildGateway('127.0.0.1:9', '', [], { nodeFlags: [] }));
  const given = started(await startChildGateway('127.0.0.1:9'));
  await new Promise((r) => setTimeout(r, 200));
  const warnings = bare
    .output()
    .split('\n')
    .filter((l) => l.includes(WARNING));
  assert.equal(warnings.length, 1, bare.output());
  assert.match(warnings[0]!, /"flags":\["--max-semi-space-size=4"\]/);
  assert.ok(!given.output().includes(WARNING), given.output());
});

test('workers get the flags even when the supervisor was started without them', { timeout: 90_000 }, async () => {
  const gw = started(
    await startChildGateway('127.0.0.1:9', 'workers: 2\n', [], { nodeFlags: [], startWithinMs: 40_000 }),
  );
  const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { workers: Array<{ pid: number }> };
  assert.equal(status.workers.length, 2);
  for (const { pid } of status.workers) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of NODE_FLAGS) assert.ok(argv.includes(flag), `worker ${pid}: ${argv.join(' ')}`);
  }
  const supervisorArgv = readFileSync(`/proc/${gw.child.pid}/cmdline`, 'utf8').split('\0');
  assert.ok(!supervisorArgv.includes(NODE_FLAGS[0]!), 'the supervisor itself ran without them');
  assert.ok(!gw.output().includes(WARNING), 'the supervisor relays no bodies: nothing to warn about');
});
