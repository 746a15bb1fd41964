/**
 * A real HTTP/2 listener under attack by hand-written frames (./support/h2-frames.ts): each
 * class of abuse the HTTP/2 CVEs describe — CONTINUATION runs without END_HEADERS, SETTINGS,
 * PING and empty-frame floods, rapid resets, streams beyond the limit, oversized header lists
 * and frames, protocol violations, a reader that never opens its window, a connection left
 * idle — gets the answer the best servers give (GOAWAY with the right code, a reset stream, a
 * 431), while a well-behaved client on another connection is answered throughout, and a
 * gateway process attacked from many connections at once keeps its memory bounded.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, loadConfigFile, type Gateway } from '../src/index.js';
import { memoryOf, startChildGateway } from './support/child-gateway.js';
import * as h2 from './support/h2-frames.js';
import { httpUpstream, type TestServer } from './support/harness.js';

const TLS = join(import.meta.dirname, 'support', 'tls');
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** What the upstream was asked: how many requests, and for /big how many bytes it managed to write. */
const upstreamSaw = { requests: 0, bigWritten: 0, bigClosedEarly: 0 };
let upstream: TestServer;
/** The gateway's h2c port and its HTTPS (ALPN h2) port. */
let h2cPort = 0;
let tlsPort = 0;
let gateway: Gateway;

/** How many connections the gateway has sent away for `reason` (its metric). */
async function sentAway(reason: string): Promise<number> {
  const text = await gateway.metrics.registry.metrics();
  const m = new RegExp(`gangway_http2_connections_sent_away_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
  return m === null ? 0 : Number(m[1]);
}

/**
 * /big streams 100 MB (as fast as the gateway takes it), /slow answers after 1.2 s, the rest
 * at once with a short body.
 */
before(async () => {
  upstream = await httpUpstream((req, res) => {
    upstreamSaw.requests++;
    req.resume();
    if (req.url === '/big') {
      const chunk = Buffer.alloc(64 * 1024, 97);
      res.on('close', () => {
        if (!res.writableFinished) upstreamSaw.bigClosedEarly++;
      });
      const pump = (): void => {
        while (upstreamSaw.bigWritten < 100e6 && !res.destroyed) {
          upstreamSaw.bigWritten += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url === '/slow') return void setTimeout(() => res.end('slow answer'), 1200);
    res.end(`hello ${req.url}`);
  });
  cleanups.push(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'gangway-h2-attacks-'));
  copyFileSync(join(TLS, 'localhost-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(TLS, 'localhost-key.pem'), join(dir, 'key.pem'));
  const file = join(dir, 'gangway.yaml');
  writeFileSync(
    file,
    `listen:
  - { address: "127.0.0.1:0", h2c: true }
  - { address: "127.0.0.1:0", tls: { cert: cert.pem, key: key.pem } }
admin: false
server: { http2: { idleTimeout: 1500ms, sendTimeout: 1s } }
upstreams:
  music: { hosts: ["${upstream.address}"], healthCheck: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: music }
`,
  );
  const gw = createGateway(loadConfigFile(file), { logDestination: { write() {} }, processMetrics: false });
  gateway = gw;
  const { listeners } = await gw.listen();
  h2cPort = listeners[0]!.port;
  tlsPort = listeners[1]!.port;
  cleanups.push(() => gw.close());
});

/** A well-behaved HTTP/2 client on a connection of its own: the status and body of GET `path`. */
async function wellBehaved(path = '/ok'): Promise<{ status: number; body: string }> {
  const session = http2Connect(`http://127.0.0.1:${h2cPort}`);
  session.on('error', () => {});
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path });
      let status = 0;
      let body = '';
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => {
        body += c;
      });
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
      stream.end();
    });
  } finally {
    session.destroy();
  }
}

/** Opens an attacking connection; it is destroyed when the tests end. */
async function attacker(options: Parameters<typeof h2.RawH2.open>[1] = {}): Promise<h2.RawH2> {
  const peer = await h2.RawH2.open(options.tls ? tlsPort : h2cPort, options);
  cleanups.push(() => peer.destroy());
  return peer;
}

