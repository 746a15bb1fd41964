/**
 * `npm run bench:soak`: Gangway (the built CLI, its own process) in front of three origins
 * for SOAK_MINUTES (default 30), under steady mixed traffic from keep-alive clients — small
 * JSON answers, Range downloads and whole 2 MB streams of one file, small POSTs — while a
 * fault is injected every minute from a rotating list: an origin killed and restarted,
 * frozen with SIGSTOP, resetting its streams part way; 50 slow uploads; 50 slowloris heads;
 * a reload through the admin API and one by SIGHUP. Never more than one origin is faulty, so
 * a healthy host always exists. Every 10 s it samples Gangway's RSS and descriptors from
 * /proc; at the end it stops the traffic, counts the sockets left, and stops Gangway with
 * SIGTERM. What it answers: does memory stay flat, does any request a healthy host could have
 * served fail, does any socket leak. Not in CI: it takes half an hour. The report goes to
 * stdout and bench/results/soak.md; the exit code is 1 when a target is missed.
 *
 * The origins are this file run as a child (`soak.ts origin PORT NAME`), because the stream
 * reset must be switched on and off in a running origin (an IPC message), not at its start.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { machine, waitForPort } from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
/** Requests per second of the steady traffic, open loop. */
const RATE = Number(process.env.SOAK_RATE ?? 150);
/** Seconds between two faults (60 in the real run; shorter only to try the rotation quickly). */
const FAULT_EVERY_S = Number(process.env.SOAK_FAULT_EVERY_S ?? 60);
const DURATION_MS = MINUTES * 60_000;
/** Memory is judged after this: JIT, pools and buffers have reached their working size. */
const WARMUP_MS = Math.min(300_000, Math.max(30_000, DURATION_MS / 6));
/** Growth compares the median of the first and of the last window after warm-up. */
const WINDOW_MS = Math.min(300_000, (DURATION_MS - WARMUP_MS) / 3);
const SAMPLE_EVERY_MS = 10_000;
/** Longer than Gangway's response timeout (10 s), so its own answer arrives before we give up. */
const CLIENT_TIMEOUT_MS = 15_000;
/** A failure this long after a fault healed is still put down to it (in the report only). */
const GRACE_MS = 5_000;
/** Requests in flight beyond which the generator stops sending (and counts what it skipped). */
const MAX_IN_FLIGHT = 1_000;
const HOSTILE_CLIENTS = 50;
const DRAIN_TIMEOUT_MS = 30_000;

const LISTEN_PORT = 18_480;
const ADMIN_PORT = 18_481;
const ORIGIN_PORTS = [18_490, 18_491, 18_492];
const BASE = `http://127.0.0.1:${LISTEN_PORT}`;
const ADMIN = `http://127.0.0.1:${ADMIN_PORT}`;

const BLOB_SIZE = 2_000_000;
/** Responses of /blob at least this long are reset part way while an origin is "cutting". */
const CUT_MIN = 128 * 1024;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The 2 MB file every origin serves: the same bytes everywhere, so a resumed stream can be checked. */
function makeBlob(): Buffer {
  const b = Buffer.alloc(BLOB_SIZE);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}

// --- The origin (a child process) ---------------------------------------------------------------

function catalogueEntry(id: number): string {
  const tracks = Array.from({ length: 3 + (id % 10) }, (_, n) => ({
    n: n + 1,
    title: `Track ${n + 1} of album ${id}`,
    seconds: 120 + ((id * 7 + n * 13) % 240),
  }));
  return JSON.stringify({ id, title: `Album ${id}`, artist: `Artist ${id % 97}`, year: 1960 + (id % 60), tracks });
}

function runOrigin(port: number, name: string): void {
  const blob = makeBlob();
  const etag = `"${createHash('sha256').update(blob).digest('hex').slice(0, 16)}"`;
  let cutting = false;
  process.on('message', (m: { cut?: boolean }) => {
    cutting = m.cut === true;
    process.send?.({ cutting });
  });
  process.on('disconnect', () => process.exit(0)); // the bench is gone: so are we
  createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url === '/orders') {
      const hash = createHash('sha256');
      let received = 0;
      req.on('data', (c: Buffer) => {
        received += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        const body = JSON.stringify({ received, sha256: hash.digest('hex'), host: name });
        res.writeHead(201, { 'content-type': 'application/json', 'x-host': name });
        res.end(body);
      });
      return;
    }
    req.resume();
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (url.startsWith('/catalogue/')) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-host': name, 'cache-control': 'max-age=60' });
      res.end(catalogueEntry(Number(url.slice('/catalogue/'.length))));
      return;
    }
    if (url !== '/blob') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not here\n');
      return;
    }
    let [start, end, status] = [0, BLOB_SIZE - 1, 200];
    const headers: Record<string, string> = {
      etag,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'x-host': name,
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag)) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), BLOB_SIZE - 1) : end;
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${BLOB_SIZE}`;
    }
    headers['content-length'] = String(end - start + 1);
    res.writeHead(status, headers);
    const part = blob.subarray(start, end + 1);
    if (!cutting || part.length < CUT_MIN) {
      res.end(part);
      return;
    }
    // Part of the body, then a TCP reset: the stream breaks as a crashing process's would.
    res.write(part.subarray(0, Math.floor(part.length * 0.4)), () =>
      setTimeout(() => res.socket?.resetAndDestroy(), 5),
    );
  }).listen(port, '127.0.0.1', () => process.send?.('ready'));
}

// --- Processes the bench runs ------------------------------------------------------------------------

type OriginState = 'ok' | 'killed' | 'frozen' | 'cutting';

interface Origin {
  name: string;
  port: number;
  child: ChildProcess;
  state: OriginState;
}

function forkOrigin(port: number, name: string): Promise<ChildProcess> {
  const child = fork(SELF, ['origin', String(port), name], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`origin ${name} did not start within 20 s`));
    }, 20_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`origin ${name} exited (${code ?? signal}) before it was ready`));
    });
  });
}

function exited(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: string | null } | undefined> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Every process this bench started, so that each can be ended by its own PID whatever happens. */
const started = new Set<ChildProcess>();

function endAll(): void {
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function gatewayConfig(generation: number): string {
  const hosts = ORIGIN_PORTS.map((p) => `"127.0.0.1:${p}"`).join(', ');
  return `# Written by bench/soak.ts; generation ${generation} (each reload rewrites this file).
