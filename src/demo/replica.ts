/**
 * One replica of the demo streaming service behind Gangway: a catalogue JSON API with a
 * fixed capacity (a few requests at a time, like a real application server), generated
 * audio streamed at twice real time with Range support and a strong ETag (the same bytes on
 * every replica), and a small web player. Run as `node replica.js PORT NAME`.
 *
 * The demo's operator console sends it faults over IPC: slow (every answer 1.5 s late and
 * audio at a trickle), garbage (bytes that are not HTTP), reset (audio streams cut after
 * 64 KiB), storm (503 to everything), none. Kill and freeze come from outside (signals).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { renderPlayer } from './player.js';

export type ReplicaFault = 'none' | 'slow' | 'garbage' | 'reset' | 'storm';

const port = Number(process.argv[2] ?? 7001);
const name = process.argv[3] ?? `replica-${port}`;
let fault: ReplicaFault = 'none';
/** The demo console, which the player asks which replica streams its audio. */
let consoleUrl: string | undefined;

/** An audio stream this replica is sending, told to the demo so the console and player can show it. */
export interface OpenStream {
  /** The player's own id, from the audio URL's `listener` parameter. */
  listener: string;
  track: string;
  /** ms since the epoch. */
  since: number;
}
const openStreams = new Map<ServerResponse, OpenStream>();

function reportStreams(): void {
  if (process.connected) process.send?.({ streams: [...openStreams.values()] });
}

const RATE = 22_050;
/** Audio leaves at twice real time: the player keeps a buffer, and a stream is long enough to break. */
const BYTES_PER_SECOND = RATE * 2 * 2;
const CHUNK = 16 * 1024;
const API_SLOTS = 4;
const API_WORK_MS = 25;

