/**
 * How many requests an upstream pool may have waiting for an answer at once, learned from
 * its latency (a gradient controller, after Envoy's adaptive concurrency filter). Every
 * interval (two unloaded round trips, 25–100 ms) the median time-to-headers is compared with the pool's unloaded
 * latency (minRtt): while answers come about as fast as unloaded, the limit grows; when
 * they slow down — the hosts are queueing — it shrinks in proportion:
 *
 *   limit ← limit × clamp(minRtt × tolerance / rtt, 0.5, 2) + √limit
 *
 * The √limit term is the queue the hosts are allowed to keep so they never idle. A limit that
 * is not being used (under half of it in flight) is not grown, and drifts down to twice the
 * recent peak in flight.
 *
 * minRtt cannot be read off traffic that is already at the limit: a host that always has
 * a queue never shows its unloaded latency, and a minimum taken from loaded samples drifts
 * upwards with every window. So, as Envoy does, the controller probes: the limit drops to
 * half (at least `min`) until 30 answers, or 2 s, have been seen, and their median becomes
 * the new minRtt (between probes, a faster interval lowers it). The very first probe, with
 * nothing known, runs at the initial limit, so a restarted gateway does not shed a busy
 * pool's ordinary traffic. A limit at equilibrium keeps the hosts a little over capacity, so half
 * of it (or of what was in use, if less) leaves them unqueued. Probes come 1, 2, 4… s after start, then every
 * `probeInterval` (jittered): a short dip in throughput, paid so the limit cannot creep
 * upwards for good. Envoy probes at the minimum; halving sheds far less of a busy pool.
 */

const MIN_INTERVAL_MS = 25;
const MAX_INTERVAL_MS = 100;
const MAX_SAMPLES = 512;
const PROBE_SAMPLES = 30;
const PROBE_MAX_MS = 2000;
const MIN_GRADIENT = 0.25;
const MAX_GRADIENT = 2;
const PEAK_FADE = 0.99;
const UNUSED_SHRINK = 0.95;

export interface GradientLimitSettings {
  min: number;
  max: number;
  initial: number;
  /** How much slower than unloaded the answers may get before the limit shrinks (1.25: 25%). */
  tolerance: number;
  probeInterval: number;
}

export class GradientLimit {
  /** The limit in force, an integer; read on every admission. */
  current: number;
  /** The pool's unloaded time-to-headers, in ms; 0 until the first probe ends. */
  minRttMs = 0;
  /** The median time-to-headers of the last interval, in ms; 0 before any. */
  rttMs = 0;
  /** True while measuring minRtt at a reduced limit. */
  probing = true;
  private value: number;
  private readonly samples = new Float64Array(MAX_SAMPLES);
  private count = 0;
  private readonly probeSamples = new Float64Array(PROBE_SAMPLES);
  private probeCount = 0;
  private probeStartedAt = -1;
  private intervalStart = 0;
  private maxInFlight = 0;
  private nextProbeAt = 0;
  private probeGap = 1000;
  /** The most requests in flight during the last interval. */
  private lastInFlight = 0;
  /** The most in flight lately: each interval's peak, fading by 1% an interval. */
  private recentPeak = 0;

  constructor(private readonly settings: GradientLimitSettings) {
    this.value = Math.min(Math.max(settings.initial, settings.min), settings.max);
    this.current = settings.min === settings.max ? settings.max : Math.floor(this.value);
    if (settings.min === settings.max) this.probing = false;
  }

  /**
   * Takes over what a previous limit of the same pool learned (on reload), so a new
   * configuration neither sheds a busy pool's traffic nor floods a saturated one.
   */
  inheritFrom(previous: GradientLimit): void {
    if (!this.adaptive || !previous.adaptive || previous.minRttMs === 0) return;
    this.value = clamp(previous.value, this.settings.min, this.settings.max);
    this.minRttMs = previous.minRttMs;
    this.rttMs = previous.rttMs;
    this.nextProbeAt = previous.nextProbeAt;
    this.probeGap = previous.probeGap;
    this.lastInFlight = previous.lastInFlight;
    this.recentPeak = previous.recentPeak;
    this.probing = false;
    this.current = Math.floor(this.value);
  }

