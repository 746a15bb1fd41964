/**
 * One replica of the example streaming service the demo runs behind Gangway: a catalogue
 * JSON API and generated audio served with Range support and a strong ETag.
 * Run as `node replica.js PORT NAME`.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 7001);
const name = process.argv[3] ?? `replica-${port}`;

/** A few seconds of a sine tone as 16-bit mono WAV, the same bytes on every replica. */
function synthesise(seconds: number, hz: number): Buffer {
  const rate = 22_050;
  const samples = rate * seconds;
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0); wav.writeUInt32LE(36 + samples * 2, 4); wav.write('WAVE', 8);
  wav.write('fmt ', 12); wav.writeUInt32LE(16, 16); wav.writeUInt16LE(1, 20); wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(rate, 24); wav.writeUInt32LE(rate * 2, 28); wav.writeUInt16LE(2, 32); wav.writeUInt16LE(16, 34);
  wav.write('data', 36); wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) wav.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * 8000), 44 + i * 2);
  return wav;
}

const tracks = [
  { id: 'a440', title: 'Concert A', seconds: 5, hz: 440 },
  { id: 'e330', title: 'Low E', seconds: 5, hz: 330 },
].map((t) => {
  const audio = synthesise(t.seconds, t.hz);
  return { ...t, audio, etag: `"${createHash('sha256').update(audio).digest('hex').slice(0, 16)}"` };
});

createServer((req, res) => {
  res.setHeader('x-replica', name);
  const url = new URL(req.url ?? '/', 'http://demo');
  if (url.pathname === '/api/tracks') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(tracks.map(({ id, title, seconds }) => ({ id, title, seconds, url: `/audio/${id}.wav` }))));
    return;
  }
  if (url.pathname === '/api/whoami') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ replica: name, pid: process.pid }));
    return;
  }
  const track = tracks.find((t) => url.pathname === `/audio/${t.id}.wav`);
  if (track) {
    res.setHeader('content-type', 'audio/wav');
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('etag', track.etag);
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const size = track.audio.length;
    if (range && (req.headers['if-range'] === undefined || req.headers['if-range'] === track.etag)) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
      res.end(req.method === 'HEAD' ? undefined : track.audio.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-length': size });
    res.end(req.method === 'HEAD' ? undefined : track.audio);
    return;
  }
  if (url.pathname === '/') {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gangway demo</title></head><body>
<h1>Gangway demo — served by ${name}</h1>
<ul>${tracks.map((t) => `<li>${t.title}: <audio controls src="/audio/${t.id}.wav"></audio></li>`).join('')}</ul>
<p><a href="/api/tracks">/api/tracks</a> · <a href="/api/whoami">/api/whoami</a></p></body></html>`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}).listen(port, '127.0.0.1', () => {
  process.send?.({ ready: port });
});
