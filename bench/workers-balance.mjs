/**
 * How evenly two worker processes share keep-alive load: node:cluster's round-robin (the
 * primary accepts and hands each connection on) against SO_REUSEPORT (each worker accepts
 * from its own socket; the kernel picks one per connection). Two plain node:http workers
 * answer "ok"; wrk drives 64 keep-alive connections for 3 s; each worker counts its requests
 * and connections. docs/workers.md has the numbers and the choice.
 *
 * Usage: node bench/workers-balance.mjs cluster|reuseport PORT   (needs wrk)
 */
import { execFile } from 'node:child_process';
import cluster from 'node:cluster';
import http from 'node:http';
import { promisify } from 'node:util';

const mode = process.argv[2];
const port = Number(process.argv[3]);
if (cluster.isPrimary) {
  const counts = [];
  const workers = [0, 1].map((i) => {
    const w = cluster.fork({ MODE: mode, PORT: String(port) });
    w.on('message', (m) => {
      if (m.count !== undefined) counts[i] = m.count;
    });
    return w;
  });
  let up = 0;
  await new Promise((resolve) => {
    for (const w of workers)
      w.on('message', (m) => {
        if (m.up && ++up === 2) resolve();
      });
  });
  // Asynchronously: with node:cluster the primary itself accepts the connections.
  const out = (await promisify(execFile)('wrk', ['-t2', '-c64', '-d3s', `http://127.0.0.1:${port}/`])).stdout;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  for (const w of workers) w.send('count');
  await new Promise((r) => setTimeout(r, 300));
  const [a, b] = counts;
  console.log(
    `${mode}: ${rps} req/s; [requests, connections] per worker ${JSON.stringify(counts)}; ` +
      `first worker's share of requests ${(a[0] / (a[0] + b[0])).toFixed(3)}`,
  );
  for (const w of workers) w.kill();
} else {
  let requests = 0;
  let connections = 0;
  const server = http.createServer((_req, res) => {
    requests++;
    res.end('ok');
  });
  server.on('connection', () => connections++);
  const options = { port: Number(process.env.PORT), host: '127.0.0.1' };
  // exclusive: bind this worker's own socket instead of asking the primary for its shared one.
  if (process.env.MODE === 'reuseport') Object.assign(options, { reusePort: true, exclusive: true });
  server.listen(options, () => process.send({ up: true }));
  process.on('message', (m) => {
    if (m === 'count') process.send({ count: [requests, connections] });
  });
}
