/**
 * Relayed bodies and V8's collections (src/proxy/read-buffers.ts): every socket read allocates a
 * buffer outside the JavaScript heap, freed only when V8 collects the object holding it. Left to
 * V8's own schedule, a gateway relaying hundreds of MiB piles those buffers up until V8's limit on
 * outside memory forces full mark-compacts (7 in this test without them). The gateway asks
 * for a young collection every few MiB instead, which frees them while they are young. A child
 * gateway started with --trace-gc relays 768 MiB to eight clients at once, and its own account of
 * its collections is counted.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, test } from 'node:test';
import { startChildGateway } from './support/child-gateway.js';
import { httpUpstream } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const MiB = 1024 * 1024;
const STREAMS = 8;
const EACH_MiB = 96;

/** Downloads `url`, counting its bytes without keeping them. */
function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

test('relaying 768 MiB costs V8 no more than a few full mark-compacts', { timeout: 120_000 }, async (t) => {
  const chunk = Buffer.alloc(MiB, 7);
  const up = await httpUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': String(EACH_MiB * MiB) });
    let left = EACH_MiB;
    const more = (): void => {
      while (left > 0) {
        left--;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  cleanups.push(() => up.close());
  const gw = await startChildGateway(up.address, '', [], {
    nodeFlags: ['--trace-gc'],
    upstreamYaml: 'concurrency: { enabled: false }',
  });
  cleanups.push(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });
  const compactions = (): number => (gw.output().match(/Mark-Compact/g) ?? []).length;
  const scavenges = (): number => (gw.output().match(/Scavenge/g) ?? []).length;

  await download(`${gw.url}/warm-up`);
  const [compactedBefore, scavengedBefore] = [compactions(), scavenges()];
  const sizes = await Promise.all(Array.from({ length: STREAMS }, (_, i) => download(`${gw.url}/song-${i}`)));
  assert.deepEqual(
    sizes,
    sizes.map(() => EACH_MiB * MiB),
    'every body arrived whole',
  );
  const compacted = compactions() - compactedBefore;
  const scavenged = scavenges() - scavengedBefore;
  t.diagnostic(`${STREAMS * EACH_MiB} MiB relayed: ${compacted} mark-compacts, ${scavenged} scavenges`);
  // Without the young collections this run had 7 (and 1 young collection in 70 MiB); with them, 0.
  assert.ok(compacted <= 3, `${compacted} full mark-compacts for ${STREAMS * EACH_MiB} MiB`);
  assert.ok(scavenged >= (STREAMS * EACH_MiB) / 8 / 2, `young collections were asked for: ${scavenged}`);
});
