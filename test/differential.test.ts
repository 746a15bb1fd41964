/**
 * The differential check: one corpus of hostile and odd requests, sent as raw bytes through
 * Gangway and through nginx, each in front of its own recording upstream and with the same
 * routing (a route for the prefix /public, 404 for everything else). The question each request
 * asks is "what reached the upstream, and what did the client get". Gangway's own properties
 * are asserted whatever nginx does; where the two differ, the difference must have a reason
 * written in this file, and the table of differences is kept in docs/differential.md.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpUpstream, startGateway, type TestServer } from './support/harness.js';

// --- The corpus -----------------------------------------------------------------------------

/** Each class of request has its own reason when Gangway and nginx answer it differently. */
type ProbeClass =
  | 'control'
  | 'dot-raw'
  | 'dot-encoded'
  | 'backslash-raw'
  | 'backslash-encoded'
  | 'encoded-slash-dot'
  | 'encoded-slash'
  | 'param-dot'
  | 'empty-segment'
  | 'encoded-unreserved'
  | 'host-invalid'
  | 'host-empty-label'
  | 'host-valid-variant'
  | 'host-double'
  | 'host-double-absolute'
  | 'host-missing'
  | 'host-empty'
  | 'absolute-form'
  | 'absolute-form-invalid'
  | 'absolute-form-bad-host-field'
  | 'target-long'
  | 'upgrade-h2c'
  | 'upgrade-h2c-body'
  | 'expect-continue';

interface Probe {
  cls: ProbeClass;
  /** The request as sent, without the probe's own id field. */
  raw: string;
  /** HEAD: the answer has no body whatever its Content-Length says. */
  head: boolean;
  /** Send the body only after a 100 (Continue), as a client that asked for one does. */
  awaitContinue: boolean;
}

/** The field that tells the recording upstream which probe reached it; it is never shown. */
const PROBE_FIELD = 'x-differential-probe';

/** A request from its lines: `Connection: close` added unless one is given, then the body. */
function request(line: string, headers: string[], body = ''): string {
  const fields = headers.some((h) => /^connection:/i.test(h)) ? headers : [...headers, 'Connection: close'];
  return `${line}\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n${body}`;
}
const get = (target: string, host = 'music.example') => request(`GET ${target} HTTP/1.1`, [`Host: ${host}`]);

const DOT_DOT_ENCODED = ['%2e%2e', '%2E%2E', '.%2e', '%2e.', '.%2E', '%2E.'];
const DOT_ENCODED = ['%2e', '%2E'];

/** Targets with a ".." segment spelt `dd`, reaching for /admin and wandering inside /public. */
const dotDotTargets = (dd: string) => [
  `/public/${dd}/admin`,
  `/public/x/${dd}/${dd}/admin`,
  `/public/x/${dd}/y`,
  `/public/x/y/${dd}/${dd}/z`,
  `/public/${dd}`,
  `/public/x/${dd}`,
  `/${dd}/public/x`,
  `/public/x/${dd}?q=../admin`,
];
/** Targets with a "." segment spelt `d`. */
const dotTargets = (d: string) => [`/public/${d}/x`, `/public/${d}`, `/${d}/public/x`, `/public/x/${d}/y`];

/** Targets where `b` (a backslash, raw or encoded) stands where a slash would. */
const backslashTargets = (b: string) => [
  `/public${b}..${b}admin`,
  `/public/..${b}admin`,
  `/public/x${b}..${b}..${b}admin`,
  `/public${b}%2e%2e${b}admin`,
  `/public/x/..${b}y`,
  `/public${b}x`,
  `/public/a${b}b`,
  `/public/x${b}`,
];

