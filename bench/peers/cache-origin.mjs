// The cache benchmark's origin: 1 KiB answers that caches may keep (Cache-Control: max-age
// from the path's ?ttl=, default an hour), /cold answered after 300 ms, and a count of the
// requests it received per path at /__count (so the benchmark can see what reached it).
// Usage: cache-origin.mjs PORT
import { createServer } from 'node:http';

const body = Buffer.alloc(1024, 'a');
const counts = new Map();
createServer((req, res) => {
  const url = new URL(req.url, 'http://origin');
  if (url.pathname === '/__count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(Object.fromEntries(counts)));
    return;
  }
  counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1);
  const ttl = url.searchParams.get('ttl') ?? '3600';
  const answer = () => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'cache-control': `public, max-age=${ttl}`,
      etag: '"one"',
    });
    res.end(body);
  };
  if (url.pathname === '/cold') setTimeout(answer, 300);
  else answer();
}).listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
