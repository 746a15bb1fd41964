/**
 * The generated reference pages match the schema, the taxonomy and the metrics they come from; run
 * `npm run docs` after changing either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderConfigurationReference } from '../src/config/reference.js';
import { renderFailuresReference } from '../src/explain/reference.js';
import { renderMetricsReference } from '../src/observe/reference.js';

const doc = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');

test('docs/configuration.md is up to date with the schema (npm run docs)', () => {
  assert.equal(doc('configuration.md'), renderConfigurationReference());
});

test('docs/failures.md is up to date with the taxonomy (npm run docs)', () => {
  assert.equal(doc('failures.md'), renderFailuresReference());
});

test('docs/metrics.md is up to date with the metrics (npm run docs)', async () => {
  assert.equal(doc('metrics.md'), await renderMetricsReference());
});

test('the Grafana dashboard only queries metrics the gateway exports', async () => {
  const dashboard = JSON.parse(doc('grafana-dashboard.json')) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const metrics = await renderMetricsReference();
  const exported = new Set(
    [...metrics.matchAll(/\| `(gangway_[a-z_]+)` \| (\w+)/g)].flatMap(([, name, type]) =>
      type === 'histogram' ? [`${name!}_bucket`, `${name!}_sum`, `${name!}_count`] : [name!],
    ),
  );
  exported.add('gangway_nodejs_eventloop_lag_p99_seconds'); // prom-client's process metrics, prefixed
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      for (const [name] of target.expr.matchAll(/gangway_[a-z0-9_]+/g))
        assert.ok(exported.has(name), `panel "${panel.title}" queries ${name}, which is not exported`);
    }
  }
  assert.ok(dashboard.panels.length >= 10);
});
