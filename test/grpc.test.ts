/**
 * gRPC services behind Gangway: real @grpc/grpc-js hosts (in their own processes, so "killed"
 * means SIGKILL) reached over h2c and over HTTP/2 with TLS, and real @grpc/grpc-js clients
 * through the gateway's h2c and HTTPS listeners. Calls pass with their metadata and trailers;
 * the gateway's own failures reach the client as gRPC statuses (UNAVAILABLE, RESOURCE_EXHAUSTED,
 * DEADLINE_EXCEEDED, UNIMPLEMENTED), never a page; calls are sent twice only when nothing had
 * reached a host or the route lists the method as idempotent; a cut stream ends in UNAVAILABLE.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import {
  connect as http2Connect,
  createSecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createGateway, loadConfigFile, type GatewayConfigInput } from '../src/index.js';
import { classifyFailure } from '../src/faults/classify.js';
import { GRPC_CODES, FAILURES } from '../src/faults/taxonomy.js';
import { encodeGrpcMessage, isGrpcContentType, parseGrpcTimeout } from '../src/http/grpc.js';
import { closedPort, fetchRaw } from './support/harness.js';
import { CATALOGUE } from './support/grpc-service.mjs';

const TLS_DIR = join(import.meta.dirname, 'support', 'tls');
const CERT = join(TLS_DIR, 'localhost-cert.pem');
const KEY = join(TLS_DIR, 'localhost-key.pem');
const SERVICE = '/gangway.test.Catalogue';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// Hosts: processes running a real gRPC server.

interface CallSeen {
  call: string;
  name: string;
  metadata: { 'x-track'?: string; te?: string };
}

interface GrpcHost {
  name: string;
  port: number;
  child: ChildProcess;
  calls: CallSeen[];
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
}

async function startHost(name: string, transport: 'h2c' | 'tls', crashOn: string[] = []): Promise<GrpcHost> {
  const child = fork(new URL('./support/grpc-host.mjs', import.meta.url), [name, transport, crashOn.join(',')], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  const calls: CallSeen[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { ready?: boolean; port?: number } & Partial<CallSeen>) => {
      if (m.ready) resolve(m.port!);
      else if (m.call !== undefined) calls.push(m as CallSeen);
    });
    child.once('exit', (c) => reject(new Error(`gRPC host ${name} exited (${c}) before it was ready`)));
    setTimeout(() => reject(new Error(`gRPC host ${name} not ready in 10 s`)), 10_000).unref();
  });
  return {
    name,
    port,
    child,
    calls,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

// The gateway: an h2c listener and an HTTPS listener.

interface GrpcGateway {
  h2cPort: number;
  tlsPort: number;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startGrpcGateway(config: Omit<GatewayConfigInput, 'listen' | 'admin'>): Promise<GrpcGateway> {
  const logs: Array<Record<string, unknown>> = [];
  const logDestination = {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  const gateway = createGateway(
    {
      listen: [
        { address: '127.0.0.1:0', h2c: true },
        { address: '127.0.0.1:0', tls: { cert: CERT, key: KEY } },
      ],
      admin: false,
      // Shedding on event-loop delay is not under test, and this process also runs the clients.
      server: { maxEventLoopDelay: '0s' },
      ...config,
    } as GatewayConfigInput,
    { logDestination, processMetrics: false },
  );
  const { listeners } = await gateway.listen();
  const gw = { h2cPort: listeners[0]!.port, tlsPort: listeners[1]!.port, logs, close: () => gateway.close() };
  cleanups.push(() => gw.close());
  return gw;
}

/** The access log line of the request with this path, once written. */
async function accessLog(gw: GrpcGateway, path: string, nth = 0): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const lines = gw.logs.filter((l) => l.msg === 'request' && l.path === path);
    if (lines.length > nth) return lines[nth]!;
    if (Date.now() > deadline) throw new Error(`no access log line for ${path}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Clients: @grpc/grpc-js through the gateway, naming the route by its authority.

const Catalogue = grpc.makeGenericClientConstructor(CATALOGUE, 'Catalogue');
type CatalogueClient = InstanceType<typeof Catalogue>;

function client(gw: GrpcGateway, over: 'h2c' | 'tls', authority: string): CatalogueClient {
  const c =
    over === 'h2c'
      ? new Catalogue(`127.0.0.1:${gw.h2cPort}`, grpc.credentials.createInsecure(), {
          'grpc.default_authority': authority,
        })
      : new Catalogue(`127.0.0.1:${gw.tlsPort}`, grpc.credentials.createSsl(readFileSync(CERT)), {
          'grpc.default_authority': authority,
          'grpc.ssl_target_name_override': 'localhost',
        });
  cleanups.push(() => c.close());
  return c;
}

interface Track {
  id: string;
  title: string;
  host: string;
}

interface UnaryResult {
  value: Track | undefined;
  status: grpc.StatusObject;
  headers: Record<string, unknown> | undefined;
}

/** One unary call; resolves with its value (if any), the status, and the response metadata. */
function unary(c: CatalogueClient, method: string, request: object, deadlineMs = 10_000): Promise<UnaryResult> {
  return new Promise((resolve) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-track', 'abc');
    let value: Track | undefined;
    let headers: Record<string, unknown> | undefined;
    const call = c.makeUnaryRequest(
      `${SERVICE}/${method}`,
      (v: object) => Buffer.from(JSON.stringify(v)),
      (b: Buffer) => JSON.parse(b.toString()) as Track,
      request,
      metadata,
      { deadline: Date.now() + deadlineMs },
      (_err, v) => {
        value = v;
      },
    );
    call.on('metadata', (m) => {
      headers = m.getMap();
    });
    call.on('status', (status) => setImmediate(() => resolve({ value, status, headers })));
  });
}

interface StreamResult {
  messages: Track[];
  status: grpc.StatusObject;
  /** An 'error' the call emitted that is not its status (a parse error would show here). */
  headers: Record<string, unknown> | undefined;
}

/** A server-streaming Watch call; `onMessage` sees each update as it arrives. */
function watch(c: CatalogueClient, count: number, onMessage: (n: number) => void = () => {}): Promise<StreamResult> {
  return new Promise((resolve) => {
    const messages: Track[] = [];
    let headers: Record<string, unknown> | undefined;
    const call = c.makeServerStreamRequest(
      `${SERVICE}/Watch`,
      (v: object) => Buffer.from(JSON.stringify(v)),
      (b: Buffer) => JSON.parse(b.toString()) as Track,
      { count },
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    call.on('data', (m: Track) => {
      messages.push(m);
      onMessage(messages.length);
    });
    call.on('error', () => {});
    call.on('metadata', (m) => {
      headers = m.getMap();
    });
    call.on('status', (status) => setImmediate(() => resolve({ messages, status, headers })));
  });
}

// One gateway, two pools of two hosts each (h2c and TLS), and routes told apart by authority.

let gw: GrpcGateway;
let plainHost: GrpcHost;
let secureHost: GrpcHost;

before(async () => {
  plainHost = await startHost('plain-1', 'h2c');
  secureHost = await startHost('secure-1', 'tls');
  const down = [await closedPort(), await closedPort()];
  gw = await startGrpcGateway({
    upstreams: {
      plain: { hosts: [`127.0.0.1:${plainHost.port}`], protocol: 'h2c', healthCheck: { enabled: false } },
      secure: {
        hosts: [`https://127.0.0.1:${secureHost.port}`],
        protocol: 'h2',
        tls: { ca: CERT },
        healthCheck: { enabled: false },
      },
      tight: {
        hosts: [`127.0.0.1:${plainHost.port}`],
        protocol: 'h2c',
        healthCheck: { enabled: false },
        concurrency: { min: 1, max: 1, initial: 1, queueSize: 0 },
      },
      down: {
        hosts: down.map((p) => `127.0.0.1:${p}`),
        protocol: 'h2c',
        healthCheck: { enabled: false },
        retries: { backoff: '1ms' },
      },
    },
    routes: [
      { name: 'plain', match: { host: 'plain.test' }, upstream: 'plain' },
      { name: 'secure', match: { host: 'secure.test' }, upstream: 'secure' },
      { name: 'down', match: { host: 'down.test' }, upstream: 'down' },
      { name: 'limited', match: { host: 'limited.test' }, upstream: 'plain', rateLimit: { requests: 1, window: '1m' } },
      { name: 'maint', match: { host: 'maint.test' }, upstream: 'plain' },
      { name: 'tight', match: { host: 'tight.test' }, upstream: 'tight' },
    ],
    maintenance: {
      windows: [
        {
          start: new Date(Date.now() - 60_000).toISOString(),
          end: new Date(Date.now() + 3_600_000).toISOString(),
          routes: ['maint'],
          message: 'Back at three.',
        },
      ],
    },
  });
});

