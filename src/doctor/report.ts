/**
 * How the doctor speaks: to a person, step by step as the ladder is climbed (colour on a
 * terminal unless NO_COLOR is set), then the verdict, the failing hop, the evidence and the
 * advice; or, with --json, one document for programs.
 */
import type { DoctorReport, Step } from './run.js';

export function colours(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): (code: number, s: string) => string {
  const on = stream.isTTY === true && !('NO_COLOR' in env) && env.TERM !== 'dumb';
  return (code, s) => (on ? `\u001b[${code}m${s}\u001b[0m` : s);
}

export function humanStep(s: Step, c: (code: number, s: string) => string): string {
  const mark = s.ok === null ? c(90, '–') : s.ok ? c(32, '✓') : c(31, '✗');
  const ms = s.ms === undefined || /\d ms\b/.test(s.detail) ? '' : c(90, ` ${s.ms.toFixed(0)} ms`);
  return `${mark} ${s.name.padEnd(12)}${s.detail}${ms}\n`;
}

/** A pause, said before it starts, aligned with the steps: "… waiting     5 s before attempt 2 of 3: …". */
export function humanWaiting(text: string, c: (code: number, s: string) => string): string {
  return `${c(90, '…')} ${'waiting'.padEnd(12)}${text}\n`;
}

export function humanVerdict(r: DoctorReport, c: (code: number, s: string) => string): string {
  const colour =
    r.verdict === 'ok'
      ? 32
      : r.verdict === 'transient' || r.verdict === 'unknown'
        ? 33
        : r.verdict.startsWith('service')
          ? 35
          : 31;
  let out = `\n${c(1, 'Verdict:')} ${c(colour, c(1, r.verdict))}\n${r.summary}\n`;
  if (r.failedAt) out += `${c(1, 'Failed at:')} ${r.failedAt}\n`;
  if (r.hops.length > 0) {
    out += `${c(1, 'Hops')} (from the service towards you):\n`;
    for (const h of r.hops)
      out += `  ${h.proxy}${h.error ? `  error=${h.error}` : ''}${h.status ? `  received-status=${h.status}` : ''}${h.details ? `  ${h.details}` : ''}\n`;
  }
  if (r.requestId) out += `${c(1, 'Request id')} (quote it to support): ${r.requestId}\n`;
  out += `${c(1, 'What to do:')}\n${r.advice.map((a) => `  • ${a}\n`).join('')}`;
  return out;
}

export function jsonReport(r: DoctorReport): string {
  return `${JSON.stringify(
    {
      url: r.url,
      verdict: r.verdict,
      summary: r.summary,
      failed_at: r.failedAt,
      steps: r.steps.map((s) => ({
        name: s.name,
        ok: s.ok,
        ms: s.ms === undefined ? undefined : Math.round(s.ms * 10) / 10,
        detail: s.detail,
      })),
      hops: r.hops.map((h) => ({ proxy: h.proxy, error: h.error, details: h.details, status: h.status })),
      advice: r.advice,
      request_id: r.requestId,
      retry_after: r.retryAfter,
      until: r.until,
      exit_code: r.exitCode,
    },
    null,
    2,
  )}\n`;
}
