// A replica for fault tests, run as its own process so a test can kill it, freeze it
// (SIGSTOP) and start it again on the same port. Usage: fault-host.mjs PORT NAME
// Answers every request with 200 and its name; counts requests and reports the count over IPC.
import { createServer } from 'node:http';

const [port, name] = [Number(process.argv[2]), process.argv[3]];
let served = 0;
createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    served++;
    res.writeHead(200, { 'content-type': 'text/plain', 'x-host': name });
    res.end(`served by ${name}\n`);
  });
}).listen(port, '127.0.0.1', () => process.send?.({ ready: true }));
process.on('message', (m) => {
  if (m === 'count') process.send?.({ served });
});