for (const [over, route] of [
  ['h2c', 'plain'],
  ['tls', 'secure'],
  ['h2c', 'secure'],
  ['tls', 'plain'],
] as const) {
  const upstream = route === 'plain' ? 'an h2c' : 'a TLS (h2)';
  test(`a unary call over the ${over} listener to ${upstream} pool passes with its metadata and trailers`, async () => {
    const host = route === 'plain' ? plainHost : secureHost;
    const before = host.calls.length;
    const res = await unary(client(gw, over, `${route}.test`), 'Get', { id: '7' });
    assert.equal(res.status.code, grpc.status.OK, `status ${res.status.code}: ${res.status.details}`);
    assert.deepEqual(res.value, { id: '7', title: 'track 7', host: host.name });
    const seen = host.calls.slice(before);
    assert.equal(seen.length, 1, 'the host received the call once');
    assert.equal(seen[0]!.metadata['x-track'], 'abc', "the client's metadata reached the host");
    assert.equal(res.status.metadata.get('x-served-by')[0], host.name, "the host's trailers reached the client");
    assert.ok(res.headers?.['x-request-id'], "the gateway's request id is in the response metadata");
  });

  test(`a server stream over the ${over} listener from ${upstream} pool passes every message and trailer`, async () => {
    const res = await watch(client(gw, over, `${route}.test`), 4);
    assert.equal(res.status.code, grpc.status.OK, `status ${res.status.code}: ${res.status.details}`);
    assert.deepEqual(
      res.messages.map((m) => m.title),
      ['update 1', 'update 2', 'update 3', 'update 4'],
    );
    assert.equal(res.headers?.['x-stream-host'], route === 'plain' ? plainHost.name : secureHost.name);
    assert.equal(res.status.metadata.get('x-stream-end')[0], 'clean', 'the trailers after the stream arrived');
  });
}

