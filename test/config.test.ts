/**
 * Configuration: the minimal form works, units read as people write them, and a bad file
 * is refused with file, line and field path — by the library and by `gangway check`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration, parseSize } from '../src/config/units.js';
import { ConfigError, configJsonSchema, parseConfigText } from '../src/index.js';
import { cli as runCli } from './support/cli.js';
const dir = mkdtempSync(join(tmpdir(), 'gangway-config-'));

const MINIMAL = `listen: "127.0.0.1:8080"
admin: "127.0.0.1:9901"
upstreams:
  music:
    hosts: ["127.0.0.1:7001", "127.0.0.1:7002"]
    timeouts: { connect: "1s", response: "10s", idle: "30s" }   # optional
routes:
  - match: { path: "/api" }        # path prefix; also host and methods
    upstream: music
`;

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'gangway.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err.message.split('\n');
  }
  assert.fail('the configuration was accepted');
}

const cli = (...args: string[]) => runCli(args);

test('the minimal configuration from the issue is valid, with every default filled in', () => {
  const config = parseConfigText(MINIMAL);
  assert.deepEqual(config.listen, [
    { address: { host: '127.0.0.1', port: 8080 }, tls: undefined, h2c: false, redirectToHttps: false },
  ]);
  const music = config.upstreams.music!;
  assert.deepEqual(
    music.hosts.map((h) => h.origin),
    ['http://127.0.0.1:7001', 'http://127.0.0.1:7002'],
  );
  assert.deepEqual(music.timeouts, { connect: 1000, response: 10_000, idle: 30_000, total: 0 });
  assert.equal(music.balance, 'p2c');
  assert.equal(config.routes[0]!.limits.body, 10 * 1024 * 1024);
  assert.equal(config.server.headerTimeout, 10_000);
});

test('durations and sizes read as people write them', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('2s'), 2000);
  assert.equal(parseDuration('1m'), 60_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration(300), 300);
  assert.equal(parseDuration('2 weeks'), null);
  assert.equal(parseSize('16KiB'), 16_384);
  assert.equal(parseSize('10MiB'), 10_485_760);
  assert.equal(parseSize('1MB'), 1_000_000);
  assert.equal(parseSize('lots'), null);
});

test('a route naming an unknown upstream is refused with file, line and field path', () => {
  const problems = problemsOf(MINIMAL.replace('upstream: music', 'upstream: nope'));
  assert.deepEqual(problems, ['gangway.yaml:9:15 routes[0].upstream: no upstream named "nope" (known: "music")']);
});

test('bad values, unknown fields and missing fields each point at their line', () => {
  const problems = problemsOf(`upstreams:
  music:
    hosts: ["127.0.0.1:7001"]
    timeouts: { connect: "1 sec" }
    balence: p2c
routes:
  - match: { path: "api" }
`);
  assert.ok(
    problems.includes(
      'gangway.yaml:4:26 upstreams.music.timeouts.connect: "1 sec" is not a duration (write it like "250ms", "2s" or "1m")',
    ),
    problems.join('\n'),
  );
  assert.ok(problems.includes('gangway.yaml:5:5 upstreams.music: unknown field "balence"'), problems.join('\n'));
  assert.ok(
    problems.includes('gangway.yaml:7:20 routes[0].match.path: a path prefix starts with "/"'),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('gangway.yaml:7:5 routes[0].upstream: ')),
    problems.join('\n'),
  );
});

test('broken YAML is reported with its position, not a stack trace', () => {
  const problems = problemsOf('upstreams:\n  music: [\n');
  assert.match(problems[0]!, /^gangway\.yaml:\d+:\d+ YAML: /);
});

test('the JSON Schema describes the file a person writes', () => {
  const schema = configJsonSchema() as { properties: Record<string, { description?: string }>; required?: string[] };
  assert.ok(schema.properties.upstreams && schema.properties.routes && schema.properties.listen);
  assert.match(String(schema.properties.listen!.description), /127\.0\.0\.1:8080.*tls: \{ cert, key \}/);
  assert.deepEqual(schema.required?.sort(), ['routes', 'upstreams']);
});

test('gangway check: exit 0 for a valid file, 1 with file:line field messages for a bad one, 2 for misuse', async () => {
  const good = join(dir, 'good.yaml');
  writeFileSync(good, MINIMAL);
  const ok = await cli('check', '-c', good);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /valid \(1 route, 1 upstream\)/);
  const bare = await cli('check', good);
  assert.equal(bare.code, 0, 'the file may also be given without -c');
  assert.equal(bare.stdout, ok.stdout);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, MINIMAL.replace('upstream: music', 'upstream: nope'));
  const refused = await cli('check', '-c', bad);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `${bad}:9:15 routes[0].upstream: no upstream named "nope" (known: "music")\n`);

  const missing = await cli('check', '-c', join(dir, 'absent.yaml'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /absent\.yaml cannot read the configuration: no such file/);

  const unknownFlag = await cli('check', '--frobnicate');
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /^gangway: Unknown option '--frobnicate'/);
  assert.equal(unknownFlag.stderr.split('\n').length, 3, 'one line and a hint, no stack trace');
});

test('gangway --version, --help and schema', async () => {
  const version = await cli('--version');
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const help = await cli('--help');
  assert.match(help.stdout, /gangway start \[-c\] FILE/);
  assert.match(help.stdout, /Examples:/);
  const schema = await cli('schema');
  assert.equal((JSON.parse(schema.stdout) as { title: string }).title, 'Gangway configuration');
});

test('every command has its own help with examples; an option of another command is refused in one line', async () => {
  for (const command of ['start', 'check', 'doctor', 'demo', 'schema']) {
    const viaHelp = await cli('help', command);
    const viaFlag = await cli(command, '--help');
    assert.equal(viaHelp.code, 0);
    assert.equal(viaFlag.stdout, viaHelp.stdout, `${command} --help is gangway help ${command}`);
    assert.match(viaHelp.stdout, new RegExp(`^gangway ${command}`));
    assert.match(viaHelp.stdout, /\nExamples?:\n {2}gangway /, `${command} shows examples`);
  }
  const general = await cli('--help');
  for (const command of ['start', 'check', 'doctor', 'demo', 'schema'])
    assert.match(general.stdout, new RegExp(`gangway ${command}`));
  const stray = await cli('start', '-c', 'x.yaml', '--json');
  assert.equal(stray.code, 2);
  assert.equal(stray.stderr, 'gangway start: --json is not an option of this command\nTry "gangway help start".\n');
  const unknown = await cli('help', 'frobnicate');
  assert.equal(unknown.code, 2);
});

test('gangway start with a port taken names the address and which listener it is, and exits 1', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as AddressInfo).port;
  try {
    for (const [key, other] of [
      ['listen', 'admin'],
      ['admin', 'listen'],
    ] as const) {
      const file = join(dir, `taken-${key}.yaml`);
      writeFileSync(
        file,
        MINIMAL.replace(/^listen: .*$/m, `listen: "127.0.0.1:${key === 'listen' ? port : 0}"`).replace(
          /^admin: .*$/m,
          `admin: "127.0.0.1:${key === 'admin' ? port : 0}"`,
        ),
      );
      const r = await runCli(['start', '-c', file]);
      assert.equal(r.code, 1);
      const which = key === 'listen' ? 'the main listener (`listen`)' : 'the admin listener (`admin`)';
      assert.ok(r.stderr.includes(`cannot listen on 127.0.0.1:${port} for ${which}`), r.stderr);
      assert.match(r.stderr, /already in use/);
      assert.ok(r.stderr.includes(file), 'it names the file to change');
      assert.ok(!r.stderr.includes(`(\`${other}\`)`));
    }
  } finally {
    taken.close();
  }
});

test('server.http2 has bounded defaults, and a bad value is refused with its line and field', () => {
  const config = parseConfigText(MINIMAL);
  assert.deepEqual(config.server.http2, { maxConcurrentStreams: 100, idleTimeout: 120_000, sendTimeout: 60_000 });
  const problems = problemsOf(`${MINIMAL}server:\n  http2: { maxConcurrentStreams: 0, sendTimeout: "soon" }\n`);
  assert.ok(
    problems.some((p) => /^gangway\.yaml:\d+:\d+ server\.http2\.maxConcurrentStreams: /.test(p)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => /server\.http2\.sendTimeout: "soon" is not a duration/.test(p)),
    problems.join('\n'),
  );
});
