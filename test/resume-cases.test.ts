/**
 * Mid-stream resume beyond the common case (test/resume.test.ts): a Last-Modified date as
 * the only validator, a 206 answer to the client's own Range, and the limit on resumes per
 * response. Whatever happens, the client never receives a wrong byte, and a body that could
 * not be completed never ends cleanly.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fetchRaw, httpUpstream, minimalConfig, startGateway, type RunningGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const blob = Buffer.alloc(2 * 1000 * 1000);
for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const LAST_MODIFIED = 'Wed, 21 Oct 2026 07:28:00 GMT';

interface RangeRequest {
  range: string | undefined;
  ifRange: string | undefined;
}

/**
 * Serves `body` with byte ranges and the given validators (If-Range is honoured against the
 * ETag, else the Last-Modified date, unless `ignoreIfRange`). With `cutAt`, every response
 * is reset after that many body bytes.
 */
async function rangeHost(opts: {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  cutAt?: number;
  ignoreIfRange?: boolean;
}) {
  const requests: RangeRequest[] = [];
  const validator = opts.etag ?? opts.lastModified;
  const up = await httpUpstream((req, res) => {
    const ifRange = req.headers['if-range'] as string | undefined;
    requests.push({ range: req.headers.range, ifRange });
    const headers: Record<string, string> = { 'content-type': 'audio/wav', 'accept-ranges': 'bytes' };
    if (opts.etag !== undefined) headers.etag = opts.etag;
    if (opts.lastModified !== undefined) headers['last-modified'] = opts.lastModified;
    let start = 0;
    let end = opts.body.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (opts.ignoreIfRange || ifRange === undefined || ifRange === validator)) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
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
  return { address: up.address, requests };
}

/** A gateway over these hosts, round-robin from the first, that never ejects a host for breaking. */
async function gatewayOver(addresses: string[]): Promise<RunningGateway> {
  const gw = await startGateway(
    minimalConfig(addresses, {
      upstream: { balance: 'round-robin', outlierDetection: { consecutiveFailures: 1000 } },
    }),
  );
  cleanups.push(() => gw.close());
  return gw;
}

async function accessLine(gw: RunningGateway): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const line = gw.logs.find((l) => l.msg === 'request');
    if (line !== undefined) return line;
    assert.ok(Date.now() < deadline, 'the request was logged');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The offset a resume asked from, read from its Range header ("bytes=FROM-LAST"). */
function rangeOf(r: RangeRequest | undefined): { from: number; last: number } | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(r?.range ?? '');
  return m ? { from: Number(m[1]), last: Number(m[2]) } : undefined;
}

test('a body whose only validator is Last-Modified is resumed from another host, byte-exact', async () => {
  const cutter = await rangeHost({ body: blob, lastModified: LAST_MODIFIED, cutAt: 600_000 });
  const whole = await rangeHost({ body: blob, lastModified: LAST_MODIFIED });
  const gw = await gatewayOver([cutter.address, whole.address]);
  const res = await fetchRaw(`${gw.url}/track.wav`, { timeoutMs: 20_000 });
  assert.equal(res.status, 200, 'the client gets the 200 of the first host');
  assert.equal(res.complete, true, 'the body ends cleanly');
  assert.equal(res.body.length, blob.length, 'every byte arrived');
  assert.equal(sha(res.body), sha(blob), 'the spliced body is byte-exact');
  assert.equal(cutter.requests.length, 1, 'the first host was asked once');
  assert.equal(whole.requests.length, 1, 'the second host was asked once, for the rest');
  const asked = rangeOf(whole.requests[0]);
  assert.ok(asked, `the second host was asked for a byte range (${whole.requests[0]!.range})`);
  assert.ok(asked.from > 0 && asked.from <= 600_000, `the range starts where the client's copy stops (${asked.from})`);
  assert.equal(asked.last, blob.length - 1, 'the range runs to the end of the body');
  assert.equal(whole.requests[0]!.ifRange, LAST_MODIFIED, 'If-Range carries the Last-Modified date');
  assert.equal((await accessLine(gw)).resumed, 1, 'the access log counts one resume');
});