test("a host's own error status with no message (trailers-only) reaches the client as that status", async () => {
  for (const over of ['h2c', 'tls'] as const) {
    const res = await unary(client(gw, over, 'secure.test'), 'NoSuchMethod', { id: '1' });
    assert.equal(res.status.code, grpc.status.UNIMPLEMENTED, `${over}: ${res.status.code} ${res.status.details}`);
    assert.match(res.status.details, /NoSuchMethod/, "the host's own message");
  }
});

test("the gateway's own refusals reach a gRPC client as gRPC statuses, never a page", async (t) => {
  await t.test('every host of the pool down: UNAVAILABLE, naming the upstream', async () => {
    const res = await unary(client(gw, 'h2c', 'down.test'), 'Get', { id: '1' });
    assert.equal(res.status.code, grpc.status.UNAVAILABLE, res.status.details);
    assert.match(res.status.details, /\bdown\b/, 'the message names the upstream');
    assert.match(res.status.details, /connection_refused/, 'and the kind of failure');
  });
  await t.test('a route in maintenance: UNAVAILABLE with the operator message and a pushback', async () => {
    const res = await unary(client(gw, 'tls', 'maint.test'), 'Get', { id: '1' });
    assert.equal(res.status.code, grpc.status.UNAVAILABLE, res.status.details);
    assert.match(res.status.details, /maintenance.*Back at three\./);
    assert.ok(
      Number(res.status.metadata.get('grpc-retry-pushback-ms')[0] ?? res.headers?.['grpc-retry-pushback-ms']) > 0,
    );
  });
  await t.test('over the rate limit: RESOURCE_EXHAUSTED', async () => {
    const c = client(gw, 'h2c', 'limited.test');
    const first = await unary(c, 'Get', { id: '1' });
    assert.equal(first.status.code, grpc.status.OK, first.status.details);
    const second = await unary(c, 'Get', { id: '2' });
    assert.equal(second.status.code, grpc.status.RESOURCE_EXHAUSTED, second.status.details);
  });
  await t.test('shed at the upstream concurrency limit: RESOURCE_EXHAUSTED with a pushback', async () => {
    const c = client(gw, 'h2c', 'tight.test');
    const holding = unary(c, 'Slow', { id: '1' });
    // The slow call holds the one slot once its host has it.
    const deadline = Date.now() + 5000;
    while (!plainHost.calls.some((x) => x.call === 'Slow') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const shed = await unary(c, 'Get', { id: '2' });
    assert.equal(shed.status.code, grpc.status.RESOURCE_EXHAUSTED, shed.status.details);
    assert.match(shed.status.details, /connection_limit_reached; upstream tight at its concurrency limit/);
    assert.equal(
      shed.status.metadata.get('grpc-retry-pushback-ms')[0] ?? shed.headers?.['grpc-retry-pushback-ms'],
      '1000',
    );
    assert.equal((await holding).status.code, grpc.status.OK);
  });
  await t.test('no route for the authority: UNIMPLEMENTED', async () => {
    const res = await unary(client(gw, 'h2c', 'nowhere.test'), 'Get', { id: '1' });
    assert.equal(res.status.code, grpc.status.UNIMPLEMENTED, res.status.details);
  });
});

/** One gRPC request written by hand over HTTP/2, to see the answer's exact frames. */
function rawGrpcCall(
  port: number,
  authority: string,
  extra: Record<string, string>,
  method = 'Slow',
  request: object = { id: '9' },
): Promise<{ headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders | undefined; body: Buffer; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const body = Buffer.from(JSON.stringify(request));
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const stream = session.request({
      ':method': 'POST',
      ':path': `${SERVICE}/${method}`,
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extra,
    });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const parts: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('trailers', (h) => {
      trailers = h;
    });
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('close', () => {
      session.close();
      resolve({ headers, trailers, body: Buffer.concat(parts), ms: performance.now() - started });
    });
    stream.end(frame);
  });
}

/**
 * An h2c upstream that ignores `grpc-timeout` (a gRPC server would end the call at its deadline
 * itself, racing the gateway): it never answers a unary call, and sends a server stream's head
 * and one message, then nothing more. The gateway's deadline is the only one that can fire.
 */
