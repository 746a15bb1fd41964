#!/usr/bin/env node
/**
 * The `gangway` command: start a gateway from a configuration file, check one, print the
 * configuration's JSON Schema, or run the demo.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from './config/load.js';
import { configJsonSchema } from './config/schema.js';
import { createGateway } from './gateway.js';
import { watchConfigFile } from './server/config-watch.js';
import { runUntilSignalled } from './server/signals.js';
import { VERSION } from './version.js';

const HELP = `gangway ${VERSION} — an HTTP gateway that keeps 502s away from users and explains the ones it cannot prevent

Usage:
  gangway start -c FILE [--watch]
                            run the gateway on a configuration file; with --watch, reload
                            it whenever the file changes
  gangway check -c FILE     validate a configuration file (exit 0 when valid, 1 when not)
  gangway doctor URL [--json] [--resolver IP[:PORT]]... [--control URL] [--attempts N]
                            find out why URL fails: your network, DNS, proxy or VPN, or the
                            service (and which hop) — transient or persistent
  gangway schema            print the configuration's JSON Schema (for editors)
  gangway demo              run example upstreams and a gateway in front of them
  gangway --help | --version

Options:
  -c, --config FILE         the configuration file (YAML)
  -w, --watch               (start) reload when the configuration file changes
      --json                (doctor) one JSON document instead of the report
      --resolver IP[:PORT]  (doctor) also ask this DNS resolver; repeatable
      --control URL         (doctor) a URL known to work, to tell your network from the service
      --attempts N          (doctor) attempts before calling a failure persistent (default 3)
      --timeout DURATION    (doctor) per step (default 5s)

Doctor verdicts and exit codes: ok 0, transient 10, service-side 20, service-maintenance 21,
service-overloaded 22, your-network 30, your-dns 31, your-proxy-or-vpn 32, unknown 40;
a usage error exits 2.
  -h, --help                this help
  -v, --version             the version

Examples:
  gangway check -c gangway.yaml
  gangway start -c gangway.yaml
  gangway start -c /etc/gangway/gangway.yaml --watch
  gangway schema > gangway.schema.json
  gangway doctor https://music.example.com/api/tracks
  gangway doctor https://music.example.com/ --resolver 1.1.1.1 --control https://example.org/ --json

Signals (start): SIGTERM or SIGINT drain and stop; SIGHUP reloads the configuration file
(an invalid file is refused, its problems logged, and the running configuration kept).
POST /api/reload on the admin API does the same and answers with the problems.
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        watch: { type: 'boolean', short: 'w' },
        json: { type: 'boolean' },
        resolver: { type: 'string', multiple: true },
        control: { type: 'string' },
        attempts: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`gangway: ${(err as Error).message.split('\n')[0]}\nTry "gangway --help".\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) { process.stdout.write(`${VERSION}\n`); return 0; }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') { process.stdout.write(HELP); return 0; }
  if (positionals.length > 1 && !(command === 'doctor' && positionals.length === 2)) {
    process.stderr.write(`gangway: unexpected argument "${positionals[1]}"\nTry "gangway --help".\n`);
    return 2;
  }

  switch (command) {
    case 'schema':
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
      return 0;
    case 'check': {
      const file = requireConfig(values.config, 'check');
      if (file === undefined) return 2;
      try {
        const config = loadConfigFile(file);
        process.stdout.write(`${file}: valid (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}, ${Object.keys(config.upstreams).length} upstream${Object.keys(config.upstreams).length === 1 ? '' : 's'})\n`);
        return 0;
      } catch (err) {
        return reportConfigError(err);
      }
    }
    case 'start': {
      const file = requireConfig(values.config, 'start');
      if (file === undefined) return 2;
      return start(file, values.watch === true);
    }
    case 'doctor': {
      const { doctor } = await import('./doctor/command.js');
      return doctor(positionals[1], values);
    }
    case 'demo': {
      const { runDemo } = await import('./demo/run.js');
      return runDemo();
    }
    default:
      process.stderr.write(`gangway: unknown command "${command}"\nTry "gangway --help".\n`);
      return 2;
  }
}

function requireConfig(file: string | undefined, command: string): string | undefined {
  if (file === undefined) process.stderr.write(`gangway ${command}: a configuration file is needed: gangway ${command} -c FILE\n`);
  return file;
}

function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  throw err;
}

async function start(file: string, watchFile: boolean): Promise<number> {
  let config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    return reportConfigError(err);
  }
  let gateway;
  try {
    gateway = createGateway(config, { configFile: file });
  } catch (err) {
    return reportConfigError(err);
  }
  try {
    await gateway.listen();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`gangway: cannot listen: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}\n`);
    await gateway.close();
    return 1;
  }
  if (watchFile) watchConfigFile(gateway, file);
  return runUntilSignalled(gateway, file);
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`gangway: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 70;
});
