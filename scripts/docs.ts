/** `npm run docs`: writes the generated reference pages under docs/. */
import { writeFileSync } from 'node:fs';
import { renderConfigurationReference } from '../src/config/reference.js';
import { renderFailuresReference } from '../src/explain/reference.js';
import { renderMetricsReference } from '../src/observe/reference.js';

const root = new URL('../docs/', import.meta.url);
writeFileSync(new URL('configuration.md', root), renderConfigurationReference());
writeFileSync(new URL('failures.md', root), renderFailuresReference());
writeFileSync(new URL('metrics.md', root), await renderMetricsReference());
process.stdout.write('docs/configuration.md, docs/failures.md and docs/metrics.md written\n');