async function stallingUpstream(): Promise<{ port: number; timeouts: string[] }> {
  const { createServer: createH2cServer } = await import('node:http2');
  const server = createH2cServer();
  const timeouts: string[] = [];
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    timeouts.push(String(headers['grpc-timeout']));
    if (!String(headers[':path']).endsWith('/Watch')) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    const message = Buffer.from(JSON.stringify({ id: '1', title: 'update 1', host: 'stalling' }));
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    stream.write(frame);
  });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const session of sessions) session.destroy();
      }),
  );
  return { port: (server.address() as AddressInfo).port, timeouts };
}

test(
  'grpc-timeout is the call’s deadline: the gateway ' + 'answers DEADLINE_EXCEEDED when it passes, trailers-only',
  async () => {
    const { port, timeouts } = await stallingUpstream();
    const g = await startGrpcGateway({
      upstreams: { svc: { hosts: [`127.0.0.1:${port}`], protocol: 'h2c', healthCheck: { enabled: false } } },
      routes: [{ match: { path: '/' }, upstream: 'svc' }],
    });
    const res = await rawGrpcCall(g.h2cPort, 'any.test', { 'grpc-timeout': '1S' });
    // What is left of the second, in milliseconds: the time spent at the gateway is not the host's.
    const forwarded = /^(\d+)m$/.exec(timeouts[0] ?? '');
    assert.ok(
      forwarded && Number(forwarded[1]) > 0 && Number(forwarded[1]) <= 1000,
      `the host was given ${timeouts[0]}`,
    );
    assert.equal(res.headers[':status'], 200, 'a gRPC status rides on HTTP 200');
    assert.equal(res.headers['content-type'], 'application/grpc');
    assert.equal(res.headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED), 'in the head: trailers-only');
    assert.equal(res.trailers, undefined, 'no separate trailers block');
    assert.equal(res.body.length, 0, 'and no message');
    assert.match(String(res.headers['grpc-message']), /did not start answering in time/);
    assert.match(String(res.headers['proxy-status']), /error=http_response_timeout/);
    assert.ok(res.ms >= 950 && res.ms < 2500, `answered at the deadline (${Math.round(res.ms)} ms)`);
    const line = await accessLog(g, `${SERVICE}/Slow`);
    assert.equal(line.failure, 'http_response_timeout');
    assert.match(String(line.cause), /the call's deadline \(grpc-timeout, 1000 ms\) passed/);
  },
);

test('a server stream still running at its grpc-timeout ends with DEADLINE_EXCEEDED in its trailers', async () => {
  const { port } = await stallingUpstream();
  const g = await startGrpcGateway({
    upstreams: { svc: { hosts: [`127.0.0.1:${port}`], protocol: 'h2c', healthCheck: { enabled: false } } },
    routes: [{ match: { path: '/' }, upstream: 'svc' }],
  });
  const res = await rawGrpcCall(g.h2cPort, 'any.test', { 'grpc-timeout': '300m' }, 'Watch', { count: 50 });
  assert.equal(res.headers[':status'], 200);
  assert.ok(res.body.length > 5, 'the update sent before the deadline arrived');
  assert.equal(res.trailers?.['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
  assert.ok(res.ms >= 250 && res.ms < 1500, `ended at the deadline (${Math.round(res.ms)} ms)`);
  assert.equal((await accessLog(g, `${SERVICE}/Watch`)).failure, 'http_response_incomplete');
});

test('without a grpc-timeout the same slow call is answered by its host in its own time', async () => {
  const slow = await rawGrpcCall(gw.h2cPort, 'plain.test', {});
  assert.equal(slow.trailers?.['grpc-status'], '0');
  assert.ok(slow.ms >= 1900, `the host's 2 s (${Math.round(slow.ms)} ms)`);
});

test("an upstream's own HTTP 503 to a gRPC call becomes UNAVAILABLE, its status named in Proxy-Status", async () => {
  const { createServer: createH2cServer } = await import('node:http2');
  const server = createH2cServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('overloaded');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const g = await startGrpcGateway({
    upstreams: {
      svc: {
        hosts: [`127.0.0.1:${(server.address() as AddressInfo).port}`],
        protocol: 'h2c',
        healthCheck: { enabled: false },
      },
    },
    routes: [{ match: { path: '/' }, upstream: 'svc' }],
  });
  const res = await rawGrpcCall(g.h2cPort, 'any.test', {}, 'Get');
  assert.equal(res.headers[':status'], 200);
  assert.equal(res.headers['grpc-status'], String(grpc.status.UNAVAILABLE));
  assert.match(String(res.headers['proxy-status']), /received-status=503/);
  assert.equal(res.body.length, 0, "the upstream's text is not passed off as a message");
});

test(
  "a host's own UNAVAILABLE (trailers-only) is retried on " + 'another host for a listed method, relayed for others',
  async () => {
    const { createServer: createH2cServer } = await import('node:http2');
    let refused = 0;
    const unavailable = createH2cServer();
    unavailable.on('stream', (stream) => {
      refused++;
      stream.on('error', () => {});
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'shutting down' },
        { endStream: true },
      );
    });
    await new Promise<void>((r) => unavailable.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => unavailable.close(() => r())));
    const good = await startHost('after-unavailable', 'h2c');
    const g = await startGrpcGateway({
      upstreams: {
        pool: {
          hosts: [`127.0.0.1:${(unavailable.address() as AddressInfo).port}`, `127.0.0.1:${good.port}`],
          protocol: 'h2c',
          balance: 'round-robin',
          healthCheck: { enabled: false },
          retries: { backoff: '1ms' },
        },
      },
      routes: [{ match: { path: '/' }, upstream: 'pool', grpc: { idempotentMethods: [`${SERVICE}/Get`] } }],
    });
    const c = client(g, 'h2c', 'any.test');
    const listed = await unary(c, 'Get', { id: '3' });
    assert.equal(listed.status.code, grpc.status.OK, listed.status.details);
    assert.equal(listed.value?.host, good.name);
    assert.deepEqual((await accessLog(g, `${SERVICE}/Get`)).retries, ['upstream_error_status']);
    // Round robin: the next call's first attempt is the other host, so send two to meet the refusing one.
    const results = [await unary(c, 'Charge', { id: '4' }), await unary(c, 'Charge', { id: '5' })];
    assert.equal(refused, 2, 'each call met the refusing host once');
    const relayed = results.find((r) => r.status.code !== grpc.status.OK);
    assert.equal(relayed?.status.code, grpc.status.UNAVAILABLE);
    assert.equal(relayed?.status.details, 'shutting down', "the host's own status, relayed");
    assert.equal(good.calls.filter((x) => x.call === 'Charge').length, 1, 'an unlisted call is not sent again');
  },
);

