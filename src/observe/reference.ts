/**
 * docs/metrics.md, generated from the metrics a gateway registers: every family's name,
 * type, labels and help, as Prometheus scrapes them from /metrics.
 */
import { SUMMED_GAUGES, SUPERVISOR_FAMILIES } from '../workers/machine-metrics.js';
import { GatewayMetrics } from './metrics.js';

export async function renderMetricsReference(): Promise<string> {
  const none = {
    hostStates: () => [],
    poolSizes: () => [],
    gateStates: () => [],
    maintenanceStates: () => [],
    cacheStates: () => [],
    certificates: () => [],
  };
  const metrics = new GatewayMetrics(none, { processMetrics: false, statusStepMs: 5000, onIncident() {} });
  const families = (await metrics.registry.getMetricsAsJSON()) as unknown as Array<{
    name: string;
    type: string;
    help: string;
    values: unknown[];
  }>;
  const labelsOf = (name: string): string => {
    const m = metrics.registry.getSingleMetric(name) as unknown as { labelNames?: readonly string[] } | undefined;
    const names = m?.labelNames ?? [];
    return names.length ? names.map((l) => `\`${l}\``).join(', ') : '—';
  };
  const all = [
    ...families.map((f) => ({ ...f, labels: labelsOf(f.name) })),
    ...SUPERVISOR_FAMILIES.map((f) => ({ ...f, labels: '`worker`' })),
  ];
  const rows = all
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((f) => `| \`${f.name}\` | ${f.type} | ${f.labels} | ${f.help.replace(/\|/g, '\\|')} |`);
  const summed = [...SUMMED_GAUGES].map((n) => `\`${n}\``).join(', ');
  return `# Metrics

<!-- Generated from src/observe/metrics.ts by \`npm run docs\`; do not edit by hand. -->

Scraped from the admin listener at \`/metrics\` (Prometheus text format). Node.js process
metrics (CPU, memory, event-loop lag, GC) are also there, prefixed \`gangway_\`.
\`docs/grafana-dashboard.json\` is a dashboard built on these.

With \`workers\` above 1, /metrics speaks for the machine: counters and histograms are the sum
over the workers, and so are these gauges:
${summed}.
Every other gauge (the process metrics among them: memory, event-loop lag) has one series per
worker with a \`worker\` label, since a sum or an average of those would mislead. See
docs/workers.md.

| metric | type | labels | meaning |
|---|---|---|---|
${rows.join('\n')}
`;
}
