/**
 * Picks the form of a gateway-made error body from the request's Accept header:
 * problem+json for programs that ask for JSON, HTML for browsers, plain text otherwise
 * (curl's `*\/*` gets text, which reads well in a terminal).
 */

export type ErrorBodyForm = 'problem' | 'html' | 'text';

export function chooseErrorForm(accept: string | undefined): ErrorBodyForm {
  if (!accept) return 'text';
  let json = 0;
  let html = 0;
  let text = 0;
  for (const part of accept.split(',')) {
    const [rawType, ...params] = part.split(';');
    const type = rawType!.trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') q = Number(v) || 0;
    }
    if (type === 'application/problem+json' || type === 'application/json' || type.endsWith('+json'))
      json = Math.max(json, q);
    else if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, q);
    else if (type === 'text/plain') text = Math.max(text, q);
  }
  if (json > 0 && json >= html && json >= text) return 'problem';
  if (html > 0 && html >= text) return 'html';
  return 'text';
}