test('a gRPC call the gateway cannot route gets UNIMPLEMENTED even when it asks for HTML', async () => {
  const res = await rawGrpcCall(gw.h2cPort, 'nowhere.test', { accept: 'text/html' });
  assert.equal(res.headers[':status'], 200);
  assert.equal(res.headers['grpc-status'], String(grpc.status.UNIMPLEMENTED));
  assert.equal(res.body.length, 0);
});

test(
  'a host killed before the call: even a non-idempotent ' + 'call goes to the other host (nothing was sent)',
  async () => {
    const dead = await startHost('dead-1', 'h2c');
    const alive = await startHost('alive-1', 'h2c');
    await dead.kill();
    const g = await startGrpcGateway({
      upstreams: {
        pool: {
          hosts: [`127.0.0.1:${dead.port}`, `127.0.0.1:${alive.port}`],
          protocol: 'h2c',
          balance: 'round-robin',
          healthCheck: { enabled: false },
          retries: { backoff: '1ms' },
        },
      },
      routes: [{ match: { path: '/' }, upstream: 'pool' }],
    });
    const res = await unary(client(g, 'h2c', 'any.test'), 'Charge', { id: '1' });
    assert.equal(res.status.code, grpc.status.OK, res.status.details);
    assert.equal(res.value?.host, 'alive-1');
    const line = await accessLog(g, `${SERVICE}/Charge`);
    assert.deepEqual(line.retries, ['connection_refused']);
  },
);

for (const [method, listed] of [
  ['Get', true],
  ['Charge', false],
] as const) {
  test(
    `a host killed while it holds a ${listed ? 'listed-idempotent' : 'non-idempotent'} call: ` +
      (listed ? 'retried on the other host' : 'not sent again, UNAVAILABLE'),
    async () => {
      const crashing = await startHost(`crashing-${method}`, 'tls', [method]);
      const other = await startHost(`other-${method}`, 'tls');
      const g = await startGrpcGateway({
        upstreams: {
          pool: {
            hosts: [`https://127.0.0.1:${crashing.port}`, `https://127.0.0.1:${other.port}`],
            protocol: 'h2',
            tls: { ca: CERT },
            balance: 'round-robin',
            healthCheck: { enabled: false },
            retries: { backoff: '1ms' },
          },
        },
        routes: [{ match: { path: '/' }, upstream: 'pool', grpc: { idempotentMethods: [`${SERVICE}/Get`] } }],
      });
      const res = await unary(client(g, 'tls', 'any.test'), method, { id: '5' });
      assert.equal(crashing.calls.length, 1, 'the first host received the call before it died');
      const line = await accessLog(g, `${SERVICE}/${method}`);
      if (listed) {
        assert.equal(res.status.code, grpc.status.OK, res.status.details);
        assert.equal(res.value?.host, other.name);
        assert.equal(other.calls.length, 1);
        assert.deepEqual(line.retries, ['connection_terminated']);
      } else {
        assert.equal(res.status.code, grpc.status.UNAVAILABLE, res.status.details);
        assert.equal(other.calls.length, 0, 'the other host never saw the call');
        assert.equal(line.failure, 'connection_terminated');
        assert.equal(line.attempts, 1, 'one attempt, no retry');
      }
    },
  );
}