const isGoaway = (f: h2.Frame): boolean => f.type === h2.FRAME.GOAWAY;

/** The frames a peer received, briefly: type/stream and the error code where there is one. */
function describe(peer: h2.RawH2): string {
  const codes = peer.frames.map((f) =>
    f.type === h2.FRAME.RST_STREAM
      ? `RST_STREAM/${f.stream}:${h2.ERROR_NAME[f.payload.readUInt32BE(0)]}`
      : f.type === h2.FRAME.GOAWAY
        ? `GOAWAY:${h2.goawayOf(f).name}`
        : `${f.type}/${f.stream}`,
  );
  const ends = `${codes.slice(0, 4).join(' ')} … ${codes.slice(-4).join(' ')}`;
  return `${codes.length} frames: ${ends}; closed: ${peer.isClosed}`;
}

/**
 * Sends `count` frames made by `make` (as the socket takes them), pausing a millisecond every
 * `pauseEvery`, stopping once the server has sent GOAWAY or closed. Paced one by one, a flood
 * leaves nothing unread at the server when it cuts the connection, so its GOAWAY is not lost to
 * the TCP reset a close on unread bytes sends.
 */
async function flood(peer: h2.RawH2, count: number, make: (i: number) => Buffer, pauseEvery = 0): Promise<number> {
  let sent = 0;
  for (; sent < count; sent++) {
    if (peer.isClosed || peer.frames.some(isGoaway) || !peer.send(make(sent))) break;
    if (pauseEvery > 0 && sent % pauseEvery === pauseEvery - 1) await new Promise((r) => setTimeout(r, 1));
    // The gateway under attack shares this event loop: let it read between bursts, as it would
    // between network reads (a loop held by the test itself would trip its overload guard).
    else if (sent % 200 === 199) await new Promise((r) => setImmediate(r));
    // A server that stops reading leaves the socket full: wait for room, or for the close.
    if (peer.socket.writableLength > 1 << 20) {
      await Promise.race([new Promise((r) => peer.socket.once('drain', r)), peer.closed]);
    }
  }
  return sent;
}

/**
 * Sends `count` frames in batches of `batch`, each batch in one write closed by a PING whose ACK
 * is awaited: the server has read every byte sent when it cuts the connection, so its GOAWAY is
 * never lost to a reset (for frames nothing answers, such as empty DATA).
 */
async function floodInBatches(peer: h2.RawH2, count: number, make: (i: number) => Buffer, batch = 50): Promise<number> {
  let sent = 0;
  for (let b = 0; sent < count && !peer.isClosed && !peer.frames.some(isGoaway); b++) {
    const frames: Buffer[] = [];
    for (let i = 0; i < batch; i++) frames.push(make(sent + i));
    const marker = Buffer.from(`batch${String(b).padStart(3, '0')}`);
    peer.send(Buffer.concat([...frames, h2.ping(marker)]));
    sent += batch;
    await peer.waitFor((f) => isGoaway(f) || (f.type === h2.FRAME.PING && f.payload.equals(marker)), 2000);
  }
  return sent;
}

test('the SETTINGS the gateway sends bound a connection: 100 streams, the header list, extended CONNECT', async () => {
  const peer = await attacker();
  const first = await peer.waitFor((f) => f.type === h2.FRAME.SETTINGS && (f.flags & h2.FLAG.ACK) === 0);
  assert.ok(first, 'the server preface is a SETTINGS frame');
  const values = new Map<number, number>();
  for (let i = 0; i + 6 <= first.payload.length; i += 6)
    values.set(first.payload.readUInt16BE(i), first.payload.readUInt32BE(i + 2));
  assert.equal(values.get(h2.SETTING.MAX_CONCURRENT_STREAMS), 100);
  assert.equal(values.get(h2.SETTING.MAX_HEADER_LIST_SIZE), 16 * 1024);
  assert.equal(values.get(0x8), 1, 'SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)');
});

