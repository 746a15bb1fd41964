/**
 * The process overload guard: Node's own event-loop delay monitor, read every 100 ms. When
 * the loop was held up past the threshold in the last interval, the gateway is overloaded
 * (CPU saturated, a long GC, a blocking call) and new requests are shed at once with an
 * honest 503, instead of being accepted into a process that cannot answer them in time.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

const CHECK_EVERY_MS = 100;

export class EventLoopGuard {
  /** True while the last interval's worst delay was over the threshold. */
  overloaded = false;
  /** The worst delay of the last interval, in ms. */
  lastMaxMs = 0;
  private histogram: ReturnType<typeof monitorEventLoopDelay> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly thresholdMs: number,
    private readonly onChange: (overloaded: boolean, maxMs: number) => void,
  ) {}

  start(): void {
    if (this.thresholdMs <= 0 || this.histogram) return;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
    this.histogram = undefined;
  }

  private check(): void {
    const h = this.histogram!;
    this.lastMaxMs = h.max / 1e6;
    h.reset();
    const overloaded = this.lastMaxMs > this.thresholdMs;
    if (overloaded !== this.overloaded) {
      this.overloaded = overloaded;
      this.onChange(overloaded, this.lastMaxMs);
    }
  }
}