function buildCorpus(): Probe[] {
  const probes = new Map<string, Probe>();
  const add = (cls: ProbeClass, raw: string, awaitContinue = false): void => {
    const key = `${awaitContinue}${raw}`;
    if (!probes.has(key)) probes.set(key, { cls, raw, head: raw.startsWith('HEAD '), awaitContinue });
  };

  // Ordinary requests, in and out of the route: both must agree on all of them.
  for (const t of [
    '/public',
    '/public/',
    '/public/x',
    '/public/a/b.mp3?x=1&y=2',
    '/public?q=1',
    '/public/a.b/c..d/.e',
  ]) {
    add('control', get(t));
  }
  for (const t of ['/', '/admin', '/publicity', '/public.json', '/x/public/y']) add('control', get(t));
  add('control', request('HEAD /public/x HTTP/1.1', ['Host: music.example']));
  add('control', request('POST /public/upload HTTP/1.1', ['Host: music.example', 'Content-Length: 5'], 'hello'));
  add('control', request('DELETE /public/x HTTP/1.1', ['Host: music.example']));
  add('control', request('GET /public/x HTTP/1.0', ['Host: music.example']));

  // Path escapes.
  for (const t of [...dotDotTargets('..'), ...dotTargets('.')]) add('dot-raw', get(t));
  for (const t of ['http://music.example/public/../admin', 'http://music.example/public/a/../b']) {
    add('dot-raw', request(`GET ${t} HTTP/1.1`, ['Host: other.example']));
  }
  for (const dd of DOT_DOT_ENCODED) for (const t of dotDotTargets(dd)) add('dot-encoded', get(t));
  for (const d of DOT_ENCODED) for (const t of dotTargets(d)) add('dot-encoded', get(t));
  for (const t of backslashTargets('\\')) add('backslash-raw', get(t));
  for (const b of ['%5c', '%5C']) for (const t of backslashTargets(b)) add('backslash-encoded', get(t));
  for (const s of ['%2f', '%2F']) {
    for (const t of [
      `/public/..${s}admin`,
      `/public/x/..${s}..${s}admin`,
      `/public${s}..${s}admin`,
      `/public/x${s}..`,
      `/public/${s}../admin`,
      `/public/%2e%2e${s}admin`,
      `/public/x/.${s}y`,
    ]) {
      add('encoded-slash-dot', get(t));
    }
    for (const t of [`/public/a${s}b`, `/public${s}x`, `/public/${s}`, `/admin${s}x`]) add('encoded-slash', get(t));
  }
  for (const p of [';', ';x', ';x=1', ';jsessionid=0A1B']) {
    for (const t of [
      `/public/..${p}/admin`,
      `/public/x/..${p}/..${p}/admin`,
      `/public/.${p}/x`,
      `/public/%2e%2e${p}/admin`,
      `/public/x/..${p}`,
      `/public${p}/../admin`,
    ]) {
      add('param-dot', get(t));
    }
  }
  for (const t of [
    '//public/x',
    '/public//x',
    '/public///x',
    '/public//',
    '//admin',
    '///public',
    '/public//..//admin',
    '/public/x//..//y',
    '//public//x//',
    '//..//public/x',
  ]) {
    add('empty-segment', get(t));
  }
  for (const t of [
    '/public/%7Euser',
    '/public/%61bc',
    '/%70ublic/x',
    '/%70%75%62%6C%69%63/x',
    '/public/a%2db',
    '/%61dmin',
  ]) {
    add('encoded-unreserved', get(t));
  }

  // Host problems.
  for (const h of [
    'a b',
    'user@music.example',
    'music.example/evil',
    'music.example\\evil',
    'music.example?x',
    'music.example#x',
    'músic.example',
    'music.example:99999',
    'music.example:8o',
    '[::1',
    '[not-v6]',
    ':8080',
    'a,b',
    'a;b',
    "music.example'",
    'x'.repeat(300),
  ]) {
    add('host-invalid', get('/public/x', h));
  }
  // Names with an empty label: no DNS name, and ".." is a directory to an origin that maps Host to one.
  for (const h of ['music..example', '..', '.', '.music.example', 'music.example..']) {
    add('host-empty-label', get('/public/x', h));
  }
  for (const h of [
    'MUSIC.example',
    'music.example:8080',
    '127.0.0.1:80',
    '[::1]:8080',
    'a-b_c.example.',
    'music.example:',
  ]) {
    add('host-valid-variant', get('/public/x', h));
  }
  for (const pair of [
    ['Host: music.example', 'Host: music.example'],
    ['Host: music.example', 'Host: admin.example'],
    ['Host: music.example', 'host: admin.example'],
    ['HOST: music.example', 'Host: admin.example'],
    ['Host: music.example', 'Host:'],
    ['Host:', 'Host: music.example'],
    ['Host: music.example', 'Host: music.example:80'],
  ]) {
    add('host-double', request('GET /public/x HTTP/1.1', pair));
    add('host-double', request('POST /public/x HTTP/1.1', [...pair, 'Content-Length: 2'], 'hi'));
  }
  for (const pair of [
    ['Host: music.example', 'Host: admin.example'],
    ['Host: music.example', 'Host: music.example'],
    ['Host: other.example', 'host: admin.example'],
  ]) {
    add('host-double-absolute', request('GET http://music.example/public/x HTTP/1.1', pair));
    add(
      'host-double-absolute',
      request('POST http://music.example/public/x HTTP/1.1', [...pair, 'Content-Length: 2'], 'hi'),
    );
  }
  add('host-missing', request('GET /public/x HTTP/1.1', []));
  add('host-missing', request('POST /public/x HTTP/1.1', ['Content-Length: 2'], 'hi'));
  add('host-missing', request('GET /admin HTTP/1.1', []));
  add('host-missing', request('GET http://music.example/public/x HTTP/1.1', []));
  add('host-missing', request('GET /public/x HTTP/1.0', []));
  add('host-missing', request('GET /admin HTTP/1.0', []));
  add('host-empty', request('GET /public/x HTTP/1.1', ['Host:']));
  add('host-empty', request('GET /public/x HTTP/1.1', ['Host:   ']));
  add('host-empty', request('GET /public/x HTTP/1.0', ['Host:']));

  // Absolute-form targets naming another host than Host: the target's authority wins.
  for (const target of [
    'http://music.example/public/x',
    'http://music.example/public/x?q=1',
    'http://MUSIC.EXAMPLE/public/x',
    'http://music.example:8080/public/x',
    'HTTP://music.example/public/x',
    'https://music.example/public/x',
    'http://music.example/admin',
    'http://music.example',
    'http://music.example?x=1',
    'http://127.0.0.1/public/x',
    'http://[::1]:8080/public/x',
  ]) {
    add('absolute-form', request(`GET ${target} HTTP/1.1`, ['Host: other.example']));
  }
  for (const target of [
    'http://user@music.example/public/x',
    'http://user:pw@music.example/public/x',
    'http://music.example:99999/public/x',
    'http:///public/x',
    'ftp://music.example/public/x',
    'http://mus ic.example/public/x',
  ]) {
    add('absolute-form-invalid', request(`GET ${target} HTTP/1.1`, ['Host: other.example']));
  }
  for (const h of ['user@music.example', 'music.example:99999', 'a,b', 'music.example/evil']) {
    add('absolute-form-bad-host-field', request('GET http://music.example/public/x HTTP/1.1', [`Host: ${h}`]));
  }

  // Long targets, in the path and in the query: up to Gangway's limit (8192 B), just over it, well beyond.
  for (const n of [8_000, 8_192, 8_193, 10_000, 100_000]) {
    add('target-long', get(`/public/${'a'.repeat(n - '/public/'.length)}`));
    add('target-long', get(`/public/x?q=${'a'.repeat(n - '/public/x?q='.length)}`));
  }

  // Upgrade: h2c would take the connection out of the routes: never honoured.
  const h2c = (line: string, upgrade: string, extra: string[] = [], body = '') =>
    request(
      line,
      [
        'Host: music.example',
        'Connection: Upgrade, HTTP2-Settings, close',
        `Upgrade: ${upgrade}`,
        'HTTP2-Settings: AAMAAABkAAQAAP__',
        ...extra,
      ],
      body,
    );
  for (const u of ['h2c', 'H2C', 'websocket, h2c', 'h2c, websocket', 'h2c/1.0']) {
    add('upgrade-h2c', h2c('GET /public/x HTTP/1.1', u));
  }
  add('upgrade-h2c', h2c('GET /admin HTTP/1.1', 'h2c'));
  add('upgrade-h2c', h2c('OPTIONS /public/x HTTP/1.1', 'h2c'));
  add('upgrade-h2c-body', h2c('POST /public/x HTTP/1.1', 'h2c', ['Content-Length: 2'], 'hi'));
  add('upgrade-h2c-body', h2c('PUT /public/x HTTP/1.1', 'H2C', ['Content-Length: 5'], 'hello'));
  add(
    'upgrade-h2c-body',
    h2c('POST /public/x HTTP/1.1', 'h2c', ['Transfer-Encoding: chunked'], '2\r\nhi\r\n0\r\n\r\n'),
  );
  add('upgrade-h2c', request('GET /public/x HTTP/1.1', ['Host: music.example', 'Upgrade: h2c', 'Connection: close']));

  // Expect: 100-continue with a small body, sent at once, or after the 100 as a patient client does.
  for (const [method, expect] of [
    ['POST', '100-continue'],
    ['PUT', '100-continue'],
    ['POST', '100-Continue'],
    ['PATCH', '100-continue'],
  ]) {
    for (const awaitContinue of [false, true]) {
      add(
        'expect-continue',
        request(
          `${method} /public/up HTTP/1.1`,
          ['Host: music.example', `Expect: ${expect}`, 'Content-Length: 5'],
          'hello',
        ),
        awaitContinue,
      );
    }
  }
  add(
    'expect-continue',
    request('POST /admin HTTP/1.1', ['Host: music.example', 'Expect: 100-continue', 'Content-Length: 5'], 'hello'),
  );
  add(
    'expect-continue',
    request(
      'POST /public/up HTTP/1.1',
      ['Host: music.example', 'Expect: 100-continue', 'Transfer-Encoding: chunked'],
      '5\r\nhello\r\n0\r\n\r\n',
    ),
  );
  add(
    'expect-continue',
    request('POST /public/up HTTP/1.0', ['Host: music.example', 'Expect: 100-continue', 'Content-Length: 5'], 'hello'),
  );
  return [...probes.values()];
}

