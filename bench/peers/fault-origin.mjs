// An origin replica for npm run bench:faults. Usage: fault-origin.mjs PORT NAME [slow:MS | cut:BYTES]
// GET /small answers a short text; GET /blob a 2 MB file with a strong ETag and Range support.
// slow:MS delays every answer; cut:BYTES resets every /blob response after that many body bytes.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const [port, name, mode = 'ok'] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const delay = mode.startsWith('slow:') ? Number(mode.slice(5)) : 0;
const cutAt = mode.startsWith('cut:') ? Number(mode.slice(4)) : undefined;
const blob = Buffer.alloc(2 * 1000 * 1000);
for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
const etag = `"${createHash('sha256').update(blob).digest('hex').slice(0, 16)}"`;

createServer((req, res) => {
  req.resume();
  const answer = () => {
    if (req.url !== '/blob') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-host': name });
      res.end(`ok from ${name}\n`);
      return;
    }
    let [start, end, status] = [0, blob.length - 1, 200];
    const headers = { etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag)) {
      start = Number(range[1]);
      end = range[2] ? Number(range[2]) : end;
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${blob.length}`;
    }
    headers['content-length'] = String(end - start + 1);
    res.writeHead(status, headers);
    const part = blob.subarray(start, end + 1);
    if (cutAt === undefined || status === 206) {
      res.end(part);
      return;
    }
    res.write(part.subarray(0, cutAt), () => setTimeout(() => res.socket?.resetAndDestroy(), 5));
  };
  if (delay > 0) setTimeout(answer, delay);
  else answer();
}).listen(port, '127.0.0.1', () => process.send?.('ready'));