/** A melody of sine notes as 16-bit mono WAV. */
function synthesise(notes: number[], noteSeconds: number): Buffer {
  const perNote = Math.round(RATE * noteSeconds);
  const samples = perNote * notes.length;
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVE', 8);
  wav.write('fmt ', 12);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(RATE, 24);
  wav.writeUInt32LE(RATE * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(samples * 2, 40);
  for (let n = 0; n < notes.length; n++) {
    for (let i = 0; i < perNote; i++) {
      const envelope = Math.min(1, i / 400, (perNote - i) / 400);
      const v =
        Math.sin((2 * Math.PI * notes[n]! * i) / RATE) * 0.6 + Math.sin((4 * Math.PI * notes[n]! * i) / RATE) * 0.2;
      wav.writeInt16LE(Math.round(v * envelope * 7000), 44 + (n * perNote + i) * 2);
    }
  }
  return wav;
}

const C = 261.63,
  D = 293.66,
  E = 329.63,
  F = 349.23,
  G = 392.0,
  A = 440.0,
  B = 493.88;
const tracks = [
  {
    id: 'morning',
    title: 'Morning Scale',
    notes: [C, D, E, F, G, A, B, C * 2, B, A, G, F, E, D].flatMap((n) => [n, n]),
    noteSeconds: 0.5,
  },
  {
    id: 'evening',
    title: 'Evening Arpeggio',
    notes: [C, E, G, C * 2, G, E, A / 2, C, E, A, E, C, F / 2, A / 2, C, F].flatMap((n) => [n, n, n]),
    noteSeconds: 0.4,
  },
].map((t) => {
  const audio = synthesise(t.notes, t.noteSeconds);
  const sha256 = createHash('sha256').update(audio).digest('hex');
  return {
    id: t.id,
    title: t.title,
    seconds: Math.round(t.notes.length * t.noteSeconds * 10) / 10,
    audio,
    sha256,
    etag: `"${sha256.slice(0, 16)}"`,
  };
});

const CATALOGUE = JSON.stringify(
  tracks.map(({ id, title, seconds, sha256, audio }) => ({
    id,
    title,
    seconds,
    bytes: audio.length,
    sha256,
    url: `/audio/${id}.wav`,
  })),
);
const CATALOGUE_ETAG = `"${createHash('sha256').update(CATALOGUE).digest('hex').slice(0, 16)}"`;

let busy = 0;
const waiting: Array<() => void> = [];
/** The catalogue API works on a few requests at a time, like a real application server. */
function withCapacity(work: () => void): void {
  const run = (): void => {
    busy++;
    setTimeout(() => {
      work();
      busy--;
      waiting.shift()?.();
    }, API_WORK_MS);
  };
  if (busy < API_SLOTS) run();
  else waiting.push(run);
}

function streamAudio(req: IncomingMessage, res: ServerResponse, body: Buffer, stream: OpenStream): void {
  openStreams.set(res, stream);
  reportStreams();
  res.once('close', () => {
    openStreams.delete(res);
    reportStreams();
  });
  let offset = 0;
  let sent = 0;
  const cutAt = fault === 'reset' ? 64 * 1024 : Infinity;
  const pace = (fault === 'slow' ? 8 : 1) * (CHUNK / BYTES_PER_SECOND) * 1000;
  const next = (): void => {
    if (res.destroyed) return;
    if (sent >= cutAt) {
      res.socket?.resetAndDestroy();
      return;
    }
    const chunk = body.subarray(offset, offset + CHUNK);
    offset += chunk.length;
    sent += chunk.length;
    if (offset >= body.length) {
      res.end(chunk);
      return;
    }
    res.write(chunk);
    setTimeout(next, pace);
  };
  req.socket.setNoDelay(true);
  next();
}

function streamOf(url: URL, track: string): OpenStream {
  return { listener: url.searchParams.get('listener') ?? '', track, since: Date.now() };
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://demo');
  if (url.pathname === '/healthz') {
    res.end('ok\n');
    return;
  }
  if (url.pathname === '/api/tracks') {
    // The catalogue changes rarely: caches may keep it ten seconds, and use it stale for half a
    // minute while they fetch a new one. Its ETag lets them revalidate without the body.
    res.setHeader('cache-control', 'public, max-age=10, stale-while-revalidate=30');
    res.setHeader('etag', CATALOGUE_ETAG);
    if (req.headers['if-none-match'] === CATALOGUE_ETAG) {
      res.writeHead(304).end();
      return;
    }
    withCapacity(() => {
      res.setHeader('content-type', 'application/json');
      res.end(CATALOGUE);
    });
    return;
  }
  if (url.pathname === '/api/whoami') {
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify({ replica: name, pid: process.pid, fault }));
    return;
  }
  const track = tracks.find((t) => url.pathname === `/audio/${t.id}.wav`);
  if (track) {
    res.setHeader('content-type', 'audio/wav');
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('etag', track.etag);
    res.setHeader('cache-control', 'no-cache');
    const size = track.audio.length;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (req.headers['if-range'] === undefined || req.headers['if-range'] === track.etag)) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
      if (req.method === 'HEAD') res.end();
      else streamAudio(req, res, track.audio.subarray(start, end + 1), streamOf(url, track.id));
      return;
    }
    res.writeHead(200, { 'content-length': size });
    if (req.method === 'HEAD') res.end();
    else streamAudio(req, res, track.audio, streamOf(url, track.id));
    return;
  }
  if (url.pathname === '/') {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(renderPlayer(name, consoleUrl));
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

createServer((req, res) => {
  req.resume();
  res.setHeader('x-replica', name);
  if (fault === 'garbage') {
    req.socket.end('\u0000\u00ffTHIS IS NOT HTTP\r\n\r\n');
    return;
  }
  if (fault === 'storm' && req.url !== '/healthz') {
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '2' }).end('overloaded\n');
    return;
  }
  if (fault === 'slow') {
    setTimeout(answer, 1500, req, res);
    return;
  }
  answer(req, res);
})
  .on('error', (err: NodeJS.ErrnoException) => {
    // The demo explains this to the person who ran it (which port, and how to choose others).
    process.send?.({ error: err.code ?? err.message }, () => process.exit(2));
  })
  .listen(port, '127.0.0.1', () => {
    process.send?.({ ready: port });
  });

process.on('message', (m: { fault?: ReplicaFault; console?: string }) => {
  if (m.fault) fault = m.fault;
  if (m.console) consoleUrl = m.console;
});
process.on('disconnect', () => process.exit(0));
