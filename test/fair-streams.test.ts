/**
 * Concurrent large responses share the gateway: no download runs ahead while others wait. The
 * criteria are about order, not time, so they hold on a loaded machine: when the first of
 * several downloads that started together completes, every other one has most of its body
 * already; a download that started while others were streaming gets its first bytes before
 * they finish; and pacing never reorders, loses or stalls a byte, whether the clients read
 * fast, slowly, or both at once.
 *
 * The upstream answers a batch only once every request of it arrived and writes each body
 * whole at once, so every body sits ready in socket buffers from the same moment: the case
 * where one upstream read used to carry a whole body through the gateway in one turn of its
 * event loop while the other downloads waited.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { httpUpstream, minimalConfig, startGateway, type RunningGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const MiB = 1024 * 1024;
/** Every test ends within this, on the slowest machine: a stalled stream fails rather than hangs. */
const LIMIT_MS = 60_000;
/** A body whose bytes tell where they belong: byte i of body `seed` is (seed * 31 + i * 7) mod 251. */
function body(seed: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (seed * 31 + i * 7) % 251;
  return b;
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * An upstream answering GET /batch/<name>/<n>/<seed>/<size>: it holds the answers of a batch
 * until its n requests arrived, then sends every one of them whole. Other paths (/now/…)
 * answer at once.
 */
async function batchUpstream() {
  const batches = new Map<string, Array<() => void>>();
  const up = await httpUpstream((req, res) => {
    const [, kind, name, n, seed, size] = req.url!.split('/');
    const payload = body(Number(seed), Number(size));
    const send = (): void => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(payload.length) });
      res.end(payload);
    };
    if (kind !== 'batch') return send();
    const waiting = batches.get(name!) ?? [];
    batches.set(name!, waiting);
    waiting.push(send);
    if (waiting.length < Number(n)) return;
    batches.delete(name!);
    for (const go of waiting) go();
  });
  cleanups.push(() => up.close());
  return up;
}

interface Download {
  /** Body bytes received so far. */
  received: number;
  length: number;
  chunks: Buffer[];
  done: Promise<Buffer>;
  socket: Socket;
}

/**
 * One GET over its own connection, parsed just enough to count body bytes as they arrive;
 * `onProgress` hears of every read. `slow`: the client reads 16 KiB and pauses a moment, again
 * and again, so the gateway sees a client whose buffer fills.
 */
