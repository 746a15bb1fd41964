/**
 * Response headers reach the client when the upstream sends them, not with the first body
 * byte: an event stream, a long poll or a report that answers 200 and then computes is not
 * "connecting…" through the gateway. Each event of a stream is forwarded as it arrives;
 * interim answers are relayed (103 Early Hints) or left out (102), never mistaken for the
 * answer; and answers without a body are unaffected. The access log has the time to first
 * byte beside the whole time.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { httpUpstream, minimalConfig, startGateway, type RunningGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The upstream for every scenario, by path. */
async function setup(): Promise<RunningGateway> {
  const up = await httpUpstream((req, res) => {
    switch (req.url) {
      case '/slow-body':
        // The head goes out at once; the body two seconds later.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        setTimeout(() => res.end('finally'), 2000);
        return;
      case '/events': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        res.flushHeaders();
        let n = 0;
        const timer = setInterval(() => {
          n++;
          res.write(`id: ${n}\ndata: ${Date.now()}\n\n`);
          if (n === 6) {
            clearInterval(timer);
            res.end();
          }
        }, 200);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case '/hints':
        res.writeEarlyHints({ link: ['</app.css>; rel=preload; as=style', '</app.js>; rel=preload; as=script'] });
        setTimeout(() => res.end('the page'), 150);
        return;
      case '/processing':
        res.writeProcessing();
        setTimeout(() => res.end('done at last'), 150);
        return;
      case '/no-content':
        res.writeHead(204).end();
        return;
      case '/not-modified':
        res.writeHead(304, { etag: '"v1"' }).end();
        return;
      default:
        res.setHeader('content-length', '5');
        res.end(req.method === 'HEAD' ? undefined : 'hello');
    }
  });
  const gw = await startGateway(minimalConfig([up.address]));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  return gw;
}

const gwReady = setup();

/** GET through the gateway; resolves at the response head with the time it took, and the whole body later. */
function timedGet(
  url: string,
): Promise<{ res: IncomingMessage; headMs: number; body: Promise<{ text: string; ms: number }> }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent: false }, (res) => {
      const headMs = performance.now() - started;
      const body = new Promise<{ text: string; ms: number }>((done) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => done({ text, ms: performance.now() - started }));
      });
      resolve({ res, headMs, body });
    })
      .on('error', reject)
      .end();
  });
}

/** Raw bytes for a raw request, until the connection closes. */
function rawTranscript(url: string, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(Number(new URL(url).port), '127.0.0.1');
    let got = '';
    s.on('data', (c) => {
      got += c.toString('latin1');
    });
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    s.write(payload);
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

test('headers then a 2 s pause: the client has the headers at once, the body when it comes', async () => {
  const gw = await gwReady;
  const { res, headMs, body } = await timedGet(`${gw.url}/slow-body`);
  assert.equal(res.statusCode, 200, 'the upstream answered 200');
  // 2 s would mean the head waited for the first body byte; a loaded machine still answers well under 1 s.
  assert.ok(headMs < 1000, `the headers arrived after ${headMs.toFixed(0)} ms, before the body`);
  const { text, ms } = await body;
  assert.equal(text, 'finally', 'the body arrives whole');
  assert.ok(ms >= 1900, `the body came when the upstream sent it (${ms.toFixed(0)} ms)`);
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/slow-body');
  assert.ok(line, 'the request was logged');
  assert.ok(Number(line.ttfb_ms) < 1000, `the access log's time to first byte is the head's: ${line.ttfb_ms} ms`);
  assert.ok(Number(line.ms) >= 1900, `and its time is the whole answer's: ${line.ms} ms`);
});

test('server-sent events are forwarded one by one, each as the upstream sends it', async (t) => {
  const gw = await gwReady;
  const { res, body } = await timedGet(`${gw.url}/events`);
  assert.equal(res.headers['content-type'], 'text/event-stream');
  const delays: number[] = [];
  let buffer = '';
  res.on('data', (c: Buffer) => {
    buffer += c.toString();
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const sentAt = Number(/^data: (\d+)$/m.exec(buffer.slice(0, end))?.[1]);
      delays.push(Date.now() - sentAt);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
    }
  });
  await body;
  t.diagnostic(`events arrived ${delays.join(', ')} ms after the upstream sent them`);
  assert.equal(delays.length, 6, 'every event arrived');
  // Buffered events would arrive 200 ms late or more (the gap between two events); loopback
  // forwarding takes a millisecond or two, and a busy machine may add some.
  for (const d of delays) assert.ok(d < 150, `an event arrived ${d} ms after it was sent`);
});

test('103 Early Hints are relayed before the answer, and the answer arrives intact', async () => {
  const gw = await gwReady;
  const transcript = await rawTranscript(gw.url, 'GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const hints = transcript.indexOf('HTTP/1.1 103 Early Hints');
  const answer = transcript.indexOf('HTTP/1.1 200 OK');
  assert.ok(hints === 0, `the client gets the hints first:\n${transcript}`);
  assert.ok(answer > hints, 'then the answer');
  const hintBlock = transcript.slice(hints, answer);
  assert.match(hintBlock, /link: <\/app\.css>; rel=preload; as=style/i, 'the hints carry the Link fields');
  assert.match(hintBlock, /<\/app\.js>; rel=preload; as=script/, 'both of them');
  assert.ok(transcript.endsWith('the page'), `the answer's body is intact:\n${transcript}`);
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/hints');
  assert.equal(line?.status, 200, 'the answer, not the hints, is what is logged');
  assert.equal(line?.failure, undefined, 'and nothing failed');
});

test('an HTTP/1.0 client gets no interim answer, only the final one', async () => {
  const gw = await gwReady;
  const transcript = await rawTranscript(gw.url, 'GET /hints HTTP/1.0\r\nHost: x\r\n\r\n');
  assert.ok(!transcript.includes(' 103 '), `no 1xx to an HTTP/1.0 client (RFC 9110 §15.2):\n${transcript}`);
  assert.match(transcript, /^HTTP\/1\.1 200 OK/, 'the answer comes');
  assert.ok(transcript.endsWith('the page'), 'whole');
});

test('102 Processing is left out and the answer after it arrives intact', async () => {
  const gw = await gwReady;
  const transcript = await rawTranscript(gw.url, 'GET /processing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(transcript, /^HTTP\/1\.1 200 OK/, `the first thing the client sees is the answer:\n${transcript}`);
  assert.ok(transcript.endsWith('done at last'), 'with its body');
});

test('answers without a body (204, 304, HEAD) are unaffected, and the connection stays usable', async () => {
  const gw = await gwReady;
  const transcript = await rawTranscript(
    gw.url,
    'GET /no-content HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /not-modified HTTP/1.1\r\nHost: x\r\nIf-None-Match: "v1"\r\n\r\n' +
      'HEAD /plain HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  const statuses = [...transcript.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [204, 304, 200, 200], `four answers on one connection, in order:\n${transcript}`);
  assert.match(transcript, /etag: "v1"/i, 'the 304 keeps its validator');
  assert.ok(transcript.endsWith('\r\n\r\nhello'), 'only the last GET carries a body');
  assert.equal(transcript.split('hello').length - 1, 1, 'the HEAD answer had none');
});