test('a CONTINUATION flood (CVE-2024-27316 class) is cut with ENHANCE_YOUR_CALM after a few frames', async () => {
  const counted = await sentAway('continuation_flood');
  for (const piece of [h2.hpack([['x-filler', 'b'.repeat(1000)]]), Buffer.alloc(0)]) {
    const peer = await attacker();
    peer.send(h2.headers(1, h2.requestBlock('/never-ends'), { endHeaders: false }));
    const sent = await flood(peer, 100_000, () => h2.continuation(1, piece), 1);
    const goaway = await peer.goaway();
    assert.equal(goaway?.name, 'ENHANCE_YOUR_CALM', `${piece.length}-byte CONTINUATIONs: ${JSON.stringify(goaway)}`);
    assert.ok(await peer.closesWithin(2000), 'and the connection is closed');
    assert.ok(sent < 100_000, `the gateway stopped reading long before the end (${sent} frames written)`);
    assert.equal((await wellBehaved()).status, 200);
  }
  assert.equal(await sentAway('continuation_flood'), counted + 2, 'each counted');
});

test('SETTINGS and PING floods from a peer that reads every ACK are cut with ENHANCE_YOUR_CALM', async () => {
  const frames: Array<[string, () => Buffer]> = [
    ['SETTINGS', () => h2.settings([[h2.SETTING.INITIAL_WINDOW_SIZE, 65535]])],
    ['PING', () => h2.ping(Buffer.from('floodfld'))],
  ];
  for (const [name, make] of frames) {
    // Paced, so nghttp2's queue of unsent ACKs never fills: the gateway's own budget must catch it.
    const paced = await attacker();
    const counted = await sentAway('ping_settings_flood');
    const sent = await flood(paced, 2000, make, 1);
    assert.equal((await paced.goaway())?.name, 'ENHANCE_YOUR_CALM', `a paced ${name} flood`);
    assert.ok(sent < 2000, `${name}: cut after ${sent} frames`);
    const acks = paced.frames.filter((f) => f.type === (name === 'PING' ? h2.FRAME.PING : h2.FRAME.SETTINGS));
    assert.ok(acks.length <= 150, `${name}: at most the budget was answered (${acks.length} ACKs)`);
    assert.equal(await sentAway('ping_settings_flood'), counted + 1);
    // All at once: whichever limit trips first, the connection ends (its GOAWAY may be lost to the
    // reset a server sends when it closes on unread bytes; when it arrives, it says the same).
    const burst = await attacker();
    const sentInBurst = await flood(burst, 50_000, make);
    assert.ok(await burst.closesWithin(3000), `a ${name} burst is cut (after ${sentInBurst} frames)`);
    assert.ok(sentInBurst < 50_000);
    const burstGoaway = burst.frames.find((f) => f.type === h2.FRAME.GOAWAY);
    if (burstGoaway !== undefined) assert.equal(h2.goawayOf(burstGoaway).name, 'ENHANCE_YOUR_CALM');
    assert.equal((await wellBehaved()).status, 200);
  }
});

test('a client sending the odd PING (a keep-alive) keeps its connection', async () => {
  const peer = await attacker();
  for (let i = 0; i < 20; i++) {
    peer.send(h2.ping(Buffer.from(`ping${String(i).padStart(4, '0')}`)));
    await new Promise((r) => setTimeout(r, 10));
  }
  peer.send(h2.headers(1, h2.requestBlock('/after-pings')));
  assert.ok(await peer.waitFor((f) => f.type === h2.FRAME.DATA && f.stream === 1), 'the request is answered');
  assert.equal(await peer.goaway(100), undefined);
});

