/**
 * The generated reference pages match the schema and the taxonomy they come from; run
 * `npm run docs` after changing either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderConfigurationReference } from '../src/config/reference.js';
import { renderFailuresReference } from '../src/faults/reference.js';

const doc = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');

test('docs/configuration.md is up to date with the schema (npm run docs)', () => {
  assert.equal(doc('configuration.md'), renderConfigurationReference());
});

test('docs/failures.md is up to date with the taxonomy (npm run docs)', () => {
  assert.equal(doc('failures.md'), renderFailuresReference());
});
