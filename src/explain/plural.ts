/**
 * Counts in the gateway's words. A text may hold `{count, plural, one {# minute} other {# minutes}}`
 * — ICU MessageFormat's plural, reduced to what a catalogue needs — and the case is chosen by
 * the language's own rules (Intl.PluralRules), so no language reads "1 minutes", and one with
 * more forms than English (Polish, Arabic…) can give each of them in an operator's texts. `#`
 * is the count, written the language's way; `=N` cases match one exact count. Plain `{name}`
 * placeholders are filled as before, and a placeholder without a value is left as written.
 */

/** A plural's cases by selector: 'one', 'other', '=0'…, each a text where `#` is the count. */
export type PluralCases = Readonly<Record<string, string>>;

const rulesByLang = new Map<string, Intl.PluralRules>();
const numbersByLang = new Map<string, Intl.NumberFormat>();

/** The language's plural rules; English's when Intl does not know the tag (an operator's own language). */
export function pluralRules(lang: string): Intl.PluralRules {
  let rules = rulesByLang.get(lang);
  if (rules === undefined) {
    try {
      rules = new Intl.PluralRules(lang);
    } catch {
      rules = new Intl.PluralRules('en');
    }
    rulesByLang.set(lang, rules);
  }
  return rules;
}

function formatCount(n: number, lang: string): string {
  let numbers = numbersByLang.get(lang);
  if (numbers === undefined) {
    try {
      numbers = new Intl.NumberFormat(lang);
    } catch {
      numbers = new Intl.NumberFormat('en');
    }
    numbersByLang.set(lang, numbers);
  }
  return numbers.format(n);
}

/** The case a count takes: an exact `=N`, else the language's category, else `other`. */
export function choosePlural(cases: PluralCases, n: number, lang: string): string {
  return cases[`=${n}`] ?? cases[pluralRules(lang).select(n)] ?? cases.other ?? '';
}

/** `raw` with its `{name}` and `{name, plural, …}` placeholders filled from `vars`, in `lang`. */
export function formatMessage(raw: string, lang: string, vars: Readonly<Record<string, string | number>>): string {
  if (!raw.includes('{')) return raw;
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const open = raw.indexOf('{', i);
    if (open < 0) break;
    const close = matchingBrace(raw, open);
    if (close < 0) break;
    out += raw.slice(i, open) + fillPlaceholder(raw.slice(open, close + 1), lang, vars);
    i = close + 1;
  }
  return out + raw.slice(i);
}

/**
 * The cases of `raw` when it is one plural of `name` and nothing else, for a page script that
 * counts by itself; a text without a plural becomes one `other` case with `{name}` as `#`.
 */
export function pluralCasesOf(raw: string, name: string): PluralCases {
  const whole = raw.trim();
  if (whole.startsWith('{') && matchingBrace(whole, 0) === whole.length - 1) {
    const plural = PLURAL_HEAD.exec(whole.slice(1, -1));
    if (plural !== null && plural[1] === name) {
      const cases = parseCases(whole.slice(1 + plural[0].length, -1));
      if (cases !== undefined) return cases;
    }
  }
  return { other: raw.split(`{${name}}`).join('#') };
}

const PLURAL_HEAD = /^\s*(\w+)\s*,\s*plural\s*,/;
const NAME = /^\s*(\w+)\s*$/;

/** One `{…}`: a value, a plural, or (unknown, or no value given) the text as written. */
function fillPlaceholder(braced: string, lang: string, vars: Readonly<Record<string, string | number>>): string {
  const inner = braced.slice(1, -1);
  const name = NAME.exec(inner);
  if (name !== null) return name[1]! in vars ? String(vars[name[1]!]) : braced;
  const plural = PLURAL_HEAD.exec(inner);
  if (plural === null || !(plural[1]! in vars)) return braced;
  const n = Number(vars[plural[1]!]);
  const cases = parseCases(inner.slice(plural[0].length));
  if (cases === undefined || !Number.isFinite(n)) return braced;
  return formatMessage(replaceCount(choosePlural(cases, n, lang), formatCount(n, lang)), lang, vars);
}

/** `one {…} other {…}`; undefined when it is not that shape. */
function parseCases(body: string): PluralCases | undefined {
  const cases: Record<string, string> = {};
  let i = 0;
  for (;;) {
    while (i < body.length && /\s/.test(body[i]!)) i++;
    if (i >= body.length) break;
    const selector = /^=?\w+/.exec(body.slice(i));
    if (selector === null) return undefined;
    i += selector[0].length;
    while (i < body.length && /\s/.test(body[i]!)) i++;
    if (body[i] !== '{') return undefined;
    const close = matchingBrace(body, i);
    if (close < 0) return undefined;
    cases[selector[0]] = body.slice(i + 1, close);
    i = close + 1;
  }
  return 'other' in cases ? cases : undefined;
}

/** `#` outside nested braces becomes the count (a `#` in a nested plural is that plural's). */
function replaceCount(text: string, count: string): string {
  let out = '';
  let depth = 0;
  for (const c of text) {
    if (c === '{') depth++;
    else if (c === '}') depth--;
    out += c === '#' && depth === 0 ? count : c;
  }
  return out;
}

/** The index of the `}` closing the `{` at `open`, or -1. */
function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}
