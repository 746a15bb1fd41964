/**
 * The demo as a newcomer meets it: `gangway demo` starts three replicas, the gateway and the
 * console, prints the URLs, and Ctrl-C leaves nothing running or listening; the console's
 * switches inflict real faults; and in real headless Chromium a track keeps playing through
 * the gateway while the replica streaming it is killed and another frozen — the audio
 * element keeps advancing, fires no error, and the bytes it received are the track's.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect as http2Connect } from 'node:http2';
import { connect, createServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemo } from '../src/demo/run.js';
import { browserUnavailable, launchBrowser, watchedPage } from './support/browser.js';
import { h2Ask } from './support/h2-client.js';
import { spawnCli } from './support/spawn-cli.js';
import { closedPort } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await closedPort());
  return [...ports];
}

test(
  'gangway demo prints its URLs, serves the player (also over HTTPS with HTTP/2), and Ctrl-C leaves nothing ' +
    'running or listening',
  async () => {
    const ports = await freePorts(7);
    const { child, output } = await spawnDemo(ports);
    const out = output.text;
    assert.match(out, new RegExp(`player +http://127\\.0\\.0\\.1:${ports[0]}/`));
    assert.match(out, new RegExp(`console +http://127\\.0\\.0\\.1:${ports[2]}/`));
    assert.match(out, new RegExp(`status page +http://127\\.0\\.0\\.1:${ports[0]}/status`));
    const player = await (await fetch(`http://127.0.0.1:${ports[0]}/`)).text();
    assert.match(player, /<title>Gangway demo · player<\/title>/);
    const tracks = (await (await fetch(`http://127.0.0.1:${ports[0]}/api/tracks`)).json()) as Array<{
      url: string;
      sha256: string;
    }>;
    const audio = Buffer.from(await (await fetch(`http://127.0.0.1:${ports[0]}${tracks[0]!.url}`)).arrayBuffer());
    assert.equal(createHash('sha256').update(audio).digest('hex'), tracks[0]!.sha256);
    // HTTPS with HTTP/2, on a certificate made for the run (what `curl --http2 -vk` shows).
    assert.match(out, new RegExp(`over HTTPS +https://localhost:${ports[6]}/ +\\(HTTP/2`));
    const session = http2Connect(`https://localhost:${ports[6]}`, { rejectUnauthorized: false });
    await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
    const socket = session.socket as TLSSocket;
    assert.equal(socket.alpnProtocol, 'h2');
    assert.match(socket.getPeerX509Certificate()?.subjectAltName ?? '', /DNS:localhost, IP Address:127\.0\.0\.1/);
    const listed = await h2Ask(session, { ':path': '/api/tracks' });
    session.close();
    assert.equal(listed.status, 200);
    assert.equal((JSON.parse(listed.body) as unknown[]).length, tracks.length);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
    await new Promise((r) => setTimeout(r, 300));
    for (const p of ports) assert.equal(await listening(p), false, `port ${p} is closed again`);
  },
);

/** The demo in this process on free ports, logging only warnings; closed after the tests. */
async function quietDemo() {
  const ports = await freePorts(6);
  const demo = await startDemo({
    listen: `127.0.0.1:${ports[0]}`,
    admin: `127.0.0.1:${ports[1]}`,
    consolePort: ports[2],
    replicaPorts: ports.slice(3),
    quiet: true,
  });
  cleanups.push(() => demo.close());
  return { ports, demo };
}

/** Starts `gangway demo` as its own process on the given ports; resolves with its output so far once it is up (or gone). */
async function spawnDemo(ports: number[]) {
  const demo = spawnCli(['demo'], { ...process.env, GANGWAY_DEMO_PORTS: ports.join(',') });
  const { child, exited } = demo;
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await demo.until('Press Ctrl-C', 20_000);
  return {
    child,
    output: {
      get text() {
        return demo.output();
      },
    },
    exited,
  };
}

