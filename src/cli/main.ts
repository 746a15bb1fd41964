/**
 * The `gangway` command line: start a gateway from a configuration file, check one, print the
 * configuration's JSON Schema, diagnose a URL, or run the demo. `main()` takes the arguments
 * and the streams to write to, and returns the exit code, so tests can run it in-process.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { configJsonSchema, type GatewayConfig } from '../config/schema.js';
import { createGateway } from '../gateway.js';
import { workerCount } from '../workers/count.js';
import { VERSION } from '../version.js';
import { COMMAND_HELP, COMMAND_OPTIONS, GENERAL_HELP } from './help.js';
import { runUntilSignalled } from './signals.js';
import { watchConfigFile } from './watch.js';

/** Where a command writes, and the environment it reads. */
export interface CommandIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

const PROCESS_IO: CommandIO = { stdout: process.stdout, stderr: process.stderr, env: process.env };

/** The options of every command; main() refuses those a command does not take. */
function parseOptions(argv: string[]) {
  return parseArgs({
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
}

export async function main(argv: string[], io: CommandIO = PROCESS_IO): Promise<number> {
  const { stdout, stderr } = io;
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (err) {
    stderr.write(`gangway: ${(err as Error).message.split('\n')[0]}\nTry "gangway --help".\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = positionals[0];
  if (command === 'help' && positionals[1] !== undefined) {
    const help = COMMAND_HELP[positionals[1]];
    if (help === undefined) {
      stderr.write(`gangway: no command "${positionals[1]}"\nTry "gangway --help".\n`);
      return 2;
    }
    stdout.write(help);
    return 0;
  }
  if (values.help && command !== undefined && COMMAND_HELP[command] !== undefined) {
    stdout.write(COMMAND_HELP[command]);
    return 0;
  }
  if (values.help || command === undefined || command === 'help') {
    stdout.write(GENERAL_HELP);
    return 0;
  }
  const allowed = COMMAND_OPTIONS[command];
  if (allowed !== undefined) {
    const stray = Object.keys(values).find((k) => !allowed.includes(k) && k !== 'help' && k !== 'version');
    if (stray !== undefined) {
      stderr.write(`gangway ${command}: --${stray} is not an option of this command\nTry "gangway help ${command}".\n`);
      return 2;
    }
  }
  // `gangway check FILE` means what `gangway check -c FILE` means (and the same for start).
  const takesFile = command === 'check' || command === 'start';
  if (takesFile && values.config === undefined && positionals.length === 2) values.config = positionals.pop();
  if (positionals.length > 1 && !(command === 'doctor' && positionals.length === 2)) {
    stderr.write(`gangway: unexpected argument "${positionals[1]}"\nTry "gangway --help".\n`);
    return 2;
  }

  switch (command) {
    case 'schema':
      stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return 0;
    case 'check': {
      const file = requireConfig(values.config, 'check', io);
      if (file === undefined) return 2;
      try {
        const config = loadConfigFile(file, io.env);
        stdout.write(
          `${file}: valid (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}, ${Object.keys(config.upstreams).length} upstream${Object.keys(config.upstreams).length === 1 ? '' : 's'})\n`,
        );
        return 0;
      } catch (err) {
        return reportConfigError(err, io);
      }
    }
    case 'start': {
      const file = requireConfig(values.config, 'start', io);
      if (file === undefined) return 2;
      return start(file, values.watch === true, io);
    }
    case 'doctor': {
      const { doctor } = await import('../doctor/command.js');
      return doctor(positionals[1], values, io);
    }
    case 'demo': {
      const { runDemo } = await import('../demo/run.js');
      return runDemo();
    }
    default:
      stderr.write(`gangway: unknown command "${command}"\nTry "gangway --help".\n`);
      return 2;
  }
}

function requireConfig(file: string | undefined, command: string, io: CommandIO): string | undefined {
  if (file === undefined)
    io.stderr.write(`gangway ${command}: a configuration file is needed: gangway ${command} -c FILE\n`);
  return file;
}

function reportConfigError(err: unknown, io: CommandIO): number {
  if (err instanceof ConfigError) {
    io.stderr.write(`${err.message}\n`);
    return 1;
  }
  throw err;
}

async function start(file: string, watchFile: boolean, io: CommandIO): Promise<number> {
  // A worker forked by the supervisor runs the same command; node:cluster tells it apart.
  if (cluster.isWorker) {
    const { runWorker } = await import('../workers/worker.js');
    return runWorker(file, io);
  }
  let config: GatewayConfig;
  try {
    config = loadConfigFile(file, io.env);
  } catch (err) {
    return reportConfigError(err, io);
  }
  const workers = workerCount(config.workers, availableParallelism());
  if (workers > 1) {
    const { runSupervisor } = await import('../workers/supervisor.js');
    return runSupervisor(file, config, workers, watchFile, io);
  }
  const gateway = createGateway(config, { configFile: file });
  try {
    await gateway.listen();
  } catch (err) {
    io.stderr.write(`gangway: ${(err as Error).message}; see ${file}\n`);
    await gateway.close();
    return 1;
  }
  if (watchFile) watchConfigFile(gateway, file);
  return runUntilSignalled(gateway);
}