test('floods of empty DATA frames and of empty HEADERS frames are cut with ENHANCE_YOUR_CALM', async () => {
  const emptyData = await attacker();
  emptyData.send(h2.headers(1, h2.requestBlock('/upload', [], 'POST'), { endStream: false }));
  const counted = await sentAway('invalid_frames');
  const emptyDataSent = await floodInBatches(emptyData, 50_000, () => h2.data(1, Buffer.alloc(0)));
  assert.equal((await emptyData.goaway())?.name, 'ENHANCE_YOUR_CALM');
  assert.equal(await sentAway('invalid_frames'), counted + 1, 'counted as invalid frames');
  const emptyHeaders = await attacker();
  await floodInBatches(emptyHeaders, 50_000, (i) => h2.headers(1 + 2 * i, Buffer.alloc(0), { endStream: false }));
  assert.equal((await emptyHeaders.goaway())?.name, 'ENHANCE_YOUR_CALM');
  assert.ok(emptyDataSent <= 1100, `cut at Node's thousand invalid frames (${emptyDataSent} sent)`);
  assert.equal((await wellBehaved()).status, 200);
});

test(
  'rapid reset (CVE-2023-44487): streams opened and reset at once are cut off after a bounded ' +
    'burst, and few of them ever reach the upstream',
  async () => {
    const before = upstreamSaw.requests;
    const peer = await attacker({ tls: true });
    await flood(
      peer,
      20_000,
      (i) =>
        Buffer.concat([
          h2.headers(1 + 2 * i, h2.requestBlock(`/reset/${i}`)),
          h2.rstStream(1 + 2 * i, h2.ERROR.CANCEL),
        ]),
      5,
    );
    const goaway = await peer.goaway();
    assert.ok(goaway, 'the connection is sent away');
    // nghttp2's own limiter sends INTERNAL_ERROR; either code ends the attack.
    assert.ok(['ENHANCE_YOUR_CALM', 'INTERNAL_ERROR'].includes(goaway.name), goaway.name);
    assert.ok(goaway.lastStream < 2 * 400, `streams processed: up to ${goaway.lastStream}`);
    await new Promise((r) => setTimeout(r, 200));
    const reached = upstreamSaw.requests - before;
    assert.ok(reached <= 250, `${reached} of the reset streams reached the upstream`);
    assert.equal((await wellBehaved()).status, 200);
  },
);

test(
  'streams beyond the 100 allowed: refused (REFUSED_STREAM) while the limit is unacknowledged, ' +
    'then a client that keeps opening them (a thousand) is sent away (ENHANCE_YOUR_CALM); past the limit it ' +
    'acknowledged, at once (PROTOCOL_ERROR)',
  async () => {
    // Requests with a body that never comes: each holds its stream open.
    const hold = (i: number): Buffer =>
      h2.headers(1 + 2 * i, h2.requestBlock('/hold', [], 'POST'), { endStream: false });
    const eager = await attacker({ ackSettings: false });
    await flood(eager, 100, hold, 1);
    // Beyond the limit, one at a time: each answered before the next, so nothing is left
    // unread at the server when it cuts the connection (its GOAWAY then always arrives).
    for (let i = 100; i < 1300 && !eager.isClosed; i++) {
      eager.send(hold(i));
      const answered = await eager.waitFor((f) => f.stream === 1 + 2 * i || isGoaway(f), 2000);
      if (answered === undefined || isGoaway(answered)) break;
    }
    const refused = await eager.waitFor(
      (f) => f.type === h2.FRAME.RST_STREAM && f.payload.readUInt32BE(0) === h2.ERROR.REFUSED_STREAM,
    );
    assert.equal(refused?.stream, 201, 'the 101st stream is the first refused');
    assert.equal((await eager.goaway())?.name, 'ENHANCE_YOUR_CALM', describe(eager));
    // RFC 9113 §5.1.2: a limit the client acknowledged is a connection error to exceed.
    const acked = await attacker();
    await acked.waitFor((f) => f.type === h2.FRAME.SETTINGS && (f.flags & h2.FLAG.ACK) === 1);
    await flood(acked, 101, hold, 1);
    const goaway = await acked.goaway();
    assert.deepEqual([goaway?.name, goaway?.lastStream], ['PROTOCOL_ERROR', 199]);
    assert.equal((await wellBehaved()).status, 200);
  },
);

