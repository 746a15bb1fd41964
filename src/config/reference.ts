/**
 * docs/configuration.md, generated from the configuration's JSON Schema (itself derived
 * from the zod schema), so the reference can never disagree with what the gateway accepts.
 */
import { configJsonSchema } from './schema.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  required?: string[];
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array' && s.items) return `list of ${typeOf(s.items)}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object')
    return 'map of name → object';
  return Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
}

function rows(s: JsonSchema, path: string, required: boolean, out: string[]): void {
  const hasChildren =
    s.properties ||
    (s.type === 'object' && typeof s.additionalProperties === 'object') ||
    (s.type === 'array' && s.items?.properties);
  const def =
    s.default === undefined ||
    (typeof s.default === 'object' && s.default !== null && Object.keys(s.default).length === 0)
      ? required
        ? '**required**'
        : ''
      : `\`${JSON.stringify(s.default)}\``;
  if (path)
    out.push(
      `| \`${path}\` | ${typeOf(s)} | ${def} | ${(s.description ?? s.items?.description ?? '').replace(/\|/g, '\\|')} |`,
    );
  if (!hasChildren) return;
  if (s.properties) {
    for (const [key, child] of Object.entries(s.properties))
      rows(child, path ? `${path}.${key}` : key, s.required?.includes(key) ?? false, out);
  } else if (s.type === 'object' && typeof s.additionalProperties === 'object') {
    rows({ ...s.additionalProperties, description: undefined, default: undefined }, `${path}.<name>`, false, out);
  } else if (s.items) {
    rows({ ...s.items, description: undefined, default: undefined }, `${path}[]`, false, out);
  }
}

export function renderConfigurationReference(): string {
  const schema = configJsonSchema() as JsonSchema;
  const out: string[] = [];
  rows(schema, '', true, out);
  return `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run docs\`; do not edit by hand. -->

Gangway reads one YAML file (\`gangway start -c FILE\`; check it first with \`gangway check -c FILE\`).
Durations are written like \`"250ms"\`, \`"2s"\`, \`"1m"\`; sizes like \`"16KiB"\`, \`"10MiB"\`.
Unknown fields are refused, and every problem is reported with file, line and field path.
\`gangway schema\` prints the JSON Schema for editors.

The smallest useful configuration:

\`\`\`yaml
listen: "127.0.0.1:8080"
admin: "127.0.0.1:9901"
upstreams:
  music:
    hosts: ["127.0.0.1:7001", "127.0.0.1:7002"]
routes:
  - match: { path: "/api" }
    upstream: music
\`\`\`

| field | type | default | meaning |
|---|---|---|---|
${out.join('\n')}
`;
}
