// A gRPC service host for the gRPC tests (test/grpc.test.ts), run as its own process so a test
// can kill it for real (SIGKILL) mid-call. A real @grpc/grpc-js server, over h2c or TLS with the
// tests' localhost certificate. Usage: grpc-host.mjs NAME h2c|tls [CRASH_ON]
// — CRASH_ON, a comma-separated list of method names: on receiving a call of one of them, the
// host reports the call and kills itself before answering (a crash after the request was sent).
// Reports { ready, port } when listening and { call, name, metadata } for every call, over IPC.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CATALOGUE } from './grpc-service.mjs';

const [name, transport, crashList] = [process.argv[2], process.argv[3], process.argv[4] ?? ''];
const crashOn = new Set(crashList.split(',').filter(Boolean));
const tlsDir = join(import.meta.dirname, 'tls');

/** Reports a call to the test; a call of a crashing method kills the process once reported. */
function received(method, call) {
  const metadata = call.metadata.getMap();
  process.send?.({ call: method, name, metadata: { 'x-track': metadata['x-track'], te: metadata.te } });
  if (crashOn.has(method)) {
    // Give the report time to leave over IPC, with the call still unanswered.
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 20);
    return true;
  }
  return false;
}

const server = new grpc.Server();
server.addService(CATALOGUE, {
  Get(call, callback) {
    if (received('Get', call)) return;
    call.sendMetadata(new grpc.Metadata());
    const trailer = new grpc.Metadata();
    trailer.set('x-served-by', name);
    callback(null, { id: call.request.id, title: `track ${call.request.id}`, host: name }, trailer);
  },
  Charge(call, callback) {
    if (received('Charge', call)) return;
    callback(null, { id: call.request.id, title: 'charged', host: name });
  },
  Slow(call, callback) {
    if (received('Slow', call)) return;
    const timer = setTimeout(() => callback(null, { id: call.request.id, title: 'late', host: name }), 2000);
    call.on('cancelled', () => clearTimeout(timer));
  },
  Watch(call) {
    if (received('Watch', call)) return;
    const header = new grpc.Metadata();
    header.set('x-stream-host', name);
    call.sendMetadata(header);
    let n = 0;
    const timer = setInterval(() => {
      n++;
      call.write({ id: String(n), title: `update ${n}`, host: name });
      if (n === call.request.count) {
        clearInterval(timer);
        const trailer = new grpc.Metadata();
        trailer.set('x-stream-end', 'clean');
        call.end(trailer);
      }
    }, 40);
    call.on('cancelled', () => clearInterval(timer));
  },
  Chat(call) {
    if (received('Chat', call)) return;
    call.on('data', (m) => call.write({ id: m.id, title: `echo ${m.title}`, host: name }));
    call.on('end', () => call.end());
  },
});

const credentials =
  transport === 'tls'
    ? grpc.ServerCredentials.createSsl(null, [
        {
          private_key: readFileSync(join(tlsDir, 'localhost-key.pem')),
          cert_chain: readFileSync(join(tlsDir, 'localhost-cert.pem')),
        },
      ])
    : grpc.ServerCredentials.createInsecure();

server.bindAsync('127.0.0.1:0', credentials, (err, port) => {
  if (err) throw err;
  process.send?.({ ready: true, port });
});
