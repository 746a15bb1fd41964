/**
 * Recent attempt latencies of a pool (time to response headers), for the hedging delay:
 * a ring of the last samples, with the asked percentile recomputed every few dozen samples
 * rather than on every request.
 */

const SIZE = 512;
const RECOMPUTE_EVERY = 32;

export class LatencyWindow {
  private readonly samples = new Float64Array(SIZE);
  private count = 0;
  private sinceComputed = 0;
  private cached: number | undefined;

  constructor(private readonly percentile: number) {}

  record(ms: number): void {
    this.samples[this.count % SIZE] = ms;
    this.count++;
    this.sinceComputed++;
  }

  /** The percentile of recent samples in ms, or undefined while there are too few to tell. */
  value(): number | undefined {
    if (this.count < RECOMPUTE_EVERY) return undefined;
    if (this.cached === undefined || this.sinceComputed >= RECOMPUTE_EVERY) {
      const n = Math.min(this.count, SIZE);
      const sorted = this.samples.slice(0, n).sort();
      this.cached = sorted[Math.min(n - 1, Math.floor((n * this.percentile) / 100))]!;
      this.sinceComputed = 0;
    }
    return this.cached;
  }
}
