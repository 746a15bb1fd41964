/**
 * The `gangway doctor` command: reads its options, climbs the ladder with progress on a
 * terminal, prints the report (or JSON) and exits with the verdict's code.
 */
import type { CommandIO } from '../cli/main.js';
import { parseDuration } from '../config/units.js';
import { colours, humanStep, humanVerdict, humanWaiting, jsonReport } from './report.js';
import { runDoctor } from './run.js';

interface DoctorFlags {
  json?: boolean;
  resolver?: string[];
  control?: string;
  attempts?: string;
  timeout?: string;
}

export async function doctor(target: string | undefined, flags: DoctorFlags, io: CommandIO): Promise<number> {
  const { stdout } = io;
  const usage = (msg: string): number => {
    io.stderr.write(`gangway doctor: ${msg}\nTry "gangway help doctor".\n`);
    return 2;
  };
  if (target === undefined) return usage('a URL is needed: gangway doctor https://example.com/');
  // Without a scheme, https comes first, as in a browser's address bar; run.ts falls back to
  // http only when the server turns out to speak plain HTTP.
  const schemeAssumed = !target.includes('://');
  let url: URL;
  try {
    url = new URL(schemeAssumed ? `https://${target}` : target);
  } catch {
    return usage(`"${target}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return usage(`only http:// and https:// URLs can be checked, not ${url.protocol}`);
  let control: URL | undefined;
  if (flags.control !== undefined) {
    try {
      control = new URL(flags.control);
    } catch {
      return usage(`--control "${flags.control}" is not a URL`);
    }
  }
  const attempts = flags.attempts === undefined ? 3 : Number(flags.attempts);
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 10)
    return usage('--attempts is a whole number from 1 to 10');
  const timeoutMs = flags.timeout === undefined ? 5000 : parseDuration(flags.timeout);
  if (timeoutMs === null || timeoutMs <= 0)
    return usage(`--timeout "${flags.timeout}" is not a duration (write it like "3s")`);
  for (const r of flags.resolver ?? [])
    if (!/^[0-9a-fA-F:.[\]]+$/.test(r))
      return usage(`--resolver "${r}" is not an address (write it like 1.1.1.1 or 127.0.0.1:5353)`);

  const c = colours(stdout, io.env);
  const assumed = schemeAssumed
    ? c(90, ' (no scheme given: https first, then http if the server speaks only that)')
    : '';
  if (!flags.json) stdout.write(`${c(1, 'gangway doctor')} ${url.href}${assumed}\n\n`);
  // With --json, stdout is one document; a person at a terminal still hears why it is waiting.
  const stderrTTY = (io.stderr as { isTTY?: boolean }).isTTY === true;
  const report = await runDoctor(
    url,
    { resolvers: flags.resolver ?? [], control, attempts, timeoutMs, maxBackoffMs: 5000, env: io.env, schemeAssumed },
    flags.json
      ? { waiting: stderrTTY ? (text) => io.stderr.write(`gangway doctor: waiting ${text}\n`) : undefined }
      : { step: (s) => stdout.write(humanStep(s, c)), waiting: (text) => stdout.write(humanWaiting(text, c)) },
  );
  stdout.write(flags.json ? jsonReport(report) : humanVerdict(report, c));
  return report.exitCode;
}