  /** A static limit (min = max) never changes. */
  get adaptive(): boolean {
    return this.settings.min !== this.settings.max;
  }

  /** Notes how many requests were in flight at an admission: a limit that is not used is not grown. */
  noteInFlight(n: number): void {
    if (n > this.maxInFlight) this.maxInFlight = n;
  }

  /** Records one answer's time to headers; returns true when the limit changed. */
  sample(ms: number, now: number): boolean {
    if (this.count < MAX_SAMPLES) this.samples[this.count++] = ms;
    if (this.probing) {
      if (this.probeStartedAt < 0) this.probeStartedAt = now;
      if (this.probeCount < PROBE_SAMPLES) this.probeSamples[this.probeCount++] = ms;
      // Before the first probe ends, the latest answer is the best guess the queue has.
      if (this.minRttMs === 0) this.rttMs = ms;
      if (this.probeCount >= PROBE_SAMPLES || now - this.probeStartedAt >= PROBE_MAX_MS) return this.endProbe(now);
      return false;
    }
    // An interval is two unloaded round trips (25–100 ms): a fast upstream is corrected sooner.
    const interval = Math.min(Math.max(2 * this.minRttMs, MIN_INTERVAL_MS), MAX_INTERVAL_MS);
    if (now - this.intervalStart < interval) return false;
    return this.update(now);
  }

  private update(now: number): boolean {
    const rtt = median(this.samples, this.count);
    // Between probes a faster interval than the last probe saw is the better estimate.
    if (rtt < this.minRttMs) this.minRttMs = rtt;
    const used = this.maxInFlight * 2 >= this.value;
    this.lastInFlight = this.maxInFlight;
    this.recentPeak = Math.max(this.maxInFlight, this.recentPeak * PEAK_FADE);
    this.rttMs = rtt;
    this.startInterval(now);
    // A static limit learns the latency all the same, for the queue's wait predictions.
    if (!this.adaptive) return false;
    const before = this.current;
    const gradient = Math.min(Math.max((this.minRttMs * this.settings.tolerance) / rtt, MIN_GRADIENT), MAX_GRADIENT);
    // A pool that never filled half its limit tells us nothing about a larger one.
    if (gradient < 1 || used) {
      this.value = clamp(this.value * gradient + Math.sqrt(this.value), this.settings.min, this.settings.max);
    } else {
      // Nor is an unused limit a measurement: it drifts down to twice the recent peak, so a
      // spike meets a limit near what the hosts were last seen to handle, not a stale guess.
      const floor = Math.max(this.settings.min, 2 * this.recentPeak + Math.sqrt(this.recentPeak));
      if (this.value > floor) this.value = Math.max(floor, this.value * UNUSED_SHRINK);
    }
    if (now >= this.nextProbeAt) {
      this.probing = true;
      this.probeStartedAt = now;
      this.probeCount = 0;
      this.current = this.probeLimit();
    } else {
      this.current = Math.floor(this.value);
    }
    return this.current !== before;
  }

  private endProbe(now: number): boolean {
    const before = this.current;
    this.minRttMs = median(this.probeSamples, this.probeCount);
    this.rttMs = this.minRttMs;
    this.probing = false;
    this.probeStartedAt = -1;
    this.probeCount = 0;
    const jitter = 0.85 + Math.random() * 0.3;
    this.nextProbeAt = now + this.probeGap * jitter;
    this.probeGap = Math.min(this.probeGap * 2, this.settings.probeInterval);
    this.startInterval(now);
    this.current = Math.floor(this.value);
    return this.current !== before;
  }

  private startInterval(now: number): void {
    this.count = 0;
    this.maxInFlight = 0;
    this.intervalStart = now;
  }

  /** Half the limit, or half of what was in use when that is less: a limit the pool never filled says nothing about where its hosts start to queue. */
  private probeLimit(): number {
    return Math.max(this.settings.min, Math.ceil(Math.min(this.value, this.lastInFlight || this.value) / 2));
  }
}

function clamp(v: number, min: number, max: number): number {
  return v < min ? min : Math.min(v, max);
}

function median(values: Float64Array, count: number): number {
  const sorted = values.slice(0, count).sort();
  return sorted[count >> 1]!;
}
