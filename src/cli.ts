#!/usr/bin/env node
/** The `gangway` executable: runs the command line (./cli/main.ts) on this process's arguments and streams. */
import { main } from './cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`gangway: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 70;
  },
);