/** The probe's id field goes last in the header section, where it changes nothing else. */
function tagged(raw: string, id: number): string {
  const end = raw.indexOf('\r\n\r\n');
  return `${raw.slice(0, end)}\r\n${PROBE_FIELD}: ${id}${raw.slice(end)}`;
}

// --- Sending raw bytes, reading the final status ------------------------------------------

/**
 * Writes `payload` — with `awaitContinue`, its body only once a 100 (Continue) came, or after a
 * second without one (RFC 9110 §10.1.1) — and resolves with the final status (1xx skipped; 0
 * when nothing came), as soon as the response is complete or the connection closes.
 */
function exchange(
  port: number,
  payload: string,
  head: boolean,
  awaitContinue: boolean,
  giveUpMs = 4000,
): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(got, head).status);
    };
    const timer = setTimeout(finish, giveUpMs);
    const split = awaitContinue ? payload.indexOf('\r\n\r\n') + 4 : payload.length;
    let body: string | undefined = payload.slice(split);
    const sendBody = (): void => {
      if (body !== undefined && !settled) socket.write(body);
      body = undefined;
    };
    const patience = awaitContinue ? setTimeout(sendBody, 1000) : undefined;
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (body !== undefined && /^HTTP\/1\.1 100 /.test(got.toString('latin1', 0, 13))) {
        clearTimeout(patience);
        sendBody();
      }
      if (parseResponse(got, head).complete) finish();
    });
    socket.on('close', finish);
    socket.on('error', finish);
    socket.write(payload.slice(0, split));
    if (!awaitContinue) body = undefined;
  });
}

/** The final status of what arrived, and whether its body is complete. */
function parseResponse(buf: Buffer, head: boolean): { status: number; complete: boolean } {
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(at, at + 16).toString('latin1'))?.[1] ?? 0);
    if (end < 0) return { status, complete: false };
    const headers = buf.subarray(at, end).toString('latin1');
    const bodyStart = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      at = bodyStart;
      continue;
    }
    if (head || status === 204 || status === 304 || status === 101) return { status, complete: true };
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
    if (length) return { status, complete: buf.length - bodyStart >= Number(length[1]) };
    if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(headers)) {
      return { status, complete: buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2) >= 0 };
    }
    return { status, complete: false };
  }
}

