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
import { COMMAND_HELP, COMMAND_OPTIONS, GENERAL_HELP } from './cli-help.js';
import { VERSION } from './version.js';


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
  if (command === 'help' && positionals[1] !== undefined) {
    const help = COMMAND_HELP[positionals[1]];
    if (help === undefined) { process.stderr.write(`gangway: no command "${positionals[1]}"\nTry "gangway --help".\n`); return 2; }
    process.stdout.write(help);
    return 0;
  }
  if (values.help && command !== undefined && COMMAND_HELP[command] !== undefined) { process.stdout.write(COMMAND_HELP[command]); return 0; }
  if (values.help || command === undefined || command === 'help') { process.stdout.write(GENERAL_HELP); return 0; }
  const allowed = COMMAND_OPTIONS[command];
  if (allowed !== undefined) {
    const stray = Object.keys(values).find((k) => !allowed.includes(k) && k !== 'help' && k !== 'version');
    if (stray !== undefined) {
      process.stderr.write(`gangway ${command}: --${stray} is not an option of this command\nTry "gangway help ${command}".\n`);
      return 2;
    }
  }
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
