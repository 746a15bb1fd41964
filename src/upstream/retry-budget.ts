/**
 * The retry budget of an upstream: retries (and, later, hedges) may add at most a share of
 * the requests seen over the last 10 seconds, plus a small allowance per second. When every
 * host is failing, this is what keeps the gateway from multiplying the load on a fleet that
 * is trying to recover.
 */

const WINDOW_SECONDS = 10;

export class RetryBudget {
  private readonly requests = new Float64Array(WINDOW_SECONDS);
  private readonly retries = new Float64Array(WINDOW_SECONDS);
  private second = 0;

  constructor(
    private readonly ratio: number,
    private readonly minPerSecond: number,
  ) {}

  recordRequest(now = Date.now()): void {
    this.requests[this.slot(now)]!++;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryAcquire(now = Date.now()): boolean {
    const slot = this.slot(now);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      requests += this.requests[i]!;
      retries += this.retries[i]!;
    }
    if (retries >= requests * this.ratio + this.minPerSecond * WINDOW_SECONDS) return false;
    this.retries[slot]!++;
    return true;
  }

  private slot(now: number): number {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      // Clear the seconds that passed since the last call (all of them after a long pause).
      const gap = Math.min(second - this.second, WINDOW_SECONDS);
      for (let k = 1; k <= gap; k++) {
        const i = (this.second + k) % WINDOW_SECONDS;
        this.requests[i] = 0;
        this.retries[i] = 0;
      }
      this.second = second;
    }
    return second % WINDOW_SECONDS;
  }
}