// --- The recording upstreams ----------------------------------------------------------------

interface Arrival {
  method: string;
  url: string;
  host: string | undefined;
}

/** An upstream that records, by probe id, what reached it, and answers 200. */
async function recordingUpstream(): Promise<TestServer & { seen: Map<number, Arrival[]>; untagged: Arrival[] }> {
  const seen = new Map<number, Arrival[]>();
  const untagged: Arrival[] = [];
  const up = await httpUpstream((req, res) => {
    const arrival = { method: req.method!, url: req.url!, host: req.headers.host };
    const id = Number(req.headers[PROBE_FIELD]);
    if (Number.isInteger(id)) seen.set(id, [...(seen.get(id) ?? []), arrival]);
    else untagged.push(arrival);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  return Object.assign(up, { seen, untagged });
}

// --- nginx -----------------------------------------------------------------------------------

function findNginx(): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin']) {
    if (existsSync(`${dir}/nginx`)) return `${dir}/nginx`;
  }
  return undefined;
}

function freePort(): Promise<number> {
  const s = createNetServer();
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Routing equal to Gangway's `match: { path: "/public" }`: "/public" itself and everything
 * under "/public/", the rest 404. `proxy_pass` without a URI forwards the target as the client
 * sent it; `$host` is the authority nginx routed on (the absolute-form one when there is one).
 */
function nginxServerBlock(port: number | string, upstreamPort: number | string): string {
  return [
    `upstream up { server 127.0.0.1:${upstreamPort}; }`,
    'server {',
    `  listen 127.0.0.1:${port} default_server;`,
    '  proxy_set_header Host $host;',
    '  location = /public { proxy_pass http://up; }',
    '  location /public/ { proxy_pass http://up; }',
    '  location / { return 404; }',
    '}',
  ].join('\n');
}

interface RunningNginx {
  port: number;
  stop(): Promise<void>;
}

/** nginx in the foreground, everything it writes under a prefix directory of its own. */
async function startNginx(binary: string, upstreamPort: number): Promise<RunningNginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'gangway-differential-nginx-'));
  // Workers drop to an unprivileged user when nginx starts as root: they must read the config.
  chmodSync(prefix, 0o755);
  const built = spawnSync(binary, ['-V'], { encoding: 'utf8' }).stderr;
  // Every temp path a compiled-in module would otherwise create under /var/lib/nginx.
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .filter((m) => m === 'client_body' || !built.includes(`--without-http_${m}_module`))
    .map((m) => `${m}_temp_path ${prefix}/${m};`)
    .join(' ');
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log error;
events { worker_connections 512; }
http { access_log off; ${temps}
  ${nginxServerBlock(port, upstreamPort)}
}
`,
    );
    const child = spawn(binary, ['-p', prefix, '-c', conf, '-e', `${prefix}/error.log`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    if (await listening(port, child)) {
      return { port, stop: () => stopByPid(child).then(() => rmSync(prefix, { recursive: true, force: true })) };
    }
    await stopByPid(child);
    lastError = `${stderr}${existsSync(`${prefix}/error.log`) ? readFileSync(`${prefix}/error.log`, 'utf8') : ''}`;
  }
  rmSync(prefix, { recursive: true, force: true });
  throw new Error(`nginx did not start:\n${lastError}`);
}

/** Whether `port` accepts connections before the process exits or 5 s pass. */
async function listening(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && child.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** SIGTERM to this master's PID (its workers follow it), SIGKILL if it lingers. */
function stopByPid(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const signal = (name: NodeJS.Signals): void => {
      try {
        process.kill(child.pid!, name);
      } catch {
        // It exited between the check and the signal.
      }
    };
    const kill = setTimeout(() => signal('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    signal('SIGTERM');
  });
}

// --- Running the corpus through both ---------------------------------------------------------

interface Outcome {
  status: number;
  /** What reached the upstream for this probe, in arrival order. */
  reached: Arrival[];
}

interface Result {
  probe: Probe;
  gangway: Outcome;
  nginx?: Outcome;
}

const corpus = buildCorpus();
const NGINX = findNginx();
const UPDATE = process.env.UPDATE_DIFFERENTIAL === '1';
const DOC = new URL('../docs/differential.md', import.meta.url);
const results: Result[] = [];
const cleanups: Array<() => unknown> = [];
const portNames = new Map<number, string>();

before(async () => {
  const gwUpstream = await recordingUpstream();
  cleanups.push(() => gwUpstream.close());
  const gw = await startGateway({
    upstreams: { site: { hosts: [gwUpstream.address], healthCheck: { enabled: false } } },
    routes: [{ name: 'public', match: { path: '/public' }, upstream: 'site' }],
  });
  cleanups.push(() => gw.close());
  const gwPort = Number(new URL(gw.url).port);
  portNames.set(gwPort, 'GATEWAY').set(gwUpstream.port, 'UPSTREAM');

  let nginx: (RunningNginx & { upstream: Awaited<ReturnType<typeof recordingUpstream>> }) | undefined;
  if (NGINX) {
    const upstream = await recordingUpstream();
    cleanups.push(() => upstream.close());
    const running = await startNginx(NGINX, upstream.port);
    cleanups.push(() => running.stop());
    nginx = Object.assign(running, { upstream });
    portNames.set(running.port, 'NGINX').set(upstream.port, 'UPSTREAM');
  }

  const statuses: Array<{ gangway: number; nginx?: number }> = [];
  for (let i = 0; i < corpus.length; i += 24) {
    const batch = corpus.slice(i, i + 24);
    const answered = await Promise.all(
      batch.map(async (probe, k) => {
        const raw = tagged(probe.raw, i + k);
        const [g, n] = await Promise.all([
          exchange(gwPort, raw, probe.head, probe.awaitContinue),
          nginx ? exchange(nginx.port, raw, probe.head, probe.awaitContinue) : Promise.resolve(undefined),
        ]);
        return { gangway: g, nginx: n };
      }),
    );
    statuses.push(...answered);
  }
  corpus.forEach((probe, id) => {
    results.push({
      probe,
      gangway: { status: statuses[id]!.gangway, reached: gwUpstream.seen.get(id) ?? [] },
      nginx: nginx ? { status: statuses[id]!.nginx!, reached: nginx.upstream.seen.get(id) ?? [] } : undefined,
    });
  });
  assert.deepEqual(gwUpstream.untagged, [], 'every request that reached the upstream came from a probe');
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// --- What Gangway must hold, whatever nginx does -------------------------------------------------

const ofClass = (...classes: ProbeClass[]) => results.filter((r) => classes.includes(r.probe.cls));
const pathOf = (url: string) => url.split('?')[0]!;

test('the corpus has many variants of every class', () => {
  const counts = new Map<ProbeClass, number>();
  for (const p of corpus) counts.set(p.cls, (counts.get(p.cls) ?? 0) + 1);
  assert.ok(corpus.length > 250, `${corpus.length} requests`);
  for (const [cls, n] of counts) assert.ok(n >= 3, `${cls}: ${n} variants`);
  assert.equal(results.length, corpus.length, 'every request was sent');
});

test("nothing outside /public reaches Gangway's upstream, and each request at most once", () => {
  for (const r of results) {
    assert.ok(r.gangway.reached.length <= 1, `${describe(r.probe)} reached the upstream once`);
    for (const a of r.gangway.reached) {
      assert.ok(
        a.url === '/public' || a.url.startsWith('/public/') || a.url.startsWith('/public?'),
        `${describe(r.probe)} reached the upstream as ${a.url}`,
      );
    }
  }
});

test('every path Gangway forwards is in normal form', () => {
  for (const r of results) {
    for (const a of r.gangway.reached) {
      const path = pathOf(a.url);
      const what = `${describe(r.probe)} → ${a.url}`;
      assert.doesNotMatch(path, /(^|\/)\.\.?(\/|;|$)/, `no dot segment: ${what}`);
      assert.doesNotMatch(path, /\\|%5c/i, `no backslash, raw or encoded: ${what}`);
      assert.doesNotMatch(path, /%2e/i, `no encoded dot: ${what}`);
      assert.doesNotMatch(path, /\/\//, `no empty segment: ${what}`);
      assert.doesNotMatch(path, /%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2D|5F|7E)/i, `no encoded unreserved: ${what}`);
      assert.doesNotMatch(path, /%[0-9A-F]?[a-f]/, `percent-encodings in upper case: ${what}`);
    }
  }
});

test('two Host fields are 400 (RFC 9112 §3.2)', () => {
  const doubled = ofClass('host-double');
  assert.ok(doubled.length >= 10);
  for (const r of doubled) {
    assert.equal(r.gangway.status, 400, describe(r.probe));
    assert.deepEqual(r.gangway.reached, [], `${describe(r.probe)}: nothing upstream`);
  }
});

test("no 5xx from Gangway for any request of the corpus: a client's fault is a 4xx", () => {
  for (const r of results) {
    assert.ok(r.gangway.status >= 200 && r.gangway.status < 500, `${describe(r.probe)} answered ${r.gangway.status}`);
  }
});

// Departures from RFC 9112 §3.2 and from the Host policy this comparison once found, fixed in src/ since; these hold the answers. (A future difference where Gangway is wrong gets a
// Reason with `wrong: true`, and its rows go under "Where Gangway is wrong" in docs/differential.md.)

test('two Host fields are 400 with an absolute-form target too (RFC 9112 §3.2)', () => {
  for (const r of ofClass('host-double-absolute')) assert.equal(r.gangway.status, 400, describe(r.probe));
});

test('an invalid Host field is 400 with an absolute-form target too (RFC 9112 §3.2)', () => {
  for (const r of ofClass('absolute-form-bad-host-field')) assert.equal(r.gangway.status, 400, describe(r.probe));
});

test('a Host with an empty label ("..", "music..example") is 400', () => {
  for (const r of ofClass('host-empty-label')) assert.equal(r.gangway.status, 400, describe(r.probe));
});

test('an empty Host is 400: an http URI with an empty host is invalid (RFC 9110 §4.2.1)', () => {
  for (const r of ofClass('host-empty')) assert.equal(r.gangway.status, 400, describe(r.probe));
});

// --- Gangway and nginx, side by side ------------------------------------------------------------

/**
 * Why Gangway's answer is the right one where nginx's differs, by class of request. A difference
 * in a class without an entry fails the comparison: a new difference gets looked at. `wrong`
 * marks the classes where the comparison showed Gangway is the one that is wrong (todo above).
 */
interface Reason {
  /** One line, for the table's rows. */
  short: string;
  /** The whole reason, once per class. */
  why: string;
  /** The comparison showed Gangway is the one that is wrong (a todo test above holds the right answer). */
  wrong?: true;
}
const right = (short: string, why: string): Reason => ({ short, why });

const REASONS: Partial<Record<ProbeClass, Reason>> = {
  'dot-raw': right(
    'forwards the path it routed; nginx forwards dots an origin may resolve otherwise',
    'Both resolve dot segments to route (RFC 3986 §5.2.4) and stay inside /public; Gangway forwards the path it ' +
      'routed, nginx (`proxy_pass` without a URI) forwards the raw target, so an origin that resolves dots its own ' +
      'way, or not at all, serves another resource than the one routed.',
  ),
  'dot-encoded': right(
    'no encoded dot reaches the origin; nginx forwards the `%2e` it decoded to route',
    'nginx decodes `%2e` to route, then forwards the raw target, encoded dots and all: an origin or framework that ' +
      'decodes once more reads `..` segments the route never saw. Gangway forwards the normal form it routed: no ' +
      'encoded dot reaches the origin (RFC 3986 §6.2.2.2, §5.2.4).',
  ),
  'backslash-raw': right(
    '`\\` is a separator to some origins: refused, not forwarded',
    'nginx on Linux treats `\\` as an ordinary character and forwards it raw, but IIS, and every origin that ' +
      "parses with the WHATWG URL standard (Node's `new URL`, browsers), read it as a separator: " +
      '`/public/..\\admin` is /admin to them. Gangway refuses the ambiguity with 400.',
  ),
  'backslash-encoded': right(
    '`%5C`, once an origin decodes it, is a separator to some: refused',
    'nginx decodes `%5C` to an ordinary character to route, then forwards it encoded; an origin that decodes it ' +
      'and reads `\\` as a separator sees `/public/..%5Cadmin` as /admin. Gangway refuses it with 400.',
  ),
  'encoded-slash-dot': right(
    'a dot segment behind `%2F` is one to an origin that decodes first: refused',
    'A dot segment behind an encoded slash: an origin that decodes `%2F` before resolving dots reads ' +
      '`/public/x%2F..` as /public/ and `.%2F` as a dot segment the route never saw. nginx forwards the raw bytes; ' +
      'Gangway refuses the ambiguity with 400.',
  ),
  'encoded-slash': right(
    '`%2F` is data (RFC 3986 §2.2): routed and forwarded as data',
    '`%2F` is data, not a separator (RFC 3986 §2.2): Gangway keeps it encoded (hex in upper case, RFC 3986 ' +
      '§6.2.2.1), so `/public%2Fx` is not under /public. nginx decodes it to route (`/public%2Fx` lands in ' +
      '`location /public/`) and forwards the raw target: the route and the origin read different paths.',
  ),
  'param-dot': right(
    '`..;x` is `..` to servlet containers: refused, not forwarded',
    'Servlet containers (Tomcat, Jetty) strip `;…` from each segment before resolving dots: `/public/..;/admin` ' +
      'is /admin to them. nginx sees a segment named `..;` under /public/ and forwards it; Gangway refuses it ' +
      'with 400.',
  ),
  'empty-segment': right(
    'forwards the merged path it routed; nginx merges to route but forwards `//`',
    'nginx merges slashes to route (`merge_slashes`) but forwards the raw target: `//public/x` reaches the ' +
      'origin as `//public/x`, which prefix checks and URL parsers (`//host` is an authority) read differently. ' +
      'Gangway forwards the merged path it routed.',
  ),
  'encoded-unreserved': right(
    'forwards the decoded normal form it routed (RFC 3986 §6.2.2.2)',
    'An encoded unreserved character is that character (RFC 3986 §6.2.2.2). Gangway forwards the decoded ' +
      'normal form it routed; nginx routes `/%70ublic/x` as /public/x but forwards `/%70ublic/x`, which the ' +
      "origin's own `/public` checks do not recognise.",
  ),
  'host-invalid': right(
    'no authority an origin can have: 400 (RFC 9112 §3.2, RFC 3986 §3.2.2)',
    'Gangway takes in Host only an authority an origin can have (RFC 9110 §7.2, RFC 3986 §3.2.2): a DNS-style ' +
      'name, an IPv4 or bracketed IPv6 address, a port up to 65535; anything else is an invalid field value, 400 ' +
      '(RFC 9112 §3.2). nginx refuses only spaces, `/`, controls and empty names: ' +
      'it forwards userinfo, `\\`, `?`, `#`, `,`, ' +
      "`;`, quotes and non-ASCII — which confuse an origin's virtual hosts, cache keys, redirects and logs — and " +
      'silently drops a port that is not one.',
  ),
  'host-valid-variant': right(
    "forwards the authority as named, port included; nginx's `$host` drops the port",
    'Both accept it. Gangway forwards the authority as the client named it, port included (an origin builds its ' +
      "absolute URLs and redirects from it, RFC 9110 §7.2); nginx's `$host` lower-cases it and drops the port and " +
      'a trailing dot.',
  ),
  'host-missing': right(
    'HTTP/1.1 upstream needs a Host (RFC 9112 §3.2): the host it connects to',
    'An HTTP/1.0 request may come without Host. Gangway speaks HTTP/1.1 upstream, where Host is required ' +
      '(RFC 9112 §3.2), and names the host it connects to; nginx, whose `$host` is then empty, sends none (it ' +
      'speaks HTTP/1.0 upstream).',
  ),
  'absolute-form': right(
    "the target's authority replaces Host (RFC 9112 §3.2.2), port included",
    "Both let the target's authority replace Host (RFC 9112 §3.2.2). Gangway forwards that authority as " +
      "named, port included; nginx's `$host` lower-cases it and drops the port.",
  ),
  'absolute-form-invalid': right(
    'names no http(s) origin (port over 65535, other scheme): 400, not guessed',
    'The target names no origin an HTTP gateway can serve: a port above 65535, or a scheme other than http(s) ' +
      '(RFC 9110 §4.2). Gangway refuses it with 400; nginx drops the bad port, or ignores the scheme, and forwards ' +
      'a request for another URI than the one asked for.',
  ),
  'target-long': right(
    "within `maxUriLength` (8192 B of target); nginx's 8 KiB holds the whole request line",
    "Gangway's limit (`server.maxUriLength`, 8192 B) is on the request target, as its 414 says; nginx's " +
      '(`large_client_header_buffers`, 8 KiB) is on the whole request line, method and version included, so nginx ' +
      'answers 414 a few bytes sooner. Beyond both limits both answer 414.',
  ),
  'upgrade-h2c-body': right(
    'Node leaves the body of a switching request unframed: 400, nothing forwarded',
    'A body on a request that asks to switch protocols: Node hands the connection over at the end of the header ' +
      'section, so what follows is not framed as a body, and Gangway refuses the request (400) rather than forward ' +
      'bytes it did not frame — no smuggling. nginx ignores `Upgrade` and forwards the request; RFC 7540 §3.2 ' +
      'allowed a body there, so a client that retries without `Upgrade: h2c` gets its 200.',
  ),
  'host-empty-label': right(
    'a name with an empty label is 400',
    'No DNS name has an empty label: Gangway refuses `.`, `..`, `.music.example` and `music..example` (400), so an ' +
      'origin that maps Host to a directory (`root /srv/$host`) cannot be walked ' +
      'out of; nginx refuses only some of them.',
  ),
  'host-empty': right(
    'an empty host is invalid (RFC 9110 §4.2.1)',
    'An http URI with an empty host is invalid and its recipient must reject ' +
      'it (RFC 9110 §4.2.1): Gangway answers 400.',
  ),
  'host-double-absolute': right(
    'two Host fields are 400 (RFC 9112 §3.2)',
    'Two Host fields are a 400 whatever the form of the target (RFC 9112 §3.2).',
  ),
  'absolute-form-bad-host-field': right(
    'an invalid Host field is 400 (RFC 9112 §3.2)',
    'A Host field with an invalid value is a 400 even when the absolute-form authority replaces it (RFC 9112 §3.2); ' +
      'nginx refuses only the values its own check refuses, and forwards the rest with the authority as Host.',
  ),
};

