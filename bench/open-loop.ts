/**
 * An open-loop load generator: requests go out on a fixed schedule whether or not earlier
 * ones were answered, as real users arrive, so a slow proxy cannot slow the load down and
 * hide its queue (coordinated omission). Each latency is measured from the request's
 * scheduled time.
 *
 * It speaks HTTP/1.1 over plain sockets, one request at a time per connection, and opens
 * its connections before the clock starts (as wrk does): an HTTP client library spends more
 * time setting up hundreds of connections at once than the proxies under test spend on the
 * requests, and that would be measured as the proxies' latency.
 */
import { connect, type Socket } from 'node:net';

export interface OpenLoopAnswer {
  status: number /** When it was scheduled, ms after the start. */;
  at: number;
  ms: number;
  retryAfter: boolean;
  proxyStatus: string | undefined;
  error?: string;
}

const HEAD_END = Buffer.from('\r\n\r\n');

class Connection {
  private buffered: Buffer = Buffer.alloc(0);
  private expect: { scheduled: number; at: number; done: (a: OpenLoopAnswer) => void } | undefined;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly onIdle: (c: Connection) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      const e = this.expect;
      this.expect = undefined;
      e?.done({
        status: 0,
        at: e.at,
        ms: performance.now() - e.scheduled,
        retryAfter: false,
        proxyStatus: undefined,
        error: 'connection closed',
      });
    });
  }

  send(request: Buffer, scheduled: number, at: number, done: (a: OpenLoopAnswer) => void): void {
    this.expect = { scheduled, at, done };
    this.socket.write(request);
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = this.buffered.indexOf(HEAD_END);
    if (end < 0 || this.expect === undefined) return;
    const head = this.buffered.subarray(0, end).toString('latin1');
    const lines = head.split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const fields = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const bodyStart = end + 4;
    let total: number;
    if (fields.has('content-length')) {
      total = bodyStart + Number(fields.get('content-length'));
    } else if (fields.get('transfer-encoding')?.includes('chunked')) {
      const last = this.buffered.indexOf('0\r\n\r\n', bodyStart);
      if (last < 0) return;
      total = last + 5;
    } else {
      total = bodyStart;
    }
    if (this.buffered.length < total) return;
    this.buffered = this.buffered.subarray(total);
    const e = this.expect;
    this.expect = undefined;
    e.done({
      status,
      at: e.at,
      ms: performance.now() - e.scheduled,
      retryAfter: fields.has('retry-after'),
      proxyStatus: fields.get('proxy-status'),
    });
    if (fields.get('connection') === 'close') {
      this.socket.destroy();
      return;
    }
    this.onIdle(this);
  }
}

function open(port: number, onIdle: (c: Connection) => void): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => resolve(new Connection(s, onIdle)));
    s.once('error', reject);
  });
}

export async function openLoop(
  port: number,
  path: string,
  ratePerSecond: number,
  seconds: number,
  timeoutMs: number,
  preconnect = 1000,
): Promise<OpenLoopAnswer[]> {
  const request = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: gangway-open-loop\r\n\r\n`,
  );
  const idle: Connection[] = [];
  const all: Connection[] = [];
  const onIdle = (c: Connection): void => {
    idle.push(c);
  };
  for (let i = 0; i < preconnect; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, preconnect - i) }, () => open(port, onIdle)));
    idle.push(...batch);
    all.push(...batch);
  }
  const total = Math.round(ratePerSecond * seconds);
  const answers: OpenLoopAnswer[] = [];
  const start = performance.now();
  let sent = 0;
  const done = (a: OpenLoopAnswer): void => {
    answers.push(a);
  };
  const sendOne = (scheduled: number): void => {
    const at = scheduled - start;
    let c = idle.pop();
    while (c?.closed) c = idle.pop();
    if (c !== undefined) {
      c.send(request, scheduled, at, done);
      return;
    }
    // Every connection is busy: open one more, as a new user would.
    open(port, onIdle)
      .then((fresh) => {
        all.push(fresh);
        fresh.send(request, scheduled, at, done);
      })
      .catch((err: Error) =>
        done({
          status: 0,
          at,
          ms: performance.now() - scheduled,
          retryAfter: false,
          proxyStatus: undefined,
          error: err.message,
        }),
      );
  };
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) / 1000) * ratePerSecond) + 1);
      while (sent < due) sendOne(start + (sent++ * 1000) / ratePerSecond);
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  // Wait for the answers, up to the client timeout; whatever is still open is unanswered.
  const deadline = performance.now() + timeoutMs;
  while (answers.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const c of all) c.socket.destroy();
  await new Promise((r) => setTimeout(r, 50));
  return answers.slice(0, total);
}
