/**
 * Counters and histograms for the request hot path. prom-client hashes the label set on
 * every observation, even through a cached child; these keep one plain series object per
 * label set, so counting a request is a Map lookup and an addition. They plug into a
 * prom-client Registry (same text format), which reads them only when /metrics is scraped.
 */

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** The shape prom-client's Registry reads from a registered metric. */
export interface RegistrableMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: 'sum' };
  reset(): void;
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
  }
}

export class FastCounter implements RegistrableMetric {
  readonly type = 'counter' as const;
  readonly aggregator = 'sum' as const;
  private readonly series = new Map<string, CounterSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  /** The series for these label values (in labelNames order), created on first use. */
  with(...values: string[]): CounterSeries {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      s = new CounterSeries(labelsOf(this.labelNames, values));
      this.series.set(key, s);
    }
    return s;
  }

  /** Drops every series whose labels include all of `match` (a host gone for good). */
  forget(match: Labels): void {
    forgetMatching(this.series, match);
  }

  get() {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) values.push({ labels: s.labels, value: s.value });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class FastHistogram implements RegistrableMetric {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {}

  with(...values: string[]): HistogramSeries {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      s = new HistogramSeries(labelsOf(this.labelNames, values), this.bounds);
      this.series.set(key, s);
    }
    return s;
  }

  /** Drops every series whose labels include all of `match`. */
  forget(match: Labels): void {
    forgetMatching(this.series, match);
  }

  get() {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i]!;
        values.push({
          labels: { le: String(this.bounds[i]), ...s.labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      }
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

function forgetMatching(series: Map<string, { labels: Labels }>, match: Labels): void {
  for (const [key, s] of series) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) series.delete(key);
  }
}

function labelsOf(names: readonly string[], values: readonly string[]): Labels {
  const labels: Labels = {};
  for (let i = 0; i < names.length; i++) labels[names[i]!] = values[i] ?? '';
  return labels;
}
