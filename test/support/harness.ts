/**
 * Test harness: real gateways on ephemeral loopback ports, real upstream servers (well
 * behaved and not), and a plain node:http client that reports exactly what arrived,
 * including bodies that broke off.
 */
import {
  request as httpRequest,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import {
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
  type AddressInfo,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { createGateway, type Gateway, type GatewayConfigInput } from '../../src/index.js';

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  adminUrl: string;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A gateway on 127.0.0.1:0 whose log lines are collected (parsed) in `logs`. */
export async function startGateway(
  config: Omit<GatewayConfigInput, 'listen' | 'admin'> & Partial<Pick<GatewayConfigInput, 'listen' | 'admin'>>,
  options: { statusStepMs?: number } = {},
): Promise<RunningGateway> {
  const logs: Array<Record<string, unknown>> = [];
  // The gateway's own JSON line path, collected and parsed.
  const logDestination = {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  const gateway = createGateway({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...config } as GatewayConfigInput, {
    logDestination,
    processMetrics: false,
    ...options,
  });
  const { proxy, admin } = await gateway.listen();
  return {
    gateway,
    url: `http://127.0.0.1:${proxy.port}`,
    adminUrl: admin ? `http://127.0.0.1:${admin.port}` : '',
    logs,
    close: () => gateway.close(),
  };
}

export interface TestServer {
  port: number;
  address: string;
  close(): Promise<void>;
}

/** A well-behaved HTTP upstream. */
export async function httpUpstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestServer & { server: Server }> {
  const server = createServer(handler);
  // Upgraded sockets leave the HTTP server's bookkeeping, so track every socket ourselves.
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A TCP server that does whatever `onSocket` does with each connection: the misbehaving upstream. */
export async function tcpUpstream(onSocket: (socket: Socket) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port on loopback with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface ClientResult {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: Record<string, string | undefined>;
  body: Buffer;
  /** The response body ended cleanly (not cut off). */
  complete: boolean;
  error?: string;
  ms: number;
}

export interface ClientOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  /** Stream the body in chunks (chunked transfer). */
  chunks?: Buffer[];
  timeoutMs?: number;
  agent?: false;
}

/** One request with node:http; resolves with whatever arrived, including a cut-off body. */
export function fetchRaw(url: string, opts: ClientOptions = {}): Promise<ClientResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const headers = opts.chunks ? { 'transfer-encoding': 'chunked', ...opts.headers } : opts.headers;
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers, agent: opts.agent ?? false }, (res) => {
      const parts: Buffer[] = [];
      let error: string | undefined;
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', (e) => {
        error = e.message;
      });
      res.on('close', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          trailers: res.trailers,
          body: Buffer.concat(parts),
          complete: res.complete && error === undefined,
          error,
          ms: performance.now() - started,
        });
      });
    });
    req.on('error', reject);
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

/**
 * Writes raw bytes to a gateway and returns everything it sent back by the time the
 * connection closed (or `giveUpMs` passed): for requests no HTTP client would send.
 */
export function rawExchange(url: string, payload: string, giveUpMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(Number(new URL(url).port), '127.0.0.1');
    let got = '';
    s.on('data', (c) => {
      got += c.toString();
    });
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    s.write(payload);
    setTimeout(() => s.destroy(), giveUpMs).unref();
  });
}

/**
 * One upstream "music" with these hosts behind a catch-all route. Active health checks are
 * off unless `extra.upstream` turns them on: their requests would otherwise mix with the
 * ones a test counts.
 */
export function minimalConfig(
  hosts: string[],
  extra: Record<string, unknown> = {},
): Omit<GatewayConfigInput, 'listen' | 'admin'> {
  return {
    upstreams: { music: { hosts, healthCheck: { enabled: false }, ...((extra.upstream as object) ?? {}) } },
    routes: [{ match: { path: '/' }, upstream: 'music', ...((extra.route as object) ?? {}) }],
    ...((extra.top as object) ?? {}),
  } as Omit<GatewayConfigInput, 'listen' | 'admin'>;
}

/**
 * Asks for a WebSocket upgrade of /ws on `socket`, sends "ping" once the switch is answered, and
 * resolves with everything read once the upstream's "echo:ping" came back through the tunnel.
 */
export function websocketTranscript(socket: Duplex, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\r\n\r\n') && !got.includes('echo:')) socket.write('ping');
      if (got.includes('echo:ping')) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.write(
      `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
  });
}