interface Row {
  cls: ProbeClass;
  request: string;
  gangway: string;
  nginx: string;
}

/** Long runs of one character shortened ("a×8184"), so that a row fits on a screen. */
function abbreviate(text: string): string {
  return text.replace(/(.)\1{39,}/g, (run, c: string) => `${c}×${run.length}`);
}

/** The request as a reader needs it: its lines in code, without our own framing fields. */
function describe(p: Probe): string {
  const end = p.raw.indexOf('\r\n\r\n');
  const lines = p.raw
    .slice(0, end)
    .split('\r\n')
    .filter((l) => l !== 'Connection: close');
  const body = p.raw.slice(end + 4);
  const after100 = p.awaitContinue ? ' after the 100' : '';
  return [...lines, ...(body ? [`body ${JSON.stringify(body)}${after100}`] : [])]
    .map((l) => `\`${abbreviate(l).replaceAll('|', '\\|')}\``)
    .join(' ');
}

/** Known ports (ours, the proxies', the upstreams') by name, so the table does not change with them. */
function portless(text: string): string {
  return text.replace(/:(\d{2,5})\b/g, (m, port: string) => {
    const name = portNames.get(Number(port));
    return name ? `:${name}` : m;
  });
}

function upstreamSaw(o: Outcome, method: string): string[] {
  return o.reached.map((a) => {
    // Node reads header bytes as latin1: show a non-ASCII Host as the client wrote it.
    const host =
      a.host === undefined
        ? 'no Host'
        : a.host === ''
          ? 'an empty Host'
          : `Host \`${abbreviate(Buffer.from(a.host, 'latin1').toString('utf8'))}\``;
    return portless(`${a.method === method ? '' : `${a.method} `}\`${abbreviate(a.url)}\` ${host}`);
  });
}