test('a slow gRPC call is hedged on another host only when its method is listed as idempotent', async () => {
  const first = await startHost('hedge-1', 'h2c');
  const second = await startHost('hedge-2', 'h2c');
  const g = await startGrpcGateway({
    upstreams: {
      pool: {
        hosts: [`127.0.0.1:${first.port}`, `127.0.0.1:${second.port}`],
        protocol: 'h2c',
        balance: 'round-robin',
        healthCheck: { enabled: false },
        hedging: { minDelay: '50ms', maxDelay: '100ms' },
      },
    },
    routes: [
      { match: { host: 'listed.test' }, upstream: 'pool', grpc: { idempotentMethods: [`${SERVICE}/Slow`] } },
      { match: { host: 'unlisted.test' }, upstream: 'pool' },
    ],
  });
  const unlisted = await unary(client(g, 'h2c', 'unlisted.test'), 'Slow', { id: '1' });
  assert.equal(unlisted.status.code, grpc.status.OK, unlisted.status.details);
  assert.equal(first.calls.length + second.calls.length, 1, 'a call not listed is never sent twice');
  const listed = await unary(client(g, 'h2c', 'listed.test'), 'Slow', { id: '2' });
  assert.equal(listed.status.code, grpc.status.OK, listed.status.details);
  assert.equal(first.calls.length + second.calls.length, 3, 'the listed one was hedged: two hosts got it');
  assert.deepEqual((await accessLog(g, `${SERVICE}/Slow`, 1)).retries, ['hedge']);
});

for (const over of ['h2c', 'tls'] as const) {
  const title = `a server stream whose host is killed part way ends with UNAVAILABLE after the messages sent (${over})`;
  test(title, async () => {
    const host = await startHost(`streaming-${over}`, over === 'h2c' ? 'h2c' : 'tls');
    const spare = await startHost(`spare-${over}`, over === 'h2c' ? 'h2c' : 'tls');
    const scheme = over === 'h2c' ? '' : 'https://';
    const g = await startGrpcGateway({
      upstreams: {
        pool: {
          hosts: [`${scheme}127.0.0.1:${host.port}`, `${scheme}127.0.0.1:${spare.port}`],
          protocol: over === 'h2c' ? 'h2c' : 'h2',
          ...(over === 'tls' ? { tls: { ca: CERT } } : {}),
          balance: 'round-robin',
          healthCheck: { enabled: false },
        },
      },
      // Even listed as idempotent, a stream that started is never spliced from another host.
      routes: [{ match: { path: '/' }, upstream: 'pool', grpc: { idempotentMethods: [`${SERVICE}/*`] } }],
    });
    let killed: Promise<void> | undefined;
    const res = await watch(client(g, over, 'any.test'), 50, (n) => {
      if (n === 2) killed = host.kill();
    });
    await killed;
    assert.equal(res.status.code, grpc.status.UNAVAILABLE, `${res.status.code}: ${res.status.details}`);
    assert.match(res.status.details, /http_response_incomplete/, "the gateway's status, not a parse error");
    assert.ok(res.messages.length >= 2 && res.messages.length < 50, `${res.messages.length} whole messages first`);
    assert.equal(spare.calls.length, 0, 'nothing was resumed elsewhere');
    const line = await accessLog(g, `${SERVICE}/Watch`);
    assert.equal(line.failure, 'http_response_incomplete');
  });
}

test('a call streaming both ways flows both ways: each message is answered before the client ends its side', {
  timeout: 20_000,
}, async () => {
  const c = client(gw, 'h2c', 'plain.test');
  const call = c.makeBidiStreamRequest(
    `${SERVICE}/Chat`,
    (v: object) => Buffer.from(JSON.stringify(v)),
    (b: Buffer) => JSON.parse(b.toString()) as Track,
    new grpc.Metadata(),
    { deadline: Date.now() + 10_000 },
  );
  const replies: string[] = [];
  const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
  call.on('error', () => {});
  for (const word of ['one', 'two', 'three']) {
    // Held back, the call would end at its deadline with no answer: that ends the wait too.
    const answered = Promise.race([new Promise<void>((r) => call.once('data', () => r())), status]);
    call.on('data', (m: Track) => replies.push(m.title));
    call.write({ id: word, title: word });
    // The request stream is still open: the answer can only come through if it is not held back.
    await answered;
    call.removeAllListeners('data');
  }
  call.end();
  assert.equal((await status).code, grpc.status.OK);
  assert.deepEqual(replies, ['echo one', 'echo two', 'echo three']);
});

