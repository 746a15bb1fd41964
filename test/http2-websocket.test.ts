/**
 * WebSockets over HTTP/2 (RFC 8441): a client's extended CONNECT on an HTTP/2 listener passes
 * the same preflight as an HTTP/1.1 upgrade, the gateway performs the HTTP/1.1 WebSocket
 * handshake with the upstream itself (its own key, the accept checked), answers 200, and the
 * stream carries the WebSocket both ways until either side closes. Refusals — a route without
 * WebSocket, an upstream that is down or that answers the handshake wrongly — are explained
 * HTTP/2 answers on the stream.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ClientHttp2Session, type ClientHttp2Stream, connect as http2Connect } from 'node:http2';
import { createGateway } from '../src/index.js';
import { closedPort, tcpUpstream } from './support/harness.js';
import { websocketEchoServer, WsClient } from './support/websocket.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A gateway with an h2c listener and an HTTP/1.1 one, routing /plain (no WebSocket) and the rest to `host`. */
async function gateway(
  host: string,
  server: Record<string, unknown> = {},
): Promise<{ h2c: string; h1: string; logs: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const logs: Array<Record<string, unknown>> = [];
  const gw = createGateway(
    {
      listen: [{ address: '127.0.0.1:0', h2c: true }, '127.0.0.1:0'],
      admin: false,
      server,
      upstreams: { chat: { hosts: [host], healthCheck: { enabled: false } } },
      routes: [
        { match: { path: '/plain' }, upstream: 'chat', upgrades: [] },
        { match: { path: '/' }, upstream: 'chat' },
      ],
    },
    {
      logDestination: {
        write: (chunk: string) => {
          for (const line of chunk.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
        },
      },
      processMetrics: false,
    },
  );
  const { listeners } = await gw.listen();
  cleanups.push(() => gw.close());
  return {
    h2c: `http://127.0.0.1:${listeners[0]!.port}`,
    h1: `http://127.0.0.1:${listeners[1]!.port}`,
    logs,
    close: () => gw.close(),
  };
}

async function session(url: string): Promise<ClientHttp2Session> {
  const s = http2Connect(url);
  s.on('error', () => {});
  cleanups.push(() => s.destroy());
  await new Promise((resolve) => s.once('remoteSettings', resolve));
  return s;
}

/** An extended CONNECT for a WebSocket on `path`: the stream, and the response's fields once they came. */
function openWebSocket(
  s: ClientHttp2Session,
  path: string,
  more: Record<string, string> = {},
): Promise<{ stream: ClientHttp2Stream; headers: Record<string, unknown>; body: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const stream = s.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'http',
        ':path': path,
        ':authority': 'chat.example',
        'sec-websocket-version': '13',
        ...more,
      },
      { endStream: false },
    );
    stream.once('response', (headers) =>
      resolve({
        stream,
        headers,
        body: () =>
          new Promise((done) => {
            let text = '';
            stream.setEncoding('utf8');
            stream.on('data', (c: string) => {
              text += c;
            });
            stream.on('end', () => done(text));
            stream.on('close', () => done(text));
          }),
      }),
    );
    stream.once('error', reject);
  });
}

test('the HTTP/2 listener offers extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)', async () => {
  const gw = await gateway(`127.0.0.1:${await closedPort()}`);
  const s = await session(gw.h2c);
  assert.equal(s.remoteSettings.enableConnectProtocol, true);
});

test(
  'a WebSocket over HTTP/2 reaches an HTTP/1.1 upstream: the gateway makes the key and checks ' +
    'the accept, messages go both ways, and the client closing closes the upstream',
  async () => {
    const echo = await websocketEchoServer();
    cleanups.push(() => echo.close());
    const gw = await gateway(echo.address);
    const s = await session(gw.h2c);
    const { stream, headers } = await openWebSocket(s, '/ws/room?x=1', { 'sec-websocket-protocol': 'chat' });
    assert.equal(headers[':status'], 200, 'RFC 8441 §5: 200 opens the tunnel, not 101');
    assert.equal(headers['sec-websocket-accept'], undefined, 'no accept key on the HTTP/2 side');
    assert.equal(headers.upgrade, undefined);
    assert.equal(headers.connection, undefined);
    const [handshake] = echo.handshakes;
    assert.ok(handshake, 'the upstream had a WebSocket handshake');
    assert.equal(Buffer.from(String(handshake['sec-websocket-key']), 'base64').length, 16);
    assert.equal(handshake['sec-websocket-protocol'], 'chat');
    assert.equal(handshake.host, 'chat.example');
    const ws = new WsClient(stream);
    for (const text of ['hello', 'x'.repeat(70_000), 'third']) ws.send(text);
    assert.ok(await ws.until(() => ws.texts().length === 3), `three echoes, got ${ws.texts().length}`);
    assert.deepEqual(
      ws.texts().map((t) => t.slice(0, 12)),
      ['echo:hello', `echo:${'x'.repeat(7)}`, 'echo:third'],
    );
    assert.equal(ws.texts()[1]!.length, 70_005, 'a message larger than a frame window arrives whole');
    assert.deepEqual(echo.received.slice(0, 1), ['hello']);
    ws.sendClose(1000);
    assert.ok(await ws.until(() => ws.frames.some((f) => f.opcode === 0x8)), 'the close is answered');
    assert.deepEqual(echo.closes, [1000]);
    assert.ok(await ws.until(() => ws.ended, 3000), 'the stream ends once the upstream closed');
    // The session carries on for ordinary requests.
    const after = s.request({ ':path': '/plain' });
    after.end();
    const status = await new Promise((r) => after.once('response', (h) => r(h[':status'])));
    assert.equal(status, 426, 'a plain request on the same connection gets the upstream answer');
    after.resume();
  },
);

