/**
 * Frees the read buffers of relayed bodies while they are young. Every socket read allocates a
 * buffer outside the JavaScript heap, and V8 frees it only when it collects the object that
 * holds it. Relaying a body allocates them at the speed of the network — hundreds of MiB a
 * second — while the JavaScript objects of a relay are few, so young collections (scavenges,
 * which would free those buffers for a fraction of a millisecond) come rarely, the buffers pile
 * up, and V8's limit on memory outside its heap starts full mark-compacts instead: measured with
 * 64 downloads of 1 MiB at once, 20–30 per 1,000 downloads, a third of the core between the main
 * thread and V8's marking threads, and the turns of the event loop they slow stretch some
 * downloads to three times the others.
 *
 * So after every COLLECT_EVERY bytes of bodies relayed (responses and streamed request bodies)
 * the gateway asks V8 for one young collection, in the check phase of the loop, after the turn's
 * I/O. Measured on the same load: full mark-compacts down to 2–9 per 1,000 downloads, downloads
 * per second about 1.5×, p99 down by a third to a half (docs/benchmarks.md, "Large bodies
 * and V8's collections"); 4 and 16 MiB did as well, 32 MiB let the mark-compacts back. Small answers
 * seldom reach the threshold between V8's own collections.
 *
 * V8 offers the collection only to code that asked for `--expose-gc`; the flag is set here for a
 * moment, only to take the function from a new context, so that the process's own global scope
 * gains no `gc`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes relayed between two young collections. */
export const COLLECT_EVERY = 8 * 1024 * 1024;
/**
 * The least time between two of them, whatever the rate: at 1 GB/s the bytes alone would ask
 * for 125 a second, each promoting the objects of requests under way a little early.
 */
const MIN_INTERVAL_MS = 10;

type Collector = (options: { type: 'minor' | 'major' }) => void;

const collectYoung = takeCollector();
let sinceCollection = 0;
let lastCollection = 0;
let scheduled = false;

/** A relayed body chunk of `bytes` was handed on (its read buffer is garbage from now on). */
export function bodyBytesRelayed(bytes: number): void {
  sinceCollection += bytes;
  if (sinceCollection < COLLECT_EVERY || scheduled || collectYoung === undefined) return;
  scheduled = true;
  setImmediate(collect);
}

function collect(): void {
  scheduled = false;
  const now = performance.now();
  // Too soon: the bytes stay counted, and the next chunk relayed asks again.
  if (now - lastCollection < MIN_INTERVAL_MS) return;
  sinceCollection = 0;
  lastCollection = now;
  collectYoung?.({ type: 'minor' });
}

function takeCollector(): Collector | undefined {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as Collector;
  } catch {
    // A runtime without the flag or the function: V8 collects on its own schedule, as before.
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
