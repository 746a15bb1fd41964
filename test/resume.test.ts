/**
 * Mid-stream resume: a response that breaks part way is completed from another host with
 * Range/If-Range, byte-exact, and only when every check passes; otherwise the client's
 * stream is cut so it knows.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fetchRaw, httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const blob = Buffer.alloc(2 * 1000 * 1000);
for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Serves `body` with Range support; when `cutAt` is set, every response dies after that many body bytes. */
async function rangeHost(opts: {
  body: Buffer;
  etag: string;
  cutAt?: number;
  acceptRanges?: boolean;
  ignoreIfRange?: boolean;
}) {
  let served = 0;
  const up = await httpUpstream((req, res) => {
    served++;
    const headers: Record<string, string> = { etag: opts.etag, 'content-type': 'audio/wav' };
    if (opts.acceptRanges !== false) headers['accept-ranges'] = 'bytes';
    let start = 0;
    let end = opts.body.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (
      range &&
      (opts.ignoreIfRange || req.headers['if-range'] === undefined || req.headers['if-range'] === opts.etag)
    ) {
      start = Number(range[1]);
      end = range[2] ? Number(range[2]) : end;
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${opts.body.length}`;
    }
    headers['content-length'] = String(end - start + 1);
    res.writeHead(status, headers);
    const part = opts.body.subarray(start, end + 1);
    if (opts.cutAt === undefined) {
      res.end(part);
      return;
    }
    res.write(part.subarray(0, opts.cutAt), () => setTimeout(() => res.socket?.resetAndDestroy(), 5));
  });
  cleanups.push(() => up.close());
  return { up, served: () => served };
}

test('a 2 MB body cut at 30% by one host of two: every client receives it complete and byte-exact', async (t) => {
  const cutter = await rangeHost({ body: blob, etag: '"v1"', cutAt: 600_000 });
  const whole = await rangeHost({ body: blob, etag: '"v1"' });
  const gw = await startGateway(
    minimalConfig([cutter.up.address, whole.up.address], {
      upstream: { balance: 'round-robin', outlierDetection: { consecutiveFailures: 1000 } },
    }),
  );
  cleanups.push(() => gw.close());
  const results = [];
  for (let i = 0; i < 20; i++) results.push(await fetchRaw(`${gw.url}/track.wav`));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.complete, true);
    assert.equal(r.body.length, blob.length);
    assert.equal(sha(r.body), sha(blob));
  }
  const resumed = gw.logs.filter((l) => l.msg === 'request' && l.resumed === 1).length;
  t.diagnostic(`${resumed} of 20 downloads were resumed from the other host`);
  assert.ok(resumed >= 5, 'the cutting host served some downloads, and each was resumed');
  const lines = gw.logs.filter((l) => l.msg === 'request');
  assert.ok(
    lines.every((l) => l.outcome === 'ok'),
    'a completed resume is no failure: every download ends ok',
  );
  const metrics = await fetch(`${gw.adminUrl}/metrics`).then((r) => r.text());
  assert.match(metrics, new RegExp(`gangway_resumes_total\\{upstream="[^"]+",outcome="completed"\\} ${resumed}\\b`));
  assert.match(metrics, /gangway_request_outcomes_total\{route="[^"]*",outcome="ok"\} 20\b/);
});

test('a resume whose validator no longer matches is refused: the client sees an incomplete body, never a wrong byte', async () => {
  const other = Buffer.from(blob);
  other.writeUInt8(other.readUInt8(700_000) ^ 0xff, 700_000);
  const cutter = await rangeHost({ body: blob, etag: '"v1"', cutAt: 600_000 });
  // It even ignores If-Range and answers 206 from its changed file: the ETag check must catch that.
  const changed = await rangeHost({ body: other, etag: '"v2"', ignoreIfRange: true });
  const gw = await startGateway(
    minimalConfig([cutter.up.address, changed.up.address], {
      upstream: { balance: 'round-robin', outlierDetection: { consecutiveFailures: 1000 } },
    }),
  );
  cleanups.push(() => gw.close());
  let sawCut = false;
  for (let i = 0; i < 6; i++) {
    const r = await fetchRaw(`${gw.url}/track.wav`);
    if (r.complete) {
      assert.equal(sha(r.body), sha(other), "a complete answer is the other host's own whole file");
      continue;
    }
    sawCut = true;
    assert.ok(
      r.body.equals(blob.subarray(0, r.body.length)),
      'every byte received is right: nothing from the changed file was spliced in',
    );
  }
  assert.ok(sawCut);
  assert.ok(
    gw.logs.some((l) => /validator changed/.test(String(l.cause ?? l.reason))),
    'the changed validator was caught',
  );
});

test('a response without strong validators or byte ranges is cut, not resumed', async () => {
  const cutter = await rangeHost({ body: blob, etag: 'W/"weak"', cutAt: 600_000 });
  const whole = await rangeHost({ body: blob, etag: 'W/"weak"' });
  const gw = await startGateway(
    minimalConfig([cutter.up.address, whole.up.address], {
      upstream: { balance: 'round-robin', outlierDetection: { consecutiveFailures: 1000 } },
    }),
  );
  cleanups.push(() => gw.close());
  const results = [await fetchRaw(`${gw.url}/a`), await fetchRaw(`${gw.url}/b`)];
  assert.equal(results.filter((r) => !r.complete).length, 1, 'the cut response stays cut');
  assert.equal(whole.served(), 1, 'no Range request was made to the other host');
  // A cut stream is a failure the listener saw, though its status was 200.
  const outcomes = gw.logs.filter((l) => l.msg === 'request').map((l) => `${l.status} ${l.outcome}`);
  assert.deepEqual(outcomes.sort(), ['200 cut', '200 ok']);
  const metrics = await fetch(`${gw.adminUrl}/metrics`).then((r) => r.text());
  assert.match(metrics, /gangway_request_outcomes_total\{route="[^"]*",outcome="cut"\} 1\b/);
  gw.gateway.metrics.timeline.closeStep();
  const step = gw.gateway.metrics.timeline.series().at(-1)!;
  assert.equal(step.errors, 1, 'the status timeline counts the cut stream as an error');
});