test('the upstream closing a WebSocket ends the HTTP/2 stream; the access log has it', async () => {
  const echo = await websocketEchoServer();
  cleanups.push(() => echo.close());
  const gw = await gateway(echo.address);
  const s = await session(gw.h2c);
  const { stream } = await openWebSocket(s, '/ws');
  const ws = new WsClient(stream);
  ws.send('before');
  assert.ok(await ws.until(() => ws.texts().length === 1));
  echo.closeAll();
  assert.ok(
    await ws.until(() => ws.frames.some((f) => f.opcode === 0x8 && f.payload.readUInt16BE(0) === 1000)),
    'the close frame came through',
  );
  assert.ok(await ws.until(() => ws.ended, 3000), 'and the stream ended');
  const logged = Date.now() + 2000;
  let line: Record<string, unknown> | undefined;
  while (line === undefined && Date.now() < logged) {
    line = gw.logs.find((l) => l.msg === 'request' && l.path === '/ws');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(line?.protocol, 'HTTP/2.0');
  assert.equal(line?.upgrade, 'websocket');
  assert.equal(line?.status, 200);
});

test('an extended CONNECT on a route without WebSocket is refused with an explained 400', async () => {
  const echo = await websocketEchoServer();
  cleanups.push(() => echo.close());
  const gw = await gateway(echo.address);
  const s = await session(gw.h2c);
  const { headers, body } = await openWebSocket(s, '/plain/ws', { accept: 'application/json' });
  assert.equal(headers[':status'], 400);
  assert.equal(headers['content-type'], 'application/problem+json');
  assert.match(await body(), /websocket is not served on this route/);
  assert.equal(echo.handshakes.length, 0, 'nothing went upstream');
});

test('a plain HTTP/2 CONNECT (no :protocol) is refused: a gateway, not a forward proxy', async () => {
  const echo = await websocketEchoServer();
  cleanups.push(() => echo.close());
  const gw = await gateway(echo.address);
  const s = await session(gw.h2c);
  const stream = s.request({ ':method': 'CONNECT', ':authority': 'elsewhere.example:443', accept: 'application/json' });
  const headers = await new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve));
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => {
    body += c;
  });
  await new Promise((r) => stream.once('end', r));
  assert.equal(headers[':status'], 400);
  assert.match(body, /not a forward proxy/);
  assert.equal(echo.handshakes.length, 0);
});

test('a WebSocket over HTTP/2 to a host that is down gets the explained 502 on its stream', async () => {
  const gw = await gateway(`127.0.0.1:${await closedPort()}`);
  const s = await session(gw.h2c);
  const { headers, body } = await openWebSocket(s, '/ws', { accept: 'application/json' });
  assert.equal(headers[':status'], 502);
  assert.match(String(headers['proxy-status']), /error=connection_refused/);
  assert.equal((JSON.parse(await body()) as { status: number }).status, 502);
});

test(
  'an upstream that switches without the right ' + 'Sec-WebSocket-Accept is refused: 502 http_upgrade_failed',
  async () => {
    const liar = await tcpUpstream((socket) => {
      socket.once('data', () =>
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBhY2NlcHQ=\r\n\r\n',
        ),
      );
    });
    cleanups.push(() => liar.close());
    const gw = await gateway(liar.address);
    const s = await session(gw.h2c);
    const { headers } = await openWebSocket(s, '/ws', { accept: 'application/json' });
    assert.equal(headers[':status'], 502);
    assert.match(String(headers['proxy-status']), /error=http_upgrade_failed/);
  },
);

test(
  'the echo server is a real WebSocket server: Node’s ' + 'own client talks to it through the HTTP/1.1 listener',
  async () => {
    const echo = await websocketEchoServer();
    cleanups.push(() => echo.close());
    const gw = await gateway(echo.address);
    const ws = new WebSocket(`${gw.h1.replace('http', 'ws')}/ws`);
    const got = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send('through h1');
      ws.onmessage = (e) => resolve(String(e.data));
      ws.onerror = () => reject(new Error('WebSocket failed'));
    });
    assert.equal(got, 'echo:through h1');
    ws.close(1000);
    await new Promise((r) => {
      ws.onclose = r;
    });
  },
);

test(
  'a shutdown does not wait forever on a WebSocket ' + 'over HTTP/2: GOAWAY, then the drain timeout ends it',
  async () => {
    const echo = await websocketEchoServer();
    cleanups.push(() => echo.close());
    const gw = await gateway(echo.address, { drainTimeout: '500ms' });
    const s = await session(gw.h2c);
    let goaway = false;
    s.on('goaway', () => {
      goaway = true;
    });
    const { stream } = await openWebSocket(s, '/ws');
    const ws = new WsClient(stream);
    ws.send('still here');
    assert.ok(await ws.until(() => ws.texts().length === 1));
    const started = Date.now();
    await gw.close();
    const took = Date.now() - started;
    assert.ok(took < 3000, `the gateway stopped in ${took} ms`);
    assert.equal(goaway, true, 'the client was told to go away first');
    assert.ok(await ws.until(() => ws.ended, 2000), 'and the tunnel was ended');
  },
);