test(
  'a reload keeps the demo on its own replicas, and closing the terminal (SIGHUP) ' + 'stops it like Ctrl-C',
  async () => {
    const ports = await freePorts(7);
    const { child, output, exited } = await spawnDemo(ports);
    assert.match(output.text, /log +\S+gangway-demo\.log/, 'the banner says where the log goes');
    const hosts = async () => {
      const status = (await (await fetch(`http://127.0.0.1:${ports[1]}/api/status`)).json()) as {
        upstreams: Array<{ hosts: Array<{ address: string }> }>;
      };
      return status.upstreams.flatMap((u) => u.hosts.map((h) => h.address));
    };
    const before = await hosts();
    assert.deepEqual(
      before,
      ports.slice(3, 6).map((p) => `127.0.0.1:${p}`),
    );
    const reload = await fetch(`http://127.0.0.1:${ports[1]}/api/reload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(reload.status, 200);
    assert.deepEqual(await hosts(), before, "the reload did not send traffic to the example file's 7001-7003");
    const tracks = await fetch(`http://127.0.0.1:${ports[0]}/api/tracks`);
    assert.equal(tracks.status, 200);
    await tracks.arrayBuffer();
    assert.doesNotMatch(output.text, /"msg":"request"|GET \/api\/tracks/, 'requests are not logged to the terminal');
    child.kill('SIGHUP');
    assert.equal(await exited, 0);
    await new Promise((r) => setTimeout(r, 300));
    for (const p of ports) assert.equal(await listening(p), false, `port ${p} is closed again`);
  },
);

test(
  "a replica's port in use: one clear line naming it and GANGWAY_DEMO_PORTS, " + 'no stack, nothing left running',
  async () => {
    const ports = await freePorts(7);
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(ports[4], '127.0.0.1', r));
    cleanups.push(() => taken.close());
    const { output, exited } = await spawnDemo(ports);
    assert.equal(await exited, 1);
    assert.ok(
      output.text.includes(`replica-2 cannot listen on 127.0.0.1:${ports[4]}: the port is in use`),
      output.text,
    );
    assert.match(output.text, /GANGWAY_DEMO_PORTS=/);
    assert.doesNotMatch(output.text, /Unhandled| {4}at /, 'no stack trace');
    for (const p of [ports[0]!, ports[1]!, ports[2]!, ports[3]!, ports[5]!])
      assert.equal(await listening(p), false, `port ${p} is not held`);
  },
);