test(
  'a header list over maxHeaderSize gets its stream ' + 'reset (ENHANCE_YOUR_CALM); the connection carries on',
  async () => {
    const peer = await attacker({ tls: true });
    const block = h2.requestBlock(
      '/big-headers',
      Array.from({ length: 10 }, (_, i): [string, string] => [`x-filler-${i}`, 'a'.repeat(3000)]),
    );
    peer.send(h2.headers(1, block.subarray(0, 16_000), { endHeaders: false }));
    peer.send(h2.continuation(1, block.subarray(16_000), true));
    const reset = await peer.waitFor((f) => f.stream === 1);
    assert.equal(reset?.type, h2.FRAME.RST_STREAM, describe(peer));
    assert.equal(h2.ERROR_NAME[reset.payload.readUInt32BE(0)], 'ENHANCE_YOUR_CALM');
    peer.send(h2.headers(3, h2.requestBlock('/next')));
    const next = await peer.waitFor((f) => f.type === h2.FRAME.HEADERS && f.stream === 3);
    assert.equal(next && h2.statusOf(next), 200, 'the next request on the same connection is answered');
    assert.equal(await peer.goaway(100), undefined);
  },
);

test('protocol violations end the connection with the right code', async () => {
  const cases: Array<[string, Buffer, string]> = [
    ['a frame larger than SETTINGS_MAX_FRAME_SIZE', h2.ping(Buffer.alloc(20_000)), 'FRAME_SIZE_ERROR'],
    ['a PING that is not 8 bytes', h2.frame(h2.FRAME.PING, 0, 0, Buffer.alloc(3)), 'FRAME_SIZE_ERROR'],
    ['DATA on stream 0', h2.data(0, Buffer.from('x')), 'PROTOCOL_ERROR'],
    ['HEADERS on an even (server) stream', h2.headers(2, h2.requestBlock('/even')), 'PROTOCOL_ERROR'],
    [
      'a SETTINGS frame with too many entries',
      h2.settings(Array.from({ length: 100 }, (): [number, number] => [h2.SETTING.INITIAL_WINDOW_SIZE, 65535])),
      'ENHANCE_YOUR_CALM',
    ],
  ];
  for (const [what, bytes, code] of cases) {
    const peer = await attacker();
    peer.send(bytes);
    assert.equal((await peer.goaway())?.name, code, what);
    assert.ok(await peer.closesWithin(2000), `${what}: closed`);
  }
});

test(
  'a reader that never opens its flow-control window has its stream reset after the send ' +
    'timeout, and the upstream is let go instead of buffered',
  async () => {
    const peer = await attacker();
    const started = Date.now();
    peer.send(h2.headers(1, h2.requestBlock('/big')));
    const reset = await peer.waitFor((f) => f.type === h2.FRAME.RST_STREAM && f.stream === 1, 6000);
    assert.ok(reset, 'the stream was reset');
    assert.equal(h2.ERROR_NAME[reset.payload.readUInt32BE(0)], 'CANCEL');
    const waited = Date.now() - started;
    assert.ok(waited >= 900 && waited < 5000, `after the 1 s send timeout (${waited} ms)`);
    const received = peer.frames
      .filter((f) => f.type === h2.FRAME.DATA && f.stream === 1)
      .reduce((n, f) => n + f.payload.length, 0);
    assert.equal(received, 65_535, 'the client got exactly its window');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(upstreamSaw.bigClosedEarly, 1, "the upstream's response was abandoned, its connection let go");
    assert.ok(upstreamSaw.bigWritten < 16e6, `the gateway held the upstream back (${upstreamSaw.bigWritten} bytes)`);
    assert.equal((await wellBehaved()).status, 200);
  },
);