test('a Last-Modified resume from a host whose date differs is refused: an incomplete body, never a wrong byte', async () => {
  const other = Buffer.from(blob);
  for (let i = 600_000; i < 1_000_000; i += 997) other[i] = other[i]! ^ 0xff;
  const cutter = await rangeHost({ body: blob, lastModified: LAST_MODIFIED, cutAt: 600_000 });
  // It ignores If-Range and answers 206 from its newer file: the date check must catch that.
  const changed = await rangeHost({
    body: other,
    lastModified: 'Thu, 22 Oct 2026 09:00:00 GMT',
    ignoreIfRange: true,
  });
  const gw = await gatewayOver([cutter.address, changed.address]);
  const res = await fetchRaw(`${gw.url}/track.wav`, { timeoutMs: 20_000 });
  assert.equal(res.status, 200, 'the headers of the first host had gone out');
  assert.equal(res.complete, false, 'the client sees the body cut, not a clean end');
  assert.ok(res.body.length < blob.length, `the body is short (${res.body.length} bytes)`);
  assert.ok(res.body.equals(blob.subarray(0, res.body.length)), 'every byte received is from the original file');
  assert.equal(changed.requests.length, 1, 'the other host was asked for the rest');
  assert.equal(
    (await accessLine(gw)).failure,
    'http_response_incomplete',
    'the access log has the incomplete response',
  );
  assert.ok(
    gw.logs.some((l) => /validator changed/.test(String(l.reason))),
    "the gateway's log says the other host's answer was refused for its changed validator",
  );
});

test("a 206 answer to the client's own Range is resumed: the client receives exactly its range, byte-exact", async () => {
  const cutter = await rangeHost({ body: blob, etag: '"v1"', cutAt: 500_000 });
  const whole = await rangeHost({ body: blob, etag: '"v1"' });
  const gw = await gatewayOver([cutter.address, whole.address]);
  const [first, last] = [100_000, 1_599_999];
  const res = await fetchRaw(`${gw.url}/track.wav`, {
    headers: { range: `bytes=${first}-${last}` },
    timeoutMs: 20_000,
  });
  assert.equal(res.status, 206, 'the client gets a 206');
  assert.equal(
    res.headers['content-range'],
    `bytes ${first}-${last}/${blob.length}`,
    'the Content-Range is the one the client asked for',
  );
  assert.equal(res.complete, true, 'the body ends cleanly');
  assert.equal(res.body.length, last - first + 1, 'exactly the range arrived');
  assert.equal(sha(res.body), sha(blob.subarray(first, last + 1)), 'the range is byte-exact');
  assert.equal(cutter.requests[0]!.range, `bytes=${first}-${last}`, "the first host got the client's Range");
  assert.equal(whole.requests.length, 1, 'the second host was asked once, for the rest');
  const asked = rangeOf(whole.requests[0]);
  assert.ok(asked, `the second host was asked for a byte range (${whole.requests[0]!.range})`);
  assert.ok(
    asked.from > first && asked.from <= first + 500_000,
    `the resume starts after the bytes already sent (${asked.from})`,
  );
  assert.equal(asked.last, last, "the resume ends where the client's range ends, not at the end of the file");
  assert.equal(whole.requests[0]!.ifRange, '"v1"', 'If-Range carries the ETag');
  assert.equal((await accessLine(gw)).resumed, 1, 'the access log counts one resume');
});

test('when every host keeps breaking, the stream is cut after two resumes: an incomplete body, never a wrong byte', async () => {
  const a = await rangeHost({ body: blob, etag: '"v1"', cutAt: 300_000 });
  const b = await rangeHost({ body: blob, etag: '"v1"', cutAt: 300_000 });
  const gw = await gatewayOver([a.address, b.address]);
  const res = await fetchRaw(`${gw.url}/track.wav`, { timeoutMs: 20_000 });
  assert.equal(res.status, 200, 'the headers of the first host had gone out');
  assert.equal(res.complete, false, 'the client sees the body cut, never a clean end');
  assert.ok(res.body.length < blob.length, `the body is short (${res.body.length} bytes)`);
  assert.ok(
    res.body.length > 300_000,
    `the first resume did deliver more bytes before breaking (${res.body.length} bytes)`,
  );
  assert.ok(res.body.equals(blob.subarray(0, res.body.length)), 'every byte received is right, across both splices');
  const all = [...a.requests, ...b.requests];
  assert.equal(all.length, 3, 'the first request and two resumes, then no more');
  assert.equal(all.filter((r) => r.range !== undefined).length, 2, 'two of them were resumes by Range');
  const line = await accessLine(gw);
  assert.equal(line.resumed, 2, 'the access log counts two resumes');
  assert.equal(line.failure, 'http_response_incomplete', 'the access log says the response was incomplete');
});
