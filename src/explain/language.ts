/**
 * Chooses the language of an error answer from `Accept-Language` (RFC 9110 §12.5.4): the
 * client's ranges by weight, each matched on its primary subtag ("de-AT" is served "de"),
 * among the languages the gateway has words for. English when nothing matches.
 */

export function chooseLanguage(acceptLanguage: string | undefined, available: ReadonlySet<string>): string {
  if (!acceptLanguage) return 'en';
  let best = 'en';
  let bestQ = 0;
  for (const part of acceptLanguage.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    if (!range) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k === 'q') q = Number(v);
    }
    if (!(q > bestQ)) continue;
    const primary = range.split('-')[0]!;
    if (available.has(range)) {
      best = range;
      bestQ = q;
    } else if (available.has(primary)) {
      best = primary;
      bestQ = q;
    }
  }
  return best;
}