test("the console's switches fault a real replica, and its event stream shows the gateway at work", async () => {
  const { ports, demo } = await quietDemo();
  const post = async (path: string) =>
    (await fetch(new URL(path, demo.urls.console), { method: 'POST' })).json() as Promise<{
      ok: boolean;
      message: string;
      plainProxy?: string;
    }>;
  const storm = await post('/api/replicas/2/fault/storm');
  assert.equal(storm.ok, true);
  assert.match(storm.plainProxy!, /^A plain proxy: 503 Service Unavailable/);
  assert.match(storm.message, /new requests from now on/, 'a switch that reaches only new requests says so');
  assert.equal((await post('/api/replicas/1/kill')).message, 'replica-1 killed (SIGKILL)');
  const again = await post('/api/replicas/1/kill');
  assert.equal(again.ok, false, 'a killed replica cannot be killed again');
  assert.equal((await post('/api/replicas/1/thaw')).ok, false, 'nor thawed');
  assert.equal((await post('/api/replicas/1/fault/reset')).ok, false, 'nor given a fault');
  const gone = Date.now() + 2000;
  while ((await listening(ports[3]!)) && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await listening(ports[3]!), false, 'the killed replica no longer listens');
  // With one replica dead and one answering 503, a listener still gets the catalogue every time.
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${demo.urls.player}api/tracks`);
    statuses.push(r.status);
    await r.arrayBuffer();
  }
  assert.deepEqual([...new Set(statuses)], [200]);
  const ticks: Array<{
    replicas: Array<{ state: string; fault: string }>;
    gateway: { retriesPerSecond: number };
    events: Array<{ text: string }>;
  }> = [];
  const controller = new AbortController();
  const res = await fetch(new URL('/events', demo.urls.console), { signal: controller.signal });
  const reader = res.body!.getReader();
  let buf = '';
  while (ticks.length < 2) {
    const { value } = await reader.read();
    buf += new TextDecoder().decode(value);
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const data = /^data: (.*)$/m.exec(buf.slice(0, end));
      buf = buf.slice(end + 2);
      if (data) ticks.push(JSON.parse(data[1]!));
    }
  }
  controller.abort();
  const last = ticks[ticks.length - 1]!;
  assert.deepEqual(
    last.replicas.map((r) => [r.state, r.fault]),
    [
      ['killed', 'none'],
      ['running', 'storm'],
      ['running', 'none'],
    ],
  );
  assert.ok(last.events.some((e) => e.text === 'replica-1 killed (SIGKILL)'));
  await post('/api/replicas/1/restart');
  assert.equal(await listening(ports[3]!), true, 'restarted on its port');
  const maintenance = await post('/api/maintenance/on');
  assert.equal(maintenance.ok, true);
  const held = await fetch(`${demo.urls.player}api/tracks`);
  assert.equal(held.status, 503);
  assert.match(String(held.headers.get('proxy-status')), /maintenance/);
  await post('/api/maintenance/off');
});

test(
  'a total outage: the track list keeps answering from the cache, and a track ' + 'explains why it cannot start',
  async () => {
    const { demo } = await quietDemo();
    const first = await fetch(`${demo.urls.player}api/tracks`);
    const catalogue = await first.text();
    assert.match(String(first.headers.get('cache-status')), /stored/);
    const outage = (await (await fetch(new URL('/api/outage', demo.urls.console), { method: 'POST' })).json()) as {
      ok: boolean;
    };
    assert.equal(outage.ok, true);
    for (const r of demo.fleet.replicas) assert.equal(r.state, 'killed');
    const during = await fetch(`${demo.urls.player}api/tracks`);
    assert.equal(during.status, 200);
    assert.equal(await during.text(), catalogue, 'the last good track list');
    assert.match(String(during.headers.get('cache-status')), /^gangway; (hit|fwd=stale)/);
    const track = await fetch(`${demo.urls.player}audio/morning.wav`, { headers: { accept: 'application/json' } });
    assert.ok([502, 503].includes(track.status), `a track cannot start: ${track.status}`);
    assert.equal(track.headers.get('content-type'), 'application/problem+json');
    assert.ok(Number(track.headers.get('retry-after')) > 0);
    await fetch(new URL('/api/restart-all', demo.urls.console), { method: 'POST' });
    for (const r of demo.fleet.replicas) assert.equal(r.state, 'running');
  },
);

const skip = browserUnavailable();

test('a track keeps playing in Chromium while the replica streaming it is killed and another frozen', {
  skip,
}, async () => {
  const { demo } = await quietDemo();
  const browser = await launchBrowser(['--autoplay-policy=no-user-gesture-required']);
  cleanups.push(() => browser.close());
  const { page, problems } = await watchedPage(browser);
  const received: Array<{ replica: string; range: string | undefined; body: Promise<Buffer> }> = [];
  page.on('response', (r) => {
    if (r.url().includes('/audio/'))
      received.push({ replica: r.headers()['x-replica'] ?? '?', range: r.headers()['content-range'], body: r.body() });
  });
  await page.goto(demo.urls.player);
  await page.waitForFunction('window.demo.tracks !== undefined');
  const tracks = (await page.evaluate('window.demo.tracks')) as Array<{
    sha256: string;
    bytes: number;
    seconds: number;
  }>;
  await page.click('#tracks button >> nth=0');
  await page.waitForFunction('document.getElementById("audio").currentTime > 0.5', undefined, { timeout: 10_000 });
  // The replica streaming the track dies, and the next one in line freezes.
  // The player names the replica sending its audio (asked of the console), and follows a resume.
  await page.waitForFunction('window.demo.from !== undefined', undefined, { timeout: 5000 });
  assert.equal(await page.evaluate('window.demo.from'), received[0]!.replica);
  const streaming = Number(received[0]!.replica.split('-')[1]) - 1;
  const open = demo.fleet.replicas[streaming]!.streams;
  assert.equal(open.length, 1, 'the console knows the replica has one stream open');
  demo.fleet.kill(streaming);
  await page.waitForFunction(`window.demo.from !== ${JSON.stringify(received[0]!.replica)}`, undefined, {
    timeout: 8000,
  });
  demo.fleet.freeze((streaming + 1) % 3);
  const positions: number[] = [];
  for (let i = 0; i < 16; i++) {
    await page.waitForTimeout(1000);
    positions.push((await page.evaluate('document.getElementById("audio").currentTime')) as number);
    if (await page.evaluate('document.getElementById("audio").ended')) break;
  }
  const ended = (await page.evaluate('document.getElementById("audio").ended')) as boolean;
  assert.equal(await page.evaluate('window.demo.errors'), 0, 'the audio element fired no error');
  assert.ok(
    ended || positions[positions.length - 1]! > tracks[0]!.seconds - 1,
    `played to the end: ${positions.map((p) => p.toFixed(1)).join(' ')}`,
  );
  for (let i = 1; i < positions.length; i++)
    assert.ok(positions[i]! >= positions[i - 1]!, 'the position never went back');
  // Every byte the audio element received, put together by Content-Range, is the track.
  const file = Buffer.alloc(tracks[0]!.bytes);
  const covered = new Uint8Array(file.length);
  for (const r of received) {
    const body = await r.body;
    const start = r.range ? Number(/bytes (\d+)-/.exec(r.range)![1]) : 0;
    body.copy(file, start);
    covered.fill(1, start, start + body.length);
  }
  assert.equal(covered.indexOf(0), -1, 'the whole track arrived');
  assert.equal(
    createHash('sha256').update(file).digest('hex'),
    tracks[0]!.sha256,
    'and it is the track, byte for byte',
  );
  assert.deepEqual(problems, []);
  const metrics = (await demo.gateway.metrics.registry.getMetricsAsJSON()) as unknown as Array<{
    name: string;
    values: Array<{ labels: Record<string, string>; value: number }>;
  }>;
  const resumed =
    metrics.find((m) => m.name === 'gangway_resumes_total')?.values.find((v) => v.labels.outcome === 'started')
      ?.value ?? 0;
  assert.ok(resumed >= 1, `the broken stream was resumed from another replica (${resumed})`);
  demo.fleet.thaw((streaming + 1) % 3);
});

test('a demo that cannot start leaves no certificate key behind in the temporary directory', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gangway-demo-tmp-'));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    await assert.rejects(startDemo({ https: 'not an address', quiet: true }));
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
  assert.deepEqual(readdirSync(tmp), []);
  rmSync(tmp, { recursive: true });
});
