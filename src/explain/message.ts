/**
 * Fills a catalogue text with numbers in the reader's language: `{name}` takes a value (a
 * number written the reader's way, "5,002" or "5.002"), and `{name, plural, one {# request}
 * other {# requests}}` picks the branch `Intl.PluralRules` gives for the count — so no page
 * says "1 errors", and a language with more forms (Polish "few", "many") can have them in
 * the operator's texts without a new key. The syntax is the plural subset of ICU
 * MessageFormat, which translators know; `=0 {…}` matches an exact count before the rules.
 */

export type MessageVars = Readonly<Record<string, string | number>>;

const rulesByLang = new Map<string, { plural: Intl.PluralRules; number: Intl.NumberFormat }>();

/** Plural rules and number format for `lang`; English ones for a tag Intl does not accept. */
export function numbersFor(lang: string): { plural: Intl.PluralRules; number: Intl.NumberFormat } {
  let r = rulesByLang.get(lang);
  if (r === undefined) {
    try {
      r = { plural: new Intl.PluralRules(lang), number: new Intl.NumberFormat(lang) };
    } catch {
      r = { plural: new Intl.PluralRules('en'), number: new Intl.NumberFormat('en') };
    }
    rulesByLang.set(lang, r);
  }
  return r;
}

export function formatMessage(lang: string, pattern: string, vars: MessageVars = {}): string {
  return fill(pattern, lang, vars, undefined);
}

function fill(pattern: string, lang: string, vars: MessageVars, hash: string | undefined): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '#' && hash !== undefined) {
      out += hash;
      i++;
      continue;
    }
    if (c !== '{') {
      out += c;
      i++;
      continue;
    }
    const end = closing(pattern, i);
    if (end < 0) {
      out += pattern.slice(i);
      break;
    }
    out += argument(pattern.slice(i + 1, end), pattern.slice(i, end + 1), lang, vars);
    i = end + 1;
  }
  return out;
}

/** `{name}` or `{name, plural, …}`; anything else, or an unknown name, is left as written. */
function argument(inner: string, whole: string, lang: string, vars: MessageVars): string {
  const simple = /^\s*(\w+)\s*$/.exec(inner);
  if (simple) {
    const v = vars[simple[1]!];
    return v === undefined ? whole : show(v, lang);
  }
  const plural = /^\s*(\w+)\s*,\s*plural\s*,/.exec(inner);
  const v = plural ? vars[plural[1]!] : undefined;
  if (plural === null || typeof v !== 'number') return whole;
  const branches = new Map<string, string>();
  const rest = inner.slice(plural[0].length);
  let i = 0;
  while (i < rest.length) {
    const selector = /^\s*(=\d+|\w+)\s*/.exec(rest.slice(i));
    if (selector === null || rest[i + selector[0].length] !== '{') break;
    const open = i + selector[0].length;
    const end = closing(rest, open);
    if (end < 0) break;
    branches.set(selector[1]!, rest.slice(open + 1, end));
    i = end + 1;
  }
  const { plural: rules, number } = numbersFor(lang);
  const branch = branches.get(`=${v}`) ?? branches.get(rules.select(v)) ?? branches.get('other');
  return branch === undefined ? whole : fill(branch, lang, vars, number.format(v));
}

/** Index of the `}` that closes the `{` at `open`, or -1. */
function closing(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function show(v: string | number, lang: string): string {
  return typeof v === 'number' ? numbersFor(lang).number.format(v) : v;
}
