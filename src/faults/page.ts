/**
 * The HTML error page for browsers: plain, self-contained (no external requests), and
 * honest about what failed and what to do.
 */

export interface ErrorPageFacts {
  status: number;
  title: string;
  explanation: string;
  advice: string;
  side: 'service' | 'client' | 'maintenance';
  requestId: string;
  retryAfter?: number;
  statusPage?: string;
  proxyStatus: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const SIDE_TEXT = {
  service: 'The problem is on our side, not yours.',
  client: 'The request itself could not be served as sent.',
  maintenance: 'This is planned maintenance.',
} as const;

export function renderErrorPage(f: ErrorPageFacts): string {
  const when = f.retryAfter !== undefined ? `<p>Please try again in ${f.retryAfter} second${f.retryAfter === 1 ? '' : 's'}.</p>` : '';
  const status = f.statusPage ? `<p><a href="${escapeHtml(f.statusPage)}">Service status</a></p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${f.status} ${escapeHtml(f.title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}
@media (prefers-color-scheme:dark){body{color:#eee;background:#141414}a{color:#8ab4ff}}
code{font-size:.9em}</style></head>
<body><main><h1>${escapeHtml(f.title)}</h1>
<p>${escapeHtml(f.explanation)}</p>
<p><strong>${SIDE_TEXT[f.side]}</strong> ${escapeHtml(f.advice)}</p>
${when}${status}
<p><small>Error ${f.status} · Request id <code>${escapeHtml(f.requestId)}</code> · ${escapeHtml(new Date().toISOString())}</small></p>
</main></body></html>
`;
}