for (const transport of ['h2c', 'tls'] as const) {
  const title = `health checks speak the pool's protocol (${transport}): a gRPC-only host passes, a dead one fails`;
  test(title, async () => {
    const alive = await startHost(`checked-${transport}`, transport);
    const dead = await closedPort();
    const scheme = transport === 'tls' ? 'https://' : '';
    const g = await startGrpcGateway({
      upstreams: {
        pool: {
          hosts: [`${scheme}127.0.0.1:${alive.port}`, `${scheme}127.0.0.1:${dead}`],
          protocol: transport === 'tls' ? 'h2' : 'h2c',
          ...(transport === 'tls' ? { tls: { ca: CERT } } : {}),
          healthCheck: { interval: '50ms', timeout: '500ms', unhealthyThreshold: 2 },
        },
      },
      routes: [{ match: { path: '/' }, upstream: 'pool' }],
    });
    const failed = (label: string) => g.logs.some((l) => l.msg === 'host failed its health checks' && l.host === label);
    const deadline = Date.now() + 5000;
    while (!failed(`127.0.0.1:${dead}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(failed(`127.0.0.1:${dead}`), 'the dead host was taken out by its checks');
    // By now the live host has been checked several times; a check in HTTP/1.1 would fail it.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!failed(`127.0.0.1:${alive.port}`), 'the host that speaks only HTTP/2 passes its checks');
  });
}

test(
  'an h2 (TLS) pool serves ordinary requests from an ' + 'HTTP/1.1 client, trailers included when asked for',
  async () => {
    const versions: string[] = [];
    const server = createSecureServer({ key: readFileSync(KEY), cert: readFileSync(CERT) }, (req, res) => {
      versions.push(req.httpVersion);
      res.setHeader('content-type', 'text/plain');
      res.addTrailers({ 'x-checksum': 'c0ffee' });
      res.end(`hello over ${req.httpVersion}, te=${req.headers.te ?? ''}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    const h1 = createGateway(
      {
        listen: '127.0.0.1:0',
        admin: false,
        upstreams: {
          web: {
            hosts: [`https://127.0.0.1:${port}`],
            protocol: 'h2',
            tls: { ca: CERT },
            healthCheck: { enabled: false },
          },
        },
        routes: [{ match: { path: '/' }, upstream: 'web' }],
      } as GatewayConfigInput,
      { logDestination: { write() {} }, processMetrics: false },
    );
    const { proxy } = await h1.listen();
    cleanups.push(() => h1.close());
    const res = await fetchRaw(`http://127.0.0.1:${proxy.port}/hello`, { headers: { te: 'trailers' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'hello over 2.0, te=trailers', 'spoken to in HTTP/2, TE: trailers passed on');
    assert.equal(res.trailers['x-checksum'], 'c0ffee', "the upstream's trailers reached the HTTP/1.1 client");
    const plain = await fetchRaw(`http://127.0.0.1:${proxy.port}/again`);
    assert.equal(plain.status, 200);
    assert.deepEqual(versions, ['2.0', '2.0']);
  },
);

test('a plain HTTP/1.1 pool still serves HTTP/1.1 and HTTP/2 clients as before', async () => {
  const versions: string[] = [];
  const server = createServer((req, res) => {
    versions.push(req.httpVersion);
    res.end('plain');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const g = await startGrpcGateway({
    upstreams: { web: { hosts: [`127.0.0.1:${port}`], healthCheck: { enabled: false } } },
    routes: [{ match: { path: '/' }, upstream: 'web' }],
  });
  const body = await new Promise<string>((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${g.h2cPort}`);
    session.on('error', reject);
    const s = session.request({ ':path': '/x' });
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
    });
    s.on('close', () => {
      session.close();
      resolve(got);
    });
  });
  assert.equal(body, 'plain');
  assert.deepEqual(versions, ['1.1'], 'the upstream was spoken to in HTTP/1.1');
});

test('a pool protocol that its hosts cannot speak is refused with the file, line and host', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-grpc-'));
  const write = (protocol: string, host: string, methods = '[]') => {
    const file = join(dir, 'gangway.yaml');
    writeFileSync(
      file,
      'listen: "127.0.0.1:0"\nadmin: false\nupstreams:\n  svc:\n' +
        `    protocol: ${protocol}\n    hosts:\n      - "${host}"\n` +
        `routes:\n  - upstream: svc\n    grpc: { idempotentMethods: ${methods} }\n`,
    );
    return () => loadConfigFile(file);
  };
  assert.throws(
    write('h2', '127.0.0.1:9000'),
    /gangway\.yaml:7:\d+ upstreams\.svc\.hosts\[0\]: .*h2 is HTTP\/2 over TLS/,
  );
  assert.throws(write('h2c', 'https://127.0.0.1:9000'), /gangway\.yaml:7:\d+ .*h2c is HTTP\/2 in cleartext/);
  assert.throws(write('h3', '127.0.0.1:9000'), /upstreams\.svc\.protocol/);
  assert.throws(write('h2c', '127.0.0.1:9000', '["Get"]'), /idempotentMethods\[0\]: write a gRPC method as/);
  assert.doesNotThrow(write('h2c', '127.0.0.1:9000', '["/pkg.Svc/Get", "/pkg.Other/*"]'));
  assert.doesNotThrow(write('h2', 'https://127.0.0.1:9000'));
  // Hosts found by DNS: their scheme must carry the protocol too.
  const discovered = (protocol: string, scheme: string) => {
    const file = join(dir, 'discovered.yaml');
    writeFileSync(
      file,
      'listen: "127.0.0.1:0"\nadmin: false\nupstreams:\n  svc:\n    protocol: ' +
        `${protocol}\n    dns: { name: grpc.internal, port: 50051, scheme: ${scheme} }\nroutes:\n  - upstream: svc\n`,
    );
    return () => loadConfigFile(file);
  };
  assert.throws(discovered('h2', 'http'), /discovered\.yaml:\d+:\d+ upstreams\.svc\.dns\.scheme: protocol h2/);
  assert.throws(discovered('h2c', 'https'), /upstreams\.svc\.dns\.scheme: protocol h2c/);
  assert.doesNotThrow(discovered('h2', 'https'));
  assert.doesNotThrow(discovered('h2c', 'http'));
});

test('every failure kind has a gRPC status, and the ones the issue names are the ones it asks for', () => {
  for (const [name, kind] of Object.entries(FAILURES)) assert.ok(kind.grpc in GRPC_CODES, name);
  assert.equal(FAILURES.destination_unavailable.grpc, 'UNAVAILABLE');
  assert.equal(FAILURES.connection_refused.grpc, 'UNAVAILABLE');
  assert.equal(FAILURES.maintenance.grpc, 'UNAVAILABLE');
  assert.equal(FAILURES.connection_limit_reached.grpc, 'RESOURCE_EXHAUSTED');
  assert.equal(FAILURES.rate_limited.grpc, 'RESOURCE_EXHAUSTED');
  assert.equal(FAILURES.http_response_timeout.grpc, 'DEADLINE_EXCEEDED');
  assert.equal(FAILURES.http_response_incomplete.grpc, 'UNAVAILABLE');
  assert.equal(GRPC_CODES.UNAVAILABLE, grpc.status.UNAVAILABLE, 'the numbers are gRPC’s own');
  assert.equal(GRPC_CODES.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(GRPC_CODES.DEADLINE_EXCEEDED, grpc.status.DEADLINE_EXCEEDED);
});

test(
  'an HTTP/2 stream or session that ends before any answer is ' +
    'connection_terminated; a PROTOCOL_ERROR reset is a protocol error',
  () => {
    const before = { responseStarted: false, reusedConnection: false };
    const info = Object.assign(new Error('HTTP/2: stream closed before the response was complete'), {
      code: 'UND_ERR_INFO',
    });
    assert.equal(classifyFailure(info, before), 'connection_terminated');
    const reset = Object.assign(new Error('Stream closed with error code NGHTTP2_INTERNAL_ERROR'), {
      code: 'ERR_HTTP2_STREAM_ERROR',
      http2ErrorCode: 2,
    });
    assert.equal(classifyFailure(reset, before), 'connection_terminated');
    assert.equal(
      classifyFailure({ ...reset, code: 'ERR_HTTP2_STREAM_ERROR', http2ErrorCode: 1 }, before),
      'http_protocol_error',
    );
    assert.equal(
      classifyFailure(Object.assign(new Error('x'), { code: 'ERR_HTTP2_GOAWAY_SESSION' }), before),
      'connection_terminated',
    );
    assert.equal(classifyFailure(info, { ...before, responseStarted: true }), 'http_response_incomplete');
  },
);

test('grpc-timeout is read in every unit, and a malformed one is no deadline', () => {
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('3S'), 3000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('1500u'), 2, 'rounded up: a deadline is never read as sooner-than-none');
  assert.equal(parseGrpcTimeout('99999999n'), 100);
  assert.equal(parseGrpcTimeout('0m'), 0);
  for (const bad of [undefined, '', 'm', '10', '10x', '-5m', '1.5S', '123456789m', ' 5m'])
    assert.equal(parseGrpcTimeout(bad), undefined, String(bad));
});

test('grpc-message is percent-encoded as gRPC asks: printable ASCII as is, "%" and the rest as UTF-8 escapes', () => {
  assert.equal(encodeGrpcMessage('No healthy server (upstream music)'), 'No healthy server (upstream music)');
  assert.equal(encodeGrpcMessage('100% down'), '100%25 down');
  assert.equal(encodeGrpcMessage('Wartung für Musik\n'), 'Wartung f%C3%BCr Musik%0A');
  // Whatever the text, the result is printable ASCII and decodes back to it.
  for (const s of ['ünïcødé ✓', '%%%', '\u0000\u007f', 'a'.repeat(300), '日本語のメッセージ']) {
    const encoded = encodeGrpcMessage(s);
    assert.match(encoded, /^[\x20-\x7e]*$/);
    assert.equal(decodeURIComponent(encoded), s);
  }
  assert.ok(isGrpcContentType('application/grpc'));
  assert.ok(isGrpcContentType('application/grpc+proto'));
  assert.ok(isGrpcContentType('Application/GRPC; charset=utf-8'));
  assert.ok(isGrpcContentType('application/grpc-web+proto'));
  assert.ok(!isGrpcContentType('application/grpcx'));
  assert.ok(!isGrpcContentType('application/json'));
  assert.ok(!isGrpcContentType('text/application/grpc'));
  assert.ok(!isGrpcContentType(undefined));
});