function download(url: string, path: string, onProgress: () => void, slow = false): Download {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  let head = Buffer.alloc(0);
  const d: Download = { received: 0, length: -1, chunks: [], done: undefined as never, socket };
  d.done = new Promise<Buffer>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`${path}: closed after ${d.received} body bytes`)));
    socket.on('data', (chunk: Buffer) => {
      if (d.length < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        if (!text.startsWith('HTTP/1.1 200 ')) {
          reject(new Error(`${path}: ${text.split('\r\n')[0]}`));
          return;
        }
        d.length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)![1]);
        chunk = head.subarray(end + 4);
      }
      d.received += chunk.length;
      d.chunks.push(chunk);
      onProgress();
      if (d.received >= d.length) {
        socket.removeAllListeners('close');
        socket.destroy();
        resolve(Buffer.concat(d.chunks));
      } else if (slow) {
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      }
    });
  });
  if (slow) socket.setNoDelay(true);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: fair.test\r\n\r\n`);
  return d;
}

/** Every download's share of its body, when the first of them completed. */
function sharesAtFirstCompletion(downloads: Download[]): Promise<number[]> {
  return new Promise((resolve) => {
    for (const d of downloads) {
      d.done.then(
        () => resolve(downloads.map((o) => o.received / Math.max(o.length, 1))),
        () => {},
      );
    }
  });
}

let gw: RunningGateway;
test('set up: an upstream holding each batch until all of it asked, and the gateway in front', {
  timeout: LIMIT_MS,
}, async () => {
  const up = await batchUpstream();
  // The upstream holds answers until a batch is complete, which the adaptive concurrency limit
  // would read as an upstream slowing down; and on a loaded machine this process may be held
  // up long enough for the event-loop guard to shed. Both are off: shedding is not under test.
  gw = await startGateway(
    minimalConfig([up.address], {
      upstream: { concurrency: { enabled: false } },
      top: { server: { maxEventLoopDelay: 0 } },
    }),
  );
  cleanups.push(() => gw.close());
  // Warm connections: the upstream pool and the kernel's socket buffers as they are under load.
  await Promise.all(
    Array.from({ length: 8 }, (_, i) => download(gw.url, `/now/warm/0/${i}/${4 * MiB}`, () => {}).done),
  );
});

for (const [streams, size] of [
  [8, 1 * MiB],
  [16, 2 * MiB],
] as const) {
  const name =
    `${streams} downloads of ${size / MiB} MiB ready at once: when the first completes, ` +
    'every other has more than half of its body';
  test(name, { timeout: LIMIT_MS }, async (t) => {
    const downloads: Download[] = [];
    for (let i = 0; i < streams; i++)
      downloads.push(download(gw.url, `/batch/ready-${streams}/${streams}/${i}/${size}`, () => {}));
    const shares = await sharesAtFirstCompletion(downloads);
    const bodies = await Promise.all(downloads.map((d) => d.done));
    const laggard = Math.min(...shares);
    t.diagnostic(`shares when the first completed: ${shares.map((s) => `${Math.round(s * 100)}%`).join(' ')}`);
    assert.ok(
      laggard > 0.5,
      `when the first download completed the others had ${shares.map((s) => `${Math.round(s * 100)}%`).join(' ')}`,
    );
    for (const [i, b] of bodies.entries()) assert.equal(sha(b), sha(body(i, size)), `download ${i} arrived intact`);
  });
}

test('a download that starts while others stream gets its first bytes before any of them finishes', {
  timeout: LIMIT_MS,
}, async () => {
  const size = 2 * MiB;
  const running: Download[] = [];
  let firstBytesOfLate: number | undefined;
  let finishedBefore = 0;
  let late: Download | undefined;
  const onRunning = (): void => {
    // As soon as every running download has begun, a new one asks (it need not wait for a batch).
    if (late === undefined && running.length === 8 && running.every((d) => d.received > 0)) {
      late = download(gw.url, `/now/late/0/99/${64 * 1024}`, () => {
        firstBytesOfLate ??= running.filter((d) => d.received >= d.length).length;
      });
    }
  };
  for (let i = 0; i < 8; i++) running.push(download(gw.url, `/batch/running/8/${i}/${size}`, onRunning));
  for (const d of running) d.done.then(() => (finishedBefore += firstBytesOfLate === undefined ? 1 : 0));
  await Promise.all(running.map((d) => d.done));
  assert.ok(late !== undefined, 'the late download was started');
  assert.equal(sha(await late.done), sha(body(99, 64 * 1024)));
  assert.equal(firstBytesOfLate, 0, `${finishedBefore} of the 8 running downloads finished before it had a byte`);
});

test('slow readers and fast readers together: every body arrives whole and in order, none stalls', {
  timeout: LIMIT_MS,
}, async () => {
  const size = 1 * MiB;
  const downloads: Download[] = [];
  for (let i = 0; i < 12; i++)
    downloads.push(download(gw.url, `/batch/mixed/12/${i + 20}/${size}`, () => {}, i % 2 === 0));
  const bodies = await Promise.all(downloads.map((d) => d.done));
  for (const [i, b] of bodies.entries()) assert.equal(sha(b), sha(body(i + 20, size)), `download ${i} arrived intact`);
});

test('200 small answers at once all arrive whole', { timeout: LIMIT_MS }, async () => {
  const downloads: Download[] = [];
  for (let i = 0; i < 200; i++) downloads.push(download(gw.url, `/now/small/0/${i}/1024`, () => {}));
  const bodies = await Promise.all(downloads.map((d) => d.done));
  for (const [i, b] of bodies.entries()) assert.equal(sha(b), sha(body(i, 1024)));
});