function cell(o: Outcome, method: string): string {
  const status = o.status === 0 ? 'no answer' : String(o.status);
  const saw = upstreamSaw(o, method);
  return saw.length === 0 ? `${status}, nothing upstream` : `${status}, upstream got ${saw.join(' and ')}`;
}

/** Two answers differ when their status classes differ or something else reached the upstream. */
function differs(g: Outcome, n: Outcome, method: string): boolean {
  return (
    Math.floor(g.status / 100) !== Math.floor(n.status / 100) ||
    upstreamSaw(g, method).join('\n') !== upstreamSaw(n, method).join('\n')
  );
}

const CLASS_ORDER = [...new Set(corpus.map((p) => p.cls))];

function differences(): Row[] {
  const rows: Row[] = [];
  for (const r of results) {
    const method = r.probe.raw.slice(0, r.probe.raw.indexOf(' '));
    if (!r.nginx || !differs(r.gangway, r.nginx, method)) continue;
    rows.push({
      cls: r.probe.cls,
      request: describe(r.probe),
      gangway: cell(r.gangway, method),
      nginx: cell(r.nginx, method),
    });
  }
  const order = (c: ProbeClass) => CLASS_ORDER.indexOf(c);
  return rows.sort(
    (a, b) => order(a.cls) - order(b.cls) || (a.request < b.request ? -1 : a.request > b.request ? 1 : 0),
  );
}

