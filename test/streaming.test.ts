/**
 * Streams are never buffered whole: 1 GiB through the gateway grows its RSS by no more
 * than 128 MiB, and a client that stops reading stops the upstream too (backpressure).
 *
 * Why 128 MiB: on Node 24 the socket read buffers a stream has finished with wait for V8 to
 * collect them, which it does once ~64–100 MiB of them have gathered (the JS heap stays
 * near 20 MiB throughout; a stream through no proxy at all shows the same saw-tooth). On
 * Node 20 the same gateway grew by under 10 MiB. A gateway holding on to the body would
 * grow by the body's size: far past this bound.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { httpUpstream, minimalConfig, startGateway } from './support/harness.js';
import { memoryOf, startChildGateway } from './support/child-gateway.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Writes `total` bytes of a repeating 64 KiB block, honouring backpressure; counts what it wrote. */
function streamingUpstream(total: number) {
  const block = Buffer.alloc(64 * 1024, 'g');
  const state = { written: 0 };
  const server = httpUpstream((req, res) => {
    if (req.url === '/warm') {
      res.end('ok');
      return;
    }
    res.writeHead(200, { 'content-length': String(total), 'content-type': 'application/octet-stream' });
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(block.length, total - sent);
        sent += n;
        state.written += n;
        if (!res.write(n === block.length ? block : block.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  return { server, state };
}

test("1 GiB streams through with the gateway's RSS growing by less than 128 MiB", async (t) => {
  const { server, state } = streamingUpstream(GiB);
  const up = await server;
  cleanups.push(() => up.close());
  const gw = await startChildGateway(up.address);
  cleanups.push(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });
  // Warm up: one small exchange so pools, parsers and JIT are in place before the baseline.
  await new Promise<void>((resolve, reject) =>
    httpRequest(`${gw.url}/warm`, (r) => {
      r.resume();
      r.on('end', resolve);
    })
      .on('error', reject)
      .end(),
  );
  await new Promise((r) => setTimeout(r, 200));
  const before = memoryOf(gw.child.pid!);

  const received = await new Promise<number>((resolve, reject) => {
    httpRequest(`${gw.url}/gigabyte`, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
      });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  const after = memoryOf(gw.child.pid!);
  assert.equal(received, GiB);
  assert.ok(state.written >= GiB);
  const growth = after.peak - before.rss;
  t.diagnostic(
    `gateway RSS ${(before.rss / MiB).toFixed(1)} MiB before, peak ${(after.peak / MiB).toFixed(1)} MiB during 1 GiB`,
  );
  assert.ok(
    growth < 128 * MiB,
    `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB (from ${(before.rss / MiB).toFixed(1)} MiB)`,
  );
});

test('a client that stops reading stops the upstream: nothing piles up in the gateway', async () => {
  const { server, state } = streamingUpstream(512 * MiB);
  const up = await server;
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  const req = httpRequest(`${gw.url}/big`);
  const res = await new Promise<import('node:http').IncomingMessage>((resolve) => req.on('response', resolve).end());
  res.pause();
  await new Promise((r) => setTimeout(r, 1000));
  const stalledAt = state.written;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(state.written, stalledAt, 'the upstream is held back while the client does not read');
  assert.ok(stalledAt < 32 * MiB, `only socket buffers' worth was sent (${(stalledAt / MiB).toFixed(1)} MiB)`);
  res.destroy();
});
