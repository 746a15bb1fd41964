/** `npm run docs`: writes the generated reference pages under docs/. */
import { writeFileSync } from 'node:fs';
import { renderConfigurationReference } from '../src/config/reference.js';
import { renderFailuresReference } from '../src/faults/reference.js';

const root = new URL('../docs/', import.meta.url);
writeFileSync(new URL('configuration.md', root), renderConfigurationReference());
writeFileSync(new URL('failures.md', root), renderFailuresReference());
process.stdout.write('docs/configuration.md and docs/failures.md written\n');