const REGENERATE = 'run UPDATE_DIFFERENTIAL=1 node --import tsx --test test/differential.test.ts';

const WHY_HEADER = "why Gangway's answer is right";
const WRONG_HEADER = "why Gangway's answer is wrong";

/** One row of the table: the reason's one line, "unexplained" when its class has none. */
function rowLine(r: Row, marked = false): string {
  const reason = REASONS[r.cls];
  const why = reason ? `${marked && reason.wrong ? 'WRONG: ' : ''}${reason.short}` : '**unexplained**';
  return `| ${r.request} | ${r.gangway} | ${r.nginx} | ${why} |`;
}

function renderTable(rows: Row[]): string {
  const byClass = new Map<ProbeClass, Row[]>();
  for (const row of rows) byClass.set(row.cls, [...(byClass.get(row.cls) ?? []), row]);
  const counts = CLASS_ORDER.map((cls) => {
    const n = corpus.filter((p) => p.cls === cls).length;
    return `| ${cls} | ${n} | ${byClass.get(cls)?.length ?? 0} |`;
  });
  const section = (wrongOnes: boolean) =>
    [...byClass]
      .filter(([cls]) => (REASONS[cls]?.wrong ?? false) === wrongOnes)
      .flatMap(([cls, classRows]) => [
        '',
        `### ${cls}`,
        '',
        REASONS[cls]!.why,
        '',
        `| request | Gangway | nginx | ${wrongOnes ? WRONG_HEADER : WHY_HEADER} |`,
        '|---|---|---|---|',
        ...classRows.map((r) => rowLine(r)),
      ]);
  const wrongOnes = section(true);
  return [
    `<!-- Generated by test/differential.test.ts: do not edit. To regenerate: ${REGENERATE.slice(4)} -->`,
    '',
    '# Gangway and nginx, request by request',
    '',
    `The differential check (\`test/differential.test.ts\`) sends ${corpus.length} hostile and odd requests, as raw`,
    'bytes, through Gangway and through nginx, each in front of its own recording upstream that answers 200 and',
    'records the method, target and Host of what reached it. Both route the prefix `/public` to the upstream and',
    'answer 404 to the rest: Gangway with `match: { path: "/public" }`, nginx with this server block (ports',
    'replaced by names):',
    '',
    '```nginx',
    nginxServerBlock('NGINX', 'UPSTREAM'),
    '```',
    '',
    'Below are the requests where the two differ: in the class of their status, or in what reached the',
    'upstream. Each class of request has one reason, written in the test, why Gangway answers as it does; a',
    "difference in a class without one fails the test. Gangway's own properties — nothing outside `/public`",
    'reaches its upstream, every path it forwards is in normal form, two Host fields get 400, no 5xx for a',
    "client's fault — are asserted whatever nginx does.",
    '',
    '| class | requests | differ |',
    '|---|---|---|',
    ...counts,
    '',
    "## Where Gangway's answer is right",
    ...section(false),
    '',
    ...(wrongOnes.length === 0
      ? []
      : [
          '## Where Gangway is wrong',
          '',
          'Each class below needs fixing in src/; a `todo` test in `test/differential.test.ts` holds the right answer.',
          ...wrongOnes,
          '',
        ]),
  ].join('\n');
}

