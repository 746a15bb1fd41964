/**
 * Loads a configuration: reads the YAML file, validates it against the schema, then does
 * what the schema may not — applies the environment (GANGWAY_ADMIN_TOKEN) and reads the
 * files the configuration names. Every problem is reported as "file:line:column
 * field.path: message", never as a stack trace, so a person can go straight to the line
 * that is wrong.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type ConfigDocument, type GatewayConfig } from './schema.js';

export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  /** The field's path as written in the file, e.g. `routes[0].upstream`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  return p.path ? `${where} ${p.path}: ${p.message}` : `${where} ${p.message}`;
}

/** `routes[0].match.path` from ['routes', 0, 'match', 'path']. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** Reads, parses and loads a configuration file; `env` supplies GANGWAY_ADMIN_TOKEN. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new ConfigError([{ file, path: '', message: `cannot read the configuration: ${why}` }]);
  }
  return parseConfigText(text, file, env);
}

/** Parses YAML text (JSON is YAML too); `file` is only used to name the source in problems. */
export function parseConfigText(text: string, file = '<config>', env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  let value: unknown;
  try {
    // Building the value can still fail: an alias without its anchor, or so many aliases that
    // yaml suspects a resource-exhaustion attack.
    value = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  return validateConfig(value, file, { doc, lines }, env);
}

/** Marks a configuration that already passed validation, so it is not parsed twice. */
const VALIDATED = Symbol('gangway.validated');

/** Where a configuration came from, to point problems at lines. */
export interface ConfigSource {
  doc: Document;
  lines: LineCounter;
}

/**
 * Validates an already-parsed object (the library's entry point) and loads what it names; a
 * configuration that passed already is returned as it is. `env` supplies GANGWAY_ADMIN_TOKEN.
 */
export function validateConfig(
  value: unknown,
  file = '<config>',
  source?: ConfigSource,
  env: NodeJS.ProcessEnv = process.env,
): GatewayConfig {
  if (typeof value === 'object' && value !== null && VALIDATED in value) return value as unknown as GatewayConfig;
  const result = configSchema.safeParse(value);
  if (!result.success)
    throw new ConfigError(result.error.issues.flatMap(meantBranch).map((issue) => toProblem(issue, file, source)));
  const problems: ConfigProblem[] = [];
  const problem = (path: PropertyKey[], message: string): void => {
    problems.push(locatedProblem(path, message, file, source));
  };
  const doc: ConfigDocument = result.data;
  const adminToken = env.GANGWAY_ADMIN_TOKEN || doc.adminToken;
  if (doc.admin !== false && !isLoopback(doc.admin.host) && !adminToken) {
    // Anyone who can reach a non-loopback admin API could switch maintenance on.
    problem(
      ['admin'],
      `the admin API would listen on ${doc.admin.host}, beyond loopback, with no admin token: set adminToken or GANGWAY_ADMIN_TOKEN`,
    );
  }
  const files = new Map<string, string>();
  const template = doc.errors.page.template;
  if (template !== undefined) {
    try {
      files.set(template, readFileSync(template, 'utf8'));
    } catch (err) {
      problem(['errors', 'page', 'template'], `cannot read the template "${template}": ${(err as Error).message}`);
    }
  }
  // TLS files, by the path as written (relative to the configuration file).
  const readTlsFile = (path: string, at: PropertyKey[]): string | undefined => {
    if (files.has(path)) return files.get(path);
    const resolved = isAbsolute(path) || file === '<config>' ? path : join(dirname(file), path);
    try {
      const text = readFileSync(resolved, 'utf8');
      files.set(path, text);
      return text;
    } catch (err) {
      problem(at, `cannot read "${resolved}": ${(err as Error).message}`);
      return undefined;
    }
  };
  for (const [name, upstream] of Object.entries(doc.upstreams)) {
    for (const field of ['ca', 'cert', 'key'] as const) {
      const path = upstream.tls?.[field];
      if (path !== undefined) readTlsFile(path, ['upstreams', name, 'tls', field]);
    }
  }
  doc.listen.forEach((l, i) => {
    if (l.tls === undefined) return;
    if (l.tls.cert !== undefined && l.tls.key !== undefined) {
      const cert = readTlsFile(l.tls.cert, ['listen', i, 'tls', 'cert']);
      const key = readTlsFile(l.tls.key, ['listen', i, 'tls', 'key']);
      const refusal = cert === undefined || key === undefined ? undefined : certificateProblem(cert, key);
      if (refusal !== undefined) problem(['listen', i, 'tls', refusal.field], refusal.message);
    }
    l.tls.sni?.forEach((pair, j) => {
      const more = readTlsFile(pair.cert, ['listen', i, 'tls', 'sni', j, 'cert']);
      const moreKey = readTlsFile(pair.key, ['listen', i, 'tls', 'sni', j, 'key']);
      if (more === undefined || moreKey === undefined) return;
      const wrong = certificateProblem(more, moreKey);
      if (wrong !== undefined) problem(['listen', i, 'tls', 'sni', j, wrong.field], wrong.message);
    });
  });
  if (doc.listen.some((l) => l.tls?.acme !== undefined)) {
    // The storage directory, like every path in the file, is relative to the file.
    const storage =
      isAbsolute(doc.acme.storage) || file === '<config>'
        ? resolve(doc.acme.storage)
        : join(dirname(file), doc.acme.storage);
    const refusal = storageProblem(storage);
    if (refusal !== undefined) problem(['acme', 'storage'], refusal);
    doc.acme.storage = storage;
    if (doc.acme.ca !== undefined) {
      const pem = readTlsFile(doc.acme.ca, ['acme', 'ca']);
      if (pem !== undefined && !pem.includes('-----BEGIN CERTIFICATE-----'))
        problem(['acme', 'ca'], `"${doc.acme.ca}" holds no PEM certificate`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config: GatewayConfig = { ...doc, adminToken, files };
  Object.defineProperty(config, VALIDATED, { value: true, enumerable: false });
  return config;
}

/**
 * Why a listener's certificate cannot be served, if it cannot: not a PEM certificate, a key
 * that is not a key or does not belong to it, or a certificate outside its validity period.
 */
function certificateProblem(cert: string, key: string): { field: 'cert' | 'key'; message: string } | undefined {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    return { field: 'cert', message: `not a PEM certificate: ${(err as Error).message}` };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    return { field: 'key', message: `not a PEM private key: ${(err as Error).message}` };
  }
  if (!certificate.checkPrivateKey(privateKey))
    return {
      field: 'key',
      message: `this key does not belong to the certificate (${certificate.subject.replace(/\n/g, ', ')})`,
    };
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now)
    return { field: 'cert', message: `the certificate expired on ${new Date(certificate.validTo).toISOString()}` };
  if (Date.parse(certificate.validFrom) > now)
    return {
      field: 'cert',
      message: `the certificate is not valid before ${new Date(certificate.validFrom).toISOString()}`,
    };
  return undefined;
}

/**
 * Why ACME could not keep its files at `path`, if it could not: a file in the way, or no
 * right to write there (or to the nearest existing folder above it, where it will be made).
 */
function storageProblem(path: string): string | undefined {
  for (let at = path; ; at = dirname(at)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(at).isDirectory();
    } catch {
      if (dirname(at) === at) return `cannot create "${path}"`;
      continue;
    }
    if (!isDirectory)
      return `"${at}" is a file, not a directory: ACME keeps its account and certificates in a directory`;
    try {
      accessSync(at, constants.W_OK | constants.X_OK);
    } catch {
      return `cannot write to "${at}" (permission denied): ACME keeps its account and certificates there`;
    }
    return undefined;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

type Issue = z.core.$ZodIssue;

/** How far into the value a branch's problems reach; a wrong type at the top reaches least. */
function reach(issues: readonly Issue[]): number {
  let deepest = 0;
  for (const i of issues) {
    const nested = i.code === 'invalid_union' ? Math.max(0, ...i.errors.map(reach)) : 0;
    deepest = Math.max(deepest, i.path.length + (i.code === 'invalid_type' ? 0 : 0.5) + nested);
  }
  return deepest;
}

/**
 * A value that fits no branch of a union (a listener is an address or an object) is refused
 * with the problems of the branch it was meant for — the one whose problems reach deepest —
 * rather than zod's bare "Invalid input".
 */
function meantBranch(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const best = issue.errors.reduce((a, b) => (reach(b) > reach(a) ? b : a));
  if (reach(best) === 0) return [issue];
  return best.flatMap((i) => meantBranch({ ...i, path: [...issue.path, ...i.path] } as Issue));
}

function toProblem(issue: z.core.$ZodIssue, file: string, source?: ConfigSource): ConfigProblem {
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  } else if (issue.code === 'invalid_type' && message.endsWith('received undefined')) {
    message = 'is required';
  }
  return locatedProblem(
    issue.path as PropertyKey[],
    message,
    file,
    source,
    issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined,
  );
}

function locatedProblem(
  path: PropertyKey[],
  message: string,
  file: string,
  source?: ConfigSource,
  unknownKey?: string,
): ConfigProblem {
  const problem: ConfigProblem = { file, path: formatPath(path), message };
  if (source) {
    const pos = locate(source.doc, path, unknownKey);
    if (pos !== undefined) {
      const lc = source.lines.linePos(pos);
      problem.line = lc.line;
      problem.column = lc.col;
    }
  }
  return problem;
}

/** Offset of the deepest node on `path` that exists in the file (a missing field points at its parent). */
function locate(doc: Document, path: PropertyKey[], unknownKey?: string): number | undefined {
  const full = unknownKey === undefined ? path : [...path, unknownKey];
  for (let n = full.length; n >= 0; n--) {
    const keys = full.slice(0, n) as (string | number)[];
    if (n === full.length && unknownKey !== undefined) {
      // Point at the key itself, not its value.
      const parent = keys.length > 1 ? doc.getIn(keys.slice(0, -1), true) : doc.contents;
      const pair =
        isNode(parent) && 'items' in parent
          ? (parent.items as Array<{ key?: unknown }>).find(
              (p) => isNode(p.key) && (p.key as { value?: unknown }).value === unknownKey,
            )
          : undefined;
      if (pair && isNode(pair.key) && pair.key.range) return pair.key.range[0];
      continue;
    }
    const node = keys.length === 0 ? doc.contents : doc.getIn(keys, true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return undefined;
}