test('an idle connection gets GOAWAY (NO_ERROR) after idleTimeout; a stream under way still finishes', async () => {
  const idle = await attacker();
  const t = Date.now();
  idle.send(h2.headers(1, h2.requestBlock('/quick')));
  const goaway = await idle.goaway(4000);
  assert.equal(goaway?.name, 'NO_ERROR');
  assert.ok(Date.now() - t >= 1400, 'not before the idle timeout');
  assert.ok(await idle.closesWithin(1000), 'and closed');

  const busy = await attacker();
  busy.send(h2.headers(1, h2.requestBlock('/slow')));
  // The upstream takes 1.2 s: nothing moves on the connection meanwhile, so it counts as idle.
  const answer = await busy.waitFor((f) => f.type === h2.FRAME.DATA && f.stream === 1, 5000);
  assert.equal(answer?.payload.toString(), 'slow answer');
});

test('a gateway process under floods from 40 connections and 200 stalled streams keeps its memory ' +
  'bounded and answers others meanwhile', { timeout: 60_000 }, async (t) => {
  const child = await startChildGateway(upstream.address, 'server: { http2: { sendTimeout: 30s } }\n', [], {
    h2c: true,
  });
  cleanups.push(() => {
    if (child.child.exitCode === null) child.child.kill('SIGKILL');
  });
  const port = Number(new URL(child.url).port);
  const pid = child.child.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const baseline = memoryOf(pid).rss;
  const peers: h2.RawH2[] = [];
  const open = async (): Promise<h2.RawH2> => {
    const p = await h2.RawH2.open(port, { receiveBuffer: 4096 });
    peers.push(p);
    cleanups.push(() => p.destroy());
    return p;
  };
  // Two readers that stall 100 streams each of a 100 MB answer (opened in steps, so the
  // upstream's concurrency limit is not what this measures).
  for (let c = 0; c < 2; c++) {
    const p = await open();
    for (let i = 0; i < 100; i++) {
      p.send(h2.headers(1 + 2 * i, h2.requestBlock('/big')));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 20));
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  // And 40 connections of floods: CONTINUATION runs, PINGs, empty DATA.
  const floods: Array<Promise<number>> = [];
  for (let c = 0; c < 40; c++) {
    const p = await open();
    if (c % 3 === 0) {
      p.send(h2.headers(1, h2.requestBlock('/x'), { endHeaders: false }));
      floods.push(flood(p, 20_000, () => h2.continuation(1, Buffer.alloc(8000, 98))));
    } else if (c % 3 === 1) floods.push(flood(p, 20_000, () => h2.ping()));
    else {
      p.send(h2.headers(1, h2.requestBlock('/upload', [], 'POST'), { endStream: false }));
      floods.push(flood(p, 20_000, () => h2.data(1, Buffer.alloc(0))));
    }
  }
  await Promise.all(floods);
  const session = http2Connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const answered = await new Promise<string>((resolve, reject) => {
    const s = session.request({ ':path': '/meanwhile' });
    let body = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      body += c;
    });
    s.on('end', () => resolve(body));
    s.on('error', reject);
    s.end();
  });
  session.destroy();
  assert.equal(answered, 'hello /meanwhile');
  await new Promise((r) => setTimeout(r, 1500));
  const { rss, peak } = memoryOf(pid);
  const flooders = peers.slice(2);
  assert.ok(
    flooders.every((p) => p.isClosed),
    `every flooding connection was closed (${flooders.filter((p) => !p.isClosed).length} open)`,
  );
  // 200 stalled 100 MB answers and ~50 MB of flood bytes: memory grows by little of that.
  const grew = (rss - baseline) / 2 ** 20;
  t.diagnostic(`RSS ${mib(baseline)} → ${mib(rss)} MiB, peak ${mib(peak)} MiB`);
  assert.ok(grew < 120, `RSS grew by ${grew.toFixed(0)} MiB (peak ${(peak / 2 ** 20).toFixed(0)} MiB)`);
  child.child.kill('SIGTERM');
});

/** Bytes as whole MiB, for the memory test's line. */
function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}