/** Where two texts part, for a failure message that says what changed. */
function firstDifference(expected: string, actual: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const k = a.findIndex((line, i) => line !== b[i]);
  const at = k < 0 ? a.length : k;
  return `line ${at + 1}:\n  on disk:   ${b[at] ?? '(end of file)'}\n  this run:  ${a[at] ?? '(end of table)'}`;
}

test(
  'where Gangway and nginx differ, the difference has a reason; the table ' + 'is docs/differential.md',
  (t: TestContext) => {
    if (!NGINX) {
      if (process.env.CI === 'true') {
        assert.fail('nginx is not installed: under CI the differential check must run (.ci/run installs nginx-light)');
      }
      t.skip('nginx is not installed (apt-get install nginx-light): the comparison with nginx is skipped');
      return;
    }
    const rows = differences();
    t.diagnostic(`request | gangway | nginx | ${WHY_HEADER}`);
    for (const r of rows) t.diagnostic(rowLine(r, true).slice(2, -2));
    const unexplained = rows.filter((r) => REASONS[r.cls] === undefined);
    assert.deepEqual(
      unexplained.map((r) => `${r.cls}: ${r.request} — gangway ${r.gangway}; nginx ${r.nginx}`),
      [],
      'an unexplained difference: look at it, then give its class a reason in REASONS',
    );
    const generated = renderTable(rows);
    if (UPDATE) {
      writeFileSync(DOC, generated);
      t.diagnostic(`wrote docs/differential.md: ${rows.length} differences`);
      return;
    }
    const onDisk = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '';
    if (onDisk !== generated) {
      assert.fail(
        `docs/differential.md is not what this run found, ${firstDifference(generated, onDisk)}\n${REGENERATE}`,
      );
    }
  },
);
