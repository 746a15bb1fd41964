/**
 * Hot reload of a gateway started from a file: POST /api/reload, SIGHUP and --watch apply the edited
 * file; an invalid file is refused with its problems (file, line, field) and the running
 * configuration stays.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { httpUpstream } from './support/harness.js';
import { startChildGateway } from './support/child-gateway.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('POST /api/reload and SIGHUP apply the edited file; an invalid one is refused and the old configuration stays', async () => {
  const a = await httpUpstream((_req, res) => res.end('from a'));
  const b = await httpUpstream((_req, res) => res.end('from b'));
  const c = await httpUpstream((_req, res) => res.end('from c'));
  cleanups.push(
    () => a.close(),
    () => b.close(),
    () => c.close(),
  );
  const gw = await startChildGateway(a.address);
  cleanups.push(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });
  const body = async () => await (await fetch(`${gw.url}/x`)).text();
  assert.equal(await body(), 'from a');

  const original = readFileSync(gw.file, 'utf8');
  writeFileSync(gw.file, original.replace(a.address, b.address));
  const ok = await fetch(`${gw.adminUrl}/api/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(ok.status, 200);
  assert.equal(await body(), 'from b');

  writeFileSync(gw.file, original.replace(a.address, b.address).replace('upstream: music', 'upstream: nope'));
  const refused = await fetch(`${gw.adminUrl}/api/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(refused.status, 400);
  const problems = (await refused.json()) as { problems: Array<{ path: string; line: number; message: string }> };
  assert.equal(problems.problems[0]!.path, 'routes[0].upstream');
  assert.equal(problems.problems[0]!.line, 6);
  assert.match(problems.problems[0]!.message, /no upstream named "nope"/);
  assert.equal(await body(), 'from b', 'the running configuration stays');

  writeFileSync(gw.file, original.replace(a.address, c.address));
  gw.child.kill('SIGHUP');
  const deadline = Date.now() + 5000;
  while ((await body()) !== 'from c' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await body(), 'from c');
});

test('with --watch the gateway reloads when its file is replaced; an invalid edit is logged with its line and the old configuration stays', async () => {
  const a = await httpUpstream((_req, res) => res.end('from a'));
  const b = await httpUpstream((_req, res) => res.end('from b'));
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const gw = await startChildGateway(a.address, '', ['--watch']);
  cleanups.push(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });
  const body = async () => await (await fetch(`${gw.url}/x`)).text();
  const waitFor = async (what: () => Promise<boolean> | boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!(await what()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  };
  assert.equal(await body(), 'from a');
  const original = readFileSync(gw.file, 'utf8');

  // As editors and config management do: write a new file, rename it over the old one.
  writeFileSync(`${gw.file}.new`, original.replace(a.address, b.address));
  renameSync(`${gw.file}.new`, gw.file);
  await waitFor(async () => (await body()) === 'from b');
  assert.equal(await body(), 'from b');
  await waitFor(() => gw.output().includes('configuration or certificate changed'));
  assert.match(gw.output(), /configuration or certificate changed: reloading/);

  writeFileSync(gw.file, original.replace(a.address, b.address).replace('upstream: music', 'upstream: nope'));
  await waitFor(() => gw.output().includes('configuration refused'));
  assert.match(gw.output(), /configuration refused/);
  assert.match(gw.output(), /routes\[0\]\.upstream/);
  assert.equal(await body(), 'from b', 'the running configuration stays');
});
