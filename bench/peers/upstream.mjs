// The benchmark's origin when nginx is not installed: fixed bodies from memory.
// Usage: upstream.mjs PORT
import { createServer } from 'node:http';

const bodies = { '/1k': Buffer.alloc(1024, 'a'), '/1m': Buffer.alloc(1024 * 1024, 'b') };
createServer((req, res) => {
  const body = bodies[req.url] ?? Buffer.from('not found');
  res.writeHead(bodies[req.url] ? 200 : 404, {
    'content-type': 'application/octet-stream',
    'content-length': body.length,
  });
  res.end(body);
}).listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