listen: "127.0.0.1:${LISTEN_PORT}"
admin: "127.0.0.1:${ADMIN_PORT}"
status: { path: "/status" }
log: { access: true, pretty: false }
server: { drainTimeout: "${DRAIN_TIMEOUT_MS / 1000}s" }
upstreams:
  app:
    hosts: [${hosts}]
    healthCheck: { path: "/healthz", interval: "500ms", timeout: "300ms" }
routes:
  - { name: catalogue, match: { path: "/catalogue" }, upstream: app }
  - { name: blob, match: { path: "/blob", methods: ["GET", "HEAD"] }, upstream: app }
  - { name: orders, match: { path: "/orders", methods: ["POST"] }, upstream: app }
`;
}

// --- What Gangway holds: /proc ------------------------------------------------------------------------

interface Descriptors {
  fds: number;
  /** Descriptors that are not sockets: files, pipes, eventfds, epoll. */
  other: number;
  /** Accepted connections on the proxy listener, i.e. sockets to clients. */
  clients: number;
  /** Connections to the origins (keep-alive pools and health checks). */
  upstream: number;
  /** Accepted connections on the admin listener (this bench's scrapes). */
  admin: number;
  listening: number;
  /** Sockets in CLOSE_WAIT: the peer closed, Gangway has not. */
  closeWait: number;
  /** Socket descriptors not found among TCP sockets (unix sockets, or gone between the two reads). */
  otherSockets: number;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

/**
 * Gangway's descriptors, its sockets told apart by their TCP endpoints: the socket inodes of
 * /proc/PID/fd joined with /proc/PID/net/tcp (which lists every TCP socket of the network
 * namespace, so only the inodes Gangway holds count).
 */
function descriptors(pid: number): Descriptors {
  const inodes = new Set<string>();
  let fds = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds++;
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed between the two reads */
    }
  }
  const d: Descriptors = {
    fds,
    other: fds - inodes.size,
    clients: 0,
    upstream: 0,
    admin: 0,
    listening: 0,
    closeWait: 0,
    otherSockets: 0,
  };
  let matched = 0;
  const origins = new Set(ORIGIN_PORTS);
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      matched++;
      const localPort = Number.parseInt(f[1]!.split(':')[1]!, 16);
      const remotePort = Number.parseInt(f[2]!.split(':')[1]!, 16);
      const state = f[3]!;
      if (state === '08') d.closeWait++;
      if (state === '0A') d.listening++;
      else if (localPort === LISTEN_PORT) d.clients++;
      else if (localPort === ADMIN_PORT) d.admin++;
      else if (origins.has(remotePort)) d.upstream++;
      else d.otherSockets++;
    }
  }
  d.otherSockets += inodes.size - matched;
  return d;
}

// --- The steady traffic ----------------------------------------------------------------------------------

type Kind = 'catalogue' | 'range' | 'stream' | 'order';
type Outcome =
  | 'ok'
  | 'gateway_5xx'
  | 'other_status'
  | 'bad_body'
  | 'client_timeout'
  | 'connection_error'
  | 'cut_mid_body';

const OUTCOMES: Outcome[] = [
  'ok',
  'gateway_5xx',
  'other_status',
  'bad_body',
  'cut_mid_body',
  'client_timeout',
  'connection_error',
];
const OUTCOME_TEXT: Record<Outcome, string> = {
  ok: '2xx with the exact expected body',
  gateway_5xx: 'gateway-made 5xx (Proxy-Status error token)',
  other_status: 'other status (not 2xx, not a gateway-made 5xx)',
  bad_body: '2xx with a wrong or short body',
  cut_mid_body: 'connection broke after the headers',
  client_timeout: `client timeout (${CLIENT_TIMEOUT_MS / 1000} s)`,
  connection_error: 'connection error before the headers',
};

interface Failure {
  id: string;
  kind: Kind;
  at: number;
  ms: number;
  outcome: Outcome;
  detail: string;
  /** Origins not under a fault when the request was sent (or when it ended, if fewer). */
  healthy: number;
  fault: string;
  /** The origin under a fault when it was sent or ended, as Gangway names hosts (ADDRESS:PORT). */
  faulted: string[];
}

/** A small deterministic generator, so two runs send the same mix. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Traffic {
  readonly agent = new Agent({ connections: 64, keepAliveTimeout: 4_000, pipelining: 1 });
  readonly counts = new Map<string, number>();
  readonly byKind = new Map<Kind, Map<Outcome, number>>();
  readonly failures: Failure[] = [];
  readonly gatewayTokens = new Map<string, number>();
  inFlight = 0;
  done = 0;
  failed = 0;
  notSent = 0;
  /** Latencies of the current sampling interval, for its p99. */
  latencies: number[] = [];
  private readonly random = mulberry32(1);
  private readonly blob = makeBlob();
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(
    private readonly clock: () => number,
    private readonly faultNow: () => { name: string; healthy: number; faulted: string | undefined },
  ) {}

  start(): void {
    const t0 = performance.now();
    let sent = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
      for (; sent < due; sent++) {
        if (this.inFlight >= MAX_IN_FLIGHT) this.notSent++;
        else void this.one();
      }
    }, 10);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private pick(): Kind {
    const r = this.random();
    if (r < 0.7) return 'catalogue';
    if (r < 0.82) return 'range';
    if (r < 0.85) return 'stream';
    return 'order';
  }

  private async one(): Promise<void> {
    const kind = this.pick();
    const id = `soak-${++this.next}`;
    const at = this.clock();
    const { name: fault, healthy, faulted } = this.faultNow();
    this.inFlight++;
    const t = performance.now();
    const r = await this.exchange(kind, id);
    const ms = performance.now() - t;
    this.inFlight--;
    this.done++;
    this.latencies.push(ms);
    const byOutcome = this.byKind.get(kind) ?? new Map<Outcome, number>();
    this.byKind.set(kind, byOutcome);
    byOutcome.set(r.outcome, (byOutcome.get(r.outcome) ?? 0) + 1);
    if (r.outcome === 'gateway_5xx') this.gatewayTokens.set(r.detail, (this.gatewayTokens.get(r.detail) ?? 0) + 1);
    if (r.outcome === 'ok') return;
    this.failed++;
    // The fault in force when it ended matters as much as the one when it started.
    const end = this.faultNow();
    this.failures.push({
      id,
      kind,
      at,
      ms,
      outcome: r.outcome,
      detail: r.detail,
      healthy: Math.min(healthy, end.healthy),
      fault: fault === end.name ? fault : `${fault} → ${end.name}`,
      faulted: [faulted, end.faulted].filter((a) => a !== undefined),
    });
  }

  private async exchange(kind: Kind, id: string): Promise<{ outcome: Outcome; detail: string }> {
    const signal = AbortSignal.timeout(CLIENT_TIMEOUT_MS);
    const headers: Record<string, string> = { 'x-request-id': id };
    let path: string;
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    let first = 0;
    let last = BLOB_SIZE - 1;
    let catalogueId = 0;
    if (kind === 'catalogue') {
      catalogueId = Math.floor(this.random() * 10_000);
      path = `/catalogue/${catalogueId}`;
    } else if (kind === 'range') {
      const length = 64 * 1024 + Math.floor(this.random() * 448 * 1024);
      first = Math.floor(this.random() * (BLOB_SIZE - length));
      last = first + length - 1;
      headers.range = `bytes=${first}-${last}`;
      path = '/blob';
    } else if (kind === 'stream') {
      path = '/blob';
    } else {
      method = 'POST';
      path = '/orders';
      body = JSON.stringify({ order: id, items: 'x'.repeat(1024 + Math.floor(this.random() * 7 * 1024)) });
      headers['content-type'] = 'application/json';
    }
    let headersSeen = false;
    try {
      const res = await request(`${BASE}${path}`, { dispatcher: this.agent, method, headers, body, signal });
      headersSeen = true;
      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump();
        const ps = String(res.headers['proxy-status'] ?? '');
        const token = /(?:^|,)\s*gangway;[^,]*\berror=("?)([^;,"]+)\1/.exec(ps)?.[2];
        if (res.statusCode >= 500 && token !== undefined) return { outcome: 'gateway_5xx', detail: token };
        return { outcome: 'other_status', detail: `${res.statusCode}${token ? ` ${token}` : ''}` };
      }
      if (kind === 'catalogue' || kind === 'order') {
        const text = await res.body.text();
        if (kind === 'catalogue') {
          return text === catalogueEntry(catalogueId)
            ? { outcome: 'ok', detail: '' }
            : { outcome: 'bad_body', detail: `catalogue entry of ${text.length} bytes differs` };
        }
        let answer: { received?: number; sha256?: string } = {};
        try {
          answer = JSON.parse(text) as typeof answer;
        } catch {
          /* judged below: nothing matches */
        }
        const expected = createHash('sha256').update(body!).digest('hex');
        return answer.received === body!.length && answer.sha256 === expected
          ? { outcome: 'ok', detail: '' }
          : { outcome: 'bad_body', detail: `origin received ${answer.received} of ${body!.length} bytes` };
      }
      const wantStatus = kind === 'range' ? 206 : 200;
      let offset = first;
      let same = res.statusCode === wantStatus;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (same && !chunk.equals(this.blob.subarray(offset, offset + chunk.length))) same = false;
        offset += chunk.length;
      }
      if (!same || offset !== last + 1)
        return {
          outcome: 'bad_body',
          detail: `status ${res.statusCode}, bytes ${first}-${offset - 1} of ${first}-${last}${same ? '' : ', content differs'}`,
        };
      return { outcome: 'ok', detail: '' };
    } catch (err) {
      if (signal.aborted)
        return { outcome: 'client_timeout', detail: headersSeen ? 'while reading the body' : 'before the headers' };
      const e = err as NodeJS.ErrnoException;
      return {
        outcome: headersSeen ? 'cut_mid_body' : 'connection_error',
        detail: `${e.code ?? e.name}: ${e.message}`.slice(0, 120),
      };
    }
  }
}

// --- Injected clients: slow uploads and slowloris --------------------------------------------------------

/**
 * `count` raw clients that each send one byte a second for `ms`: slow uploads declare a
 * 1 MiB body and trickle it; slowloris clients trickle the request head itself. Says what
 * Gangway did with them: answered (with which status) and closed, or left open until we left.
 */
async function hostileClients(kind: 'slow-upload' | 'slowloris', count: number, ms: number): Promise<string> {
  const t0 = performance.now();
  const closedAt: number[] = [];
  const answers = new Map<string, number>();
  const sockets: Array<{ socket: Socket; sent: number; ours: boolean }> = [];
  const head =
    kind === 'slow-upload'
      ? `POST /orders HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: ` +
        `${1024 * 1024}\r\n\r\n`
      : `GET /catalogue/1 HTTP/1.1\r\nHost: soak\r\nUser-Agent: slowloris\r\nX-Padding: ${'a'.repeat(4096)}`;
  for (let i = 0; i < count; i++) {
    const socket = connect(LISTEN_PORT, '127.0.0.1');
    const entry = { socket, sent: 0, ours: false };
    let received = '';
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => {
      if (received.length < 64) received += c.toString('latin1');
    });
    socket.on('close', () => {
      if (entry.ours) return;
      closedAt.push(performance.now() - t0);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 'no answer';
      answers.set(status, (answers.get(status) ?? 0) + 1);
    });
    if (kind === 'slow-upload') socket.write(head);
    sockets.push(entry);
  }
  const trickle = setInterval(() => {
    for (const s of sockets) {
      if (s.socket.destroyed) continue;
      s.socket.write(kind === 'slow-upload' ? 'x' : head[s.sent % head.length]!);
      s.sent++;
    }
  }, 1000);
  await sleep(ms);
  clearInterval(trickle);
  let open = 0;
  for (const s of sockets) {
    if (s.socket.destroyed) continue;
    open++;
    s.ours = true;
    s.socket.destroy();
  }
  closedAt.sort((a, b) => a - b);
  const closed = closedAt.length;
  const when =
    closed === 0 ? '' : ` after ${(closedAt[0]! / 1000).toFixed(1)}–${(closedAt[closed - 1]! / 1000).toFixed(1)} s`;
  const how = [...answers].map(([s, n]) => `${n}× ${s}`).join(', ');
  return (
    `${count} clients for ${ms / 1000} s: ${closed} closed by the gateway${when}${how ? ` (${how})` : ''}; ` +
    `${open} still open when the bench closed them`
  );
}

// --- Faults ------------------------------------------------------------------------------------------

type FaultName = 'kill' | 'freeze' | 'reset' | 'slow uploads' | 'slowloris' | 'reload';
const ROTATION: FaultName[] = ['kill', 'freeze', 'reset', 'slow uploads', 'slowloris', 'reload'];

interface FaultWindow {
  n: number;
  name: FaultName;
  target: string;
  start: number;
  healed: number;
  note: string;
}

// --- Samples and statistics -------------------------------------------------------------------------

interface Sample {
  t: number;
  rssKiB: number;
  heapMiB: number;
  /** Memory outside the JS heap that V8 knows of: mostly ArrayBuffers (socket reads, bodies). */
  externalMiB: number;
  d: Descriptors;
  inRotation: number;
  done: number;
  failed: number;
  p99: number;
  fault: string;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const mib = (kib: number) => (kib / 1024).toFixed(1);
const secs = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

async function adminJson(agent: Agent, path: string): Promise<unknown> {
  const res = await request(`${ADMIN}${path}`, { dispatcher: agent, signal: AbortSignal.timeout(2_000) });
  return res.body.json();
}

async function adminText(agent: Agent, path: string): Promise<string> {
  const res = await request(`${ADMIN}${path}`, { dispatcher: agent, signal: AbortSignal.timeout(2_000) });
  return res.body.text();
}

function metricValue(metrics: string, name: string): number {
  const m = new RegExp(`^${name} ([\\d.e+-]+)`, 'm').exec(metrics);
  return Number(m?.[1] ?? NaN);
}

/** Lines of a Prometheus text exposition for these metric names, with a value other than zero. */
function metricLines(metrics: string, names: string[]): string[] {
  return metrics
    .split('\n')
    .filter((l) => names.some((n) => l.startsWith(`${n}{`) || l.startsWith(`${n} `)) && !/ 0$/.test(l));
}

// --- Gangway's log --------------------------------------------------------------------------------------

interface LogSummary {
  accessLines: number;
  /** Access lines with a failure kind, by Proxy-Status token. */
  failuresLogged: Map<string, number>;
  /** Further attempts on another host (retries and hedges), by reason. */
  retries: Map<string, number>;
  resumed: number;
  /** Other lines by level and message. */
  events: Map<string, { count: number; first: string }>;
  /** The access line of each failed request of the steady traffic, by request id. */
  byId: Map<string, Record<string, unknown>>;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

async function readLog(file: string, ids: Set<string>): Promise<LogSummary> {
  const s: LogSummary = {
    accessLines: 0,
    failuresLogged: new Map(),
    retries: new Map(),
    resumed: 0,
    events: new Map(),
    byId: new Map(),
  };
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })) {
    if (line.endsWith('"msg":"request"}')) {
      s.accessLines++;
      const retries = /"retries":\[([^\]]*)\]/.exec(line)?.[1];
      if (retries !== undefined)
        for (const r of JSON.parse(`[${retries}]`) as string[]) s.retries.set(r, (s.retries.get(r) ?? 0) + 1);
      if (line.includes('"resumed":')) s.resumed++;
      const token = /"proxy_status_error":"([^"]+)"/.exec(line)?.[1];
      if (token !== undefined) s.failuresLogged.set(token, (s.failuresLogged.get(token) ?? 0) + 1);
      const id = /"req_id":"(soak-\d+)"/.exec(line)?.[1];
      if (id !== undefined && ids.has(id)) s.byId.set(id, JSON.parse(line) as Record<string, unknown>);
      continue;
    }
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      entry = { level: 0, msg: line.slice(0, 100) };
    }
    const key = `${LEVELS[entry.level as number] ?? entry.level} ${String(entry.msg)}`;
    const e = s.events.get(key);
    if (e) e.count++;
    else {
      const { level: _l, time: _t, msg: _m, ...rest } = entry;
      s.events.set(key, { count: 1, first: JSON.stringify(rest).slice(0, 200) });
    }
  }
  return s;
}

// --- The run ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (!(MINUTES >= 1) || !(RATE > 0) || !(FAULT_EVERY_S >= 20))
    throw new Error('SOAK_MINUTES ≥ 1, SOAK_RATE > 0 and SOAK_FAULT_EVERY_S ≥ 20, please');
  const work = mkdtempSync(join(tmpdir(), 'gangway-soak-'));
  const configFile = join(work, 'gangway.yaml');
  const logFile = join(work, 'gangway.log');
  const errFile = join(work, 'gangway.stderr');
  let generation = 0;
  writeFileSync(configFile, gatewayConfig(generation));
  const out = (s: string) => process.stdout.write(s);
  out(`Machine: ${machine()}\n`);
  out(
    `Soak: ${MINUTES} min, ${RATE} req/s, a fault every ${FAULT_EVERY_S} s, ` +
      `warm-up ${secs(WARMUP_MS)}, growth windows ${secs(WINDOW_MS)}; work files ` +
      `in ${work}\n\n`,
  );

  const origins: Origin[] = [];
  for (const [i, port] of ORIGIN_PORTS.entries()) {
    const child = await forkOrigin(port, `h${i}`);
    started.add(child);
    origins.push({ name: `h${i}`, port, child, state: 'ok' });
  }
  const logFd = openSync(logFile, 'w');
  const errFd = openSync(errFile, 'w');
  const gateway = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '-c', configFile], {
    stdio: ['ignore', logFd, errFd],
  });
  started.add(gateway);
  closeSync(logFd);
  closeSync(errFd);
  const pid = gateway.pid!;
  await waitForPort(LISTEN_PORT);
  await waitForPort(ADMIN_PORT);
  await sleep(1_500); // health checks have seen every host

  const t0 = performance.now();
  const clock = () => performance.now() - t0;
  let current: FaultWindow | undefined;
  const windows: FaultWindow[] = [];
  const faultNow = () => {
    const faulty = origins.find((o) => o.state !== 'ok');
    return {
      name: current ? `${current.name}${current.target ? ` ${current.target}` : ''}` : '–',
      healthy: origins.filter((o) => o.state === 'ok').length,
      faulted: faulty && `127.0.0.1:${faulty.port}`,
    };
  };
  const traffic = new Traffic(clock, faultNow);
  const adminAgent = new Agent({ connections: 1, keepAliveTimeout: 4_000 });

  const samples: Sample[] = [];
  const sample = async (): Promise<Sample> => {
    if (gateway.exitCode !== null || gateway.signalCode !== null)
      throw new Error(
        `Gangway exited during the soak (${gateway.exitCode ?? gateway.signalCode}): ` +
          `${readFileSync(errFile, 'utf8').slice(0, 2000)}`,
      );
    let heapMiB = NaN;
    let externalMiB = NaN;
    let inRotation = NaN;
    try {
      const metrics = await adminText(adminAgent, '/metrics');
      heapMiB = metricValue(metrics, 'gangway_nodejs_heap_size_used_bytes') / 2 ** 20;
      externalMiB = metricValue(metrics, 'gangway_nodejs_external_memory_bytes') / 2 ** 20;
      const status = (await adminJson(adminAgent, '/api/status')) as {
        upstreams: Array<{ hosts: Array<{ state: string }> }>;
      };
      inRotation = status.upstreams[0]!.hosts.filter((h) => h.state === 'in_rotation').length;
    } catch {
      /* the sample says NaN */
    }
    const lat = traffic.latencies;
    traffic.latencies = [];
    return {
      t: clock(),
      rssKiB: rssKiB(pid),
      heapMiB,
      externalMiB,
      d: descriptors(pid),
      inRotation,
      done: traffic.done,
      failed: traffic.failed,
      p99: percentile(lat, 99),
      fault: faultNow().name,
    };
  };
  const printSample = (s: Sample) =>
    out(
      `  ${secs(s.t).padStart(6)}  RSS ${mib(s.rssKiB).padStart(6)} MiB  heap ` +
        `${s.heapMiB.toFixed(1).padStart(5)} MiB  external ${s.externalMiB.toFixed(1).padStart(5)} ` +
        `MiB  fds ${String(s.d.fds).padStart(4)} (clients ${s.d.clients}, upstream ` +
        `${s.d.upstream}, other ${s.d.other})  in rotation ${s.inRotation}  requests ` +
        `${s.done} failed ${s.failed}  p99 ${Number.isNaN(s.p99) ? '–' : s.p99.toFixed(0)} ` +
        `ms  fault ${s.fault}\n`,
    );

  // Bounded whatever happens: past this, everything started is ended.
  const hardStop = setTimeout(() => {
    out('\nsoak: hard deadline reached; ending every process this bench started\n');
    endAll();
    process.exit(1);
  }, DURATION_MS + 180_000);
  hardStop.unref();

  // The nth fault's origin: each kind of origin fault moves on to the next origin every round.
  const origin = (n: number) => origins[(n + Math.floor(n / ROTATION.length)) % origins.length]!;
  const injectors: Record<FaultName, (w: FaultWindow, length: number) => Promise<void>> = {
    async kill(w, length) {
      const o = origin(w.n);
      w.target = o.name;
      o.state = 'killed';
      o.child.kill('SIGKILL');
      await exited(o.child, 5_000);
      await sleep(length);
      o.child = await forkOrigin(o.port, o.name);
      started.add(o.child);
      o.state = 'ok';
      w.note = `SIGKILL, restarted after ${secs(length)}`;
    },
    async freeze(w, length) {
      const o = origin(w.n);
      w.target = o.name;
      o.state = 'frozen';
      process.kill(o.child.pid!, 'SIGSTOP');
      await sleep(length);
      process.kill(o.child.pid!, 'SIGCONT');
      o.state = 'ok';
      w.note = `SIGSTOP for ${secs(length)}, then SIGCONT`;
    },
    async reset(w, length) {
      const o = origin(w.n);
      w.target = o.name;
      const switched = (cut: boolean) =>
        new Promise<void>((resolve) => {
          o.child.once('message', () => resolve());
          o.child.send({ cut });
        });
      o.state = 'cutting';
      await switched(true);
      await sleep(length);
      await switched(false);
      o.state = 'ok';
      w.note = `/blob answers of ${CUT_MIN / 1024} KiB and more reset at 40% for ${secs(length)}`;
    },
    async 'slow uploads'(w, length) {
      w.note = await hostileClients('slow-upload', HOSTILE_CLIENTS, length);
    },
    async slowloris(w, length) {
      w.note = await hostileClients('slowloris', HOSTILE_CLIENTS, length);
    },
    async reload(w, length) {
      writeFileSync(configFile, gatewayConfig(++generation));
      const res = await request(`${ADMIN}/api/reload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        dispatcher: adminAgent,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.body.text();
      let answer = text.trim();
      try {
        answer = JSON.stringify(JSON.parse(text));
      } catch {
        /* not JSON: as it came */
      }
      await sleep(length / 2);
      writeFileSync(configFile, gatewayConfig(++generation));
      process.kill(pid, 'SIGHUP');
      await sleep(length / 2);
      w.note = `POST /api/reload → ${res.statusCode} ${answer}; SIGHUP ${secs(length / 2)} later`;
    },
  };
  const lengths: Record<FaultName, number> = {
    kill: 10_000,
    freeze: 15_000,
    reset: 30_000,
    'slow uploads': 30_000,
    slowloris: 30_000,
    reload: 10_000,
  };

  const injectFaults = async (): Promise<void> => {
    for (let n = 0; ; n++) {
      const at = (n + 1) * FAULT_EVERY_S * 1000;
      const name = ROTATION[n % ROTATION.length]!;
      // Each fault heals well before the next, so never more than one origin is faulty.
      const length = Math.min(lengths[name], FAULT_EVERY_S * 1000 - 10_000);
      if (at + length + 10_000 > DURATION_MS) return;
      await sleep(at - clock());
      const w: FaultWindow = { n, name, target: '', start: clock(), healed: NaN, note: '' };
      current = w;
      windows.push(w);
      out(`  ${secs(w.start).padStart(6)}  fault ${w.n + 1}: ${name}\n`);
      try {
        await injectors[name](w, length);
      } catch (err) {
        w.note = `the injection failed: ${(err as Error).message}`;
      }
      w.healed = clock();
      current = undefined;
      out(`  ${secs(w.healed).padStart(6)}  healed: ${name} ${w.target} — ${w.note}\n`);
      // An origin that could not be brought back ends the faults: a second one must never fail.
      if (origins.some((o) => o.state !== 'ok')) {
        out('  no more faults: an origin is still faulty\n');
        return;
      }
    }
  };

  let exit: { code: number | null; signal: string | null } | undefined;
  let exitMs = NaN;
  let finalMetrics = '';
  let atEnd: Descriptors | undefined;
  let drained = true;
  try {
    samples.push(await sample());
    printSample(samples[0]!);
    traffic.start();
    const faults = injectFaults();
    const sampler = (async () => {
      for (let k = 1; k * SAMPLE_EVERY_MS <= DURATION_MS; k++) {
        await sleep(k * SAMPLE_EVERY_MS - clock());
        const s = await sample();
        samples.push(s);
        printSample(s);
      }
    })();
    await Promise.all([faults, sampler]);
    traffic.stop();

    // The end: let the last requests finish, close every client, then see what Gangway still holds.
    const deadline = performance.now() + CLIENT_TIMEOUT_MS + 5_000;
    while (traffic.inFlight > 0 && performance.now() < deadline) await sleep(100);
    drained = traffic.inFlight === 0;
    await traffic.agent.close();
    finalMetrics = await adminText(adminAgent, '/metrics').catch(() => '');
    await adminAgent.close();
    await sleep(6_000); // beyond Gangway's client keep-alive (5 s) and its upstream idle timeout (4 s)
    atEnd = descriptors(pid);
    out(
      `\n  end, 6 s after the last client left: fds ${atEnd.fds} (clients ${atEnd.clients}, ` +
        `upstream ${atEnd.upstream}, admin ${atEnd.admin}, listening ${atEnd.listening}, ` +
        `close-wait ${atEnd.closeWait}, other sockets ${atEnd.otherSockets}, other ` +
        `fds ${atEnd.other})\n`,
    );
    const termAt = performance.now();
    gateway.kill('SIGTERM');
    exit = await exited(gateway, DRAIN_TIMEOUT_MS + 5_000);
    exitMs = performance.now() - termAt;
  } finally {
    traffic.stop();
    for (const o of origins) if (o.state === 'frozen') process.kill(o.child.pid!, 'SIGCONT');
    for (const o of origins) o.child.kill('SIGTERM');
    await Promise.all(origins.map((o) => exited(o.child, 5_000)));
    endAll();
    clearTimeout(hardStop);
  }

  // --- The report ---
  const afterWarmup = samples.find((s) => s.t >= WARMUP_MS) ?? samples[samples.length - 1]!;
  const steady = samples.filter((s) => s.t >= WARMUP_MS);
  const firstWindow = steady.filter((s) => s.t < afterWarmup.t + WINDOW_MS);
  const lastWindow = steady.filter((s) => s.t > DURATION_MS - WINDOW_MS);
  const growth = (pick: (s: Sample) => number) =>
    (median(lastWindow.map(pick)) / median(firstWindow.map(pick)) - 1) * 100;
  const rssGrowth = growth((s) => s.rssKiB);
  const series = (label: string, pick: (s: Sample) => number, fmt: (v: number) => string) => {
    const v = steady.map(pick);
    return (
      `| ${label} | ${fmt(Math.min(...v))} | ${fmt(median(v))} | ${fmt(Math.max(...v))} ` +
      `| ${fmt(median(firstWindow.map(pick)))} | ${fmt(median(lastWindow.map(pick)))} ` +
      `| ${growth(pick).toFixed(1)}% |`
    );
  };

  const log = await readLog(logFile, new Set(traffic.failures.map((f) => f.id)));
  const stderr = readFileSync(errFile, 'utf8').trim();
  const reloadsLogged = log.events.get('info configuration reloaded')?.count ?? 0;
  const reloadsSent = windows.filter((w) => w.name === 'reload').length * 2;

  const couldHaveServed = traffic.failures.filter((f) => f.healthy >= 1);
  // POSTs Gangway had already sent to the origin that then died or froze: it may not send them
  // again (the origin may have processed them), so only a faster verdict could have helped.
  const postsOnFaulted = couldHaveServed.filter((f) => {
    const host = log.byId.get(f.id)?.host;
    return f.kind === 'order' && typeof host === 'string' && f.faulted.includes(host);
  });
  // Leaks: after every client left and the idle timeouts passed, Gangway should hold no socket
  // to a client, no admin connection, nothing in CLOSE_WAIT, and at most one connection per
  // origin (the health checks', every 500 ms, kept alive between checks).
  const end = atEnd ?? descriptors(pid);
  const upstreamBeyondChecks = Math.max(0, end.upstream - ORIGIN_PORTS.length);
  const leaked = end.clients + end.admin + upstreamBeyondChecks + end.closeWait;
  const totals = new Map<Outcome, number>();
  for (const m of traffic.byKind.values()) for (const [o, n] of m) totals.set(o, (totals.get(o) ?? 0) + n);
  const total = traffic.done;
  const pct = (n: number) => `${((100 * n) / Math.max(1, total)).toFixed(3)}%`;

  const lines: string[] = [];
  const p = (s = '') => lines.push(s);
  p('# Soak — `npm run bench:soak`');
  p();
  p(`Machine: ${machine()}`);
  p(
    `Command: ${MINUTES === 30 ? '' : `SOAK_MINUTES=${MINUTES} `}` +
      `${FAULT_EVERY_S === 60 ? '' : `SOAK_FAULT_EVERY_S=${FAULT_EVERY_S} `}` +
      `${RATE === 150 ? '' : `SOAK_RATE=${RATE} `}npm ` +
      `run bench:soak — ${MINUTES} min of ${RATE} req/s (open loop, keep-alive, ` +
      `client timeout ${CLIENT_TIMEOUT_MS / 1000} s: 70% small JSON GETs, 12% ` +
      `Range GETs of 64–512 KiB, 3% whole 2 MB streams, 15% POSTs of 1–8 KiB) ` +
      `through Gangway (dist/cli.js, 3 origins, health checks every 500 ms) with ` +
      `a fault every ${FAULT_EVERY_S} s; warm-up ${secs(WARMUP_MS)}, growth windows ` +
      `${secs(WINDOW_MS)}`,
  );
  p();
  p('## Verdict');
  p();
  p(`- RSS growth ${rssGrowth.toFixed(1)}% (target < 10%)`);
  p(
    `- failed requests a healthy host could have served: ${couldHaveServed.length} ` +
      '(target 0)' +
      (postsOnFaulted.length > 0
        ? ` — of which ${postsOnFaulted.length} POSTs already sent to the origin under a fault, ` +
          'which Gangway may not send again'
        : ''),
  );
  p(`- leaked sockets: ${leaked} (target 0)`);
  p(
    `- SIGTERM: ${
      exit
        ? `exited with ${exit.code ?? exit.signal} after ${(exitMs / 1000).toFixed(1)} s`
        : `still running after ${(DRAIN_TIMEOUT_MS + 5_000) / 1000} s (killed)`
    } ` + `(drain timeout ${DRAIN_TIMEOUT_MS / 1000} s; target: 0 within it)`,
  );
  p();
  p(
    '"Failed requests a healthy host could have served" counts every request ' +
      'of the steady traffic (well-behaved clients only: the injected slow-upload ' +
      'and slowloris clients are not part of it) that did not end in a 2xx with ' +
      'the exact expected body — gateway-made 5xx, other statuses, wrong or short ' +
      'bodies, broken connections, client timeouts — and was sent while at least ' +
      'one origin was not under a fault. The bench faults one origin at a time, ' +
      'so two or three were always healthy: every failure counts, POSTs to a host ' +
      'that died or froze under them included.',
  );
  p(
    `"Leaked sockets" counts, ${secs(6_000)} after the last client and the admin ` +
      `scraper closed their connections (longer than Gangway's client keep-alive ` +
      `of 5 s and its upstream idle timeout of 4 s): sockets still open between ` +
      `Gangway and a client (${end.clients}) or the admin listener (${end.admin}), ` +
      `sockets in CLOSE_WAIT (${end.closeWait}), and connections to origins beyond ` +
      `one per origin (${end.upstream} open; the health checks keep one per origin ` +
      `alive, so ${upstreamBeyondChecks} beyond).`,
  );
  p();
  p('## Requests');
  p();
  p(
    `${total} requests answered${drained ? '' : ` (${traffic.inFlight} still in flight at the end)`}; ` +
      `${traffic.notSent} not sent because ${MAX_IN_FLIGHT} were in flight.`,
  );
  p();
  p('| outcome | catalogue | range | stream | order | total | share |');
  p('|---|---:|---:|---:|---:|---:|---:|');
  for (const o of OUTCOMES) {
    const n = totals.get(o) ?? 0;
    if (n === 0 && o !== 'ok') continue;
    const cells = (['catalogue', 'range', 'stream', 'order'] as Kind[]).map((k) => traffic.byKind.get(k)?.get(o) ?? 0);
    p(`| ${OUTCOME_TEXT[o]} | ${cells.join(' | ')} | ${n} | ${pct(n)} |`);
  }
  if (traffic.gatewayTokens.size > 0)
    p(
      `\nGateway-made 5xx by Proxy-Status error: ${[...traffic.gatewayTokens].map(([t, n]) => `${t} ${n}`).join(', ')}.`,
    );
  p();
  p(
    `Gangway's access log has ${log.accessLines} lines: the steady traffic's ` +
      `requests and those of the injected clients it finished (health checks are ` +
      'not logged). Further attempts on another host by reason: ' +
      `${[...log.retries].map(([r, n]) => `${r} ${n}`).join(', ') || 'none'}; ` +
      `${log.resumed} streams resumed by Range; failures it logged by Proxy-Status ` +
      `error: ${[...log.failuresLogged].map(([t, n]) => `${t} ${n}`).join(', ') || 'none'}.`,
  );
  p();
  p('## Faults, and the failures during each');
  p();
  p(
    `A failure belongs to a fault when it was sent or ended between the fault's ` +
      `start and ${GRACE_MS / 1000} s after it healed.`,
  );
  p();
  p('| # | start | fault | target | healed | requests sent | failures | what happened |');
  p('|---:|---:|---|---|---:|---:|---:|---|');
  const inWindow = (f: Failure, w: FaultWindow) =>
    (f.at >= w.start && f.at <= w.healed + GRACE_MS) || (f.at + f.ms >= w.start && f.at + f.ms <= w.healed + GRACE_MS);
  for (const w of windows) {
    const during = traffic.failures.filter((f) => inWindow(f, w));
    const sent = Math.round(((w.healed + GRACE_MS - w.start) / 1000) * RATE);
    const kinds = new Map<string, number>();
    for (const f of during) kinds.set(`${f.kind} ${f.outcome}`, (kinds.get(`${f.kind} ${f.outcome}`) ?? 0) + 1);
    const detail = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
    p(
      `| ${w.n + 1} | ${secs(w.start)} | ${w.name} | ${w.target || '–'} | ${secs(w.healed)} ` +
        `| ≈ ${sent} | ${during.length}${detail ? ` (${detail})` : ''} | ${w.note} ` +
        `|`,
    );
  }
  const outside = traffic.failures.filter((f) => !windows.some((w) => inWindow(f, w)));
  p();
  p(`Failures outside every fault window: ${outside.length}.`);
  if (reloadsSent > 0)
    p(
      `Reloads: ${reloadsSent} asked (API and SIGHUP), ${reloadsLogged} "configuration ` +
        `reloaded" lines in Gangway's log.`,
    );
  p();
  if (traffic.failures.length > 0) {
    p(`### Failed requests (first 40 of ${traffic.failures.length}), with Gangway's access-log line`);
    p();
    p('| at | request | kind | outcome | detail | fault | healthy origins | Gangway logged |');
    p('|---:|---|---|---|---|---|---:|---|');
    for (const f of traffic.failures.slice(0, 40)) {
      const l = log.byId.get(f.id);
      const logged = l
        ? `status ${l.status}, host ${l.host ?? '–'}` +
          `${l.hosts_tried ? ` (tried ${JSON.stringify(l.hosts_tried)})` : ''}, ` +
          `attempts ${l.attempts}${l.failure ? `, ${l.failure}` : ''}` +
          `${l.cause ? `, ${String(l.cause).slice(0, 80)}` : ''}, ` +
          `${l.ms} ms`
        : 'no access line';
      p(
        `| ${(f.at / 1000).toFixed(1)} s | ${f.id} | ${f.kind} | ${f.outcome} | ` +
          `${f.detail.replaceAll('|', '/')} | ${f.fault} | ${f.healthy} | ${logged.replaceAll('|', '/')} ` +
          `|`,
      );
    }
    p();
  }
  p('## Memory and descriptors');
  p();
  p(
    `After warm-up (from ${secs(afterWarmup.t)}; ${steady.length} samples). ` +
      `Growth: median of the last ${secs(WINDOW_MS)} over the median of the first ` +
      `${secs(WINDOW_MS)} after warm-up.`,
  );
  p();
  p('| series | min | median | max | first window | last window | growth |');
  p('|---|---:|---:|---:|---:|---:|---:|');
  p(series('RSS MiB', (s) => s.rssKiB, mib));
  p(
    series(
      'JS heap used MiB',
      (s) => s.heapMiB,
      (v) => v.toFixed(1),
    ),
  );
  p(
    series(
      'external (ArrayBuffers) MiB',
      (s) => s.externalMiB,
      (v) => v.toFixed(1),
    ),
  );
  p(
    series(
      'open fds',
      (s) => s.d.fds,
      (v) => v.toFixed(0),
    ),
  );
  p(
    series(
      'sockets to clients',
      (s) => s.d.clients,
      (v) => v.toFixed(0),
    ),
  );
  p(
    series(
      'sockets to origins',
      (s) => s.d.upstream,
      (v) => v.toFixed(0),
    ),
  );
  p(
    series(
      'other fds (not sockets)',
      (s) => s.d.other,
      (v) => v.toFixed(0),
    ),
  );
  p();
  const w0 = afterWarmup.d;
  p('| descriptors | after warm-up | at the end |');
  p('|---|---:|---:|');
  p(`| all | ${w0.fds} | ${end.fds} |`);
  p(`| sockets to clients (accepted on the proxy listener) | ${w0.clients} | ${end.clients} |`);
  p(`| sockets to origins (pools, health checks) | ${w0.upstream} | ${end.upstream} |`);
  p(`| admin connections (this bench's scrapes) | ${w0.admin} | ${end.admin} |`);
  p(`| listening sockets | ${w0.listening} | ${end.listening} |`);
  p(`| in CLOSE_WAIT | ${w0.closeWait} | ${end.closeWait} |`);
  p(`| other sockets (not TCP) | ${w0.otherSockets} | ${end.otherSockets} |`);
  p(`| not sockets (files, pipes, epoll, eventfd) | ${w0.other} | ${end.other} |`);
  p();
  p('### Every sample');
  p();
  p(
    '| t | RSS MiB | heap MiB | external MiB | fds | to clients | to origins ' +
      '| other fds | in rotation | answered | failed | p99 ms | fault |',
  );
  p('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const s of samples)
    p(
      `| ${secs(s.t)} | ${mib(s.rssKiB)} | ${s.heapMiB.toFixed(1)} | ${s.externalMiB.toFixed(1)} ` +
        `| ${s.d.fds} | ${s.d.clients} | ${s.d.upstream} | ${s.d.other} | ${s.inRotation} ` +
        `| ${s.done} | ${s.failed} | ${Number.isNaN(s.p99) ? '–' : s.p99.toFixed(0)} ` +
        `| ${s.fault} |`,
    );
  p();
  p("## Gangway's own log (lines other than the access log)");
  p();
  p('| level and message | count | first one |');
  p('|---|---:|---|');
  for (const [k, v] of [...log.events].sort((a, b) => b[1].count - a[1].count))
    p(`| ${k} | ${v.count} | \`${v.first.replaceAll('|', '/').replaceAll('`', "'")}\` |`);
  if (stderr) {
    p();
    p(`Standard error: \`${stderr.slice(0, 500).replaceAll('\n', ' ⏎ ')}\``);
  }
  const interesting = metricLines(finalMetrics, [
    'gangway_upstream_attempts_total',
    'gangway_retries_total',
    'gangway_resumes_total',
    'gangway_ejections_total',
    'gangway_hedges_total',
  ]);
  if (interesting.length > 0) {
    p();
    p('Counters at the end (non-zero):');
    p();
    p('```');
    for (const l of interesting) p(l);
    p('```');
  }
  const report = `${lines.join('\n')}\n`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/soak.md'), report);
  out(`\n${report}\n(written to bench/results/soak.md; Gangway's log in ${logFile})\n`);
  process.exitCode = rssGrowth < 10 && couldHaveServed.length === 0 && leaked === 0 && exit?.code === 0 ? 0 : 1;
}

if (process.argv[2] === 'origin') runOrigin(Number(process.argv[3]), process.argv[4]!);
else {
  process.once('SIGINT', () => {
    endAll();
    process.exit(130);
  });
  await main();
}
