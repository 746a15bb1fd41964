// An origin with a fixed capacity for npm run bench:overload. Usage: capacity-origin.mjs PORT [SLOTS] [MS]
// It works on at most SLOTS requests at a time, MS each; every other request waits its turn in
// an unbounded first-come-first-served queue — as a thread pool or a database would make it.
import { createServer } from 'node:http';

const [port, slots = 8, ms = 20] = process.argv.slice(2).map(Number);
let busy = 0;
const waiting = [];

function work(res) {
  busy++;
  setTimeout(() => {
    if (!res.destroyed) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
      res.end('ok\n');
    }
    busy--;
    const next = waiting.shift();
    if (next) work(next);
  }, ms);
}

const server = createServer((req, res) => {
  req.resume();
  if (busy < slots) work(res);
  else waiting.push(res);
});
server.keepAliveTimeout = 60_000;
server.maxRequestsPerSocket = 0;
server.listen(port, '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => process.exit(0));
