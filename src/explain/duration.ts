/**
 * Waits and clock times as a person reads them, in their language: "5 seconds", "about 5
 * minutes" rather than "298 s"; "2:02 AM UTC" rather than a time without its zone. The rounding
 * is one plain function that the error page's script carries too (as its source text), so the
 * countdown the page runs and the words the server wrote first can never disagree.
 */
import { text, textWithLanguage, type TextOverrides } from './catalogue.js';
import { pluralCasesOf, type PluralCases } from './plural.js';

export type DurationUnit = 'seconds' | 'minutes' | 'hours' | 'days';

/**
 * A wait rounded the way people say it: exact seconds under a minute (a countdown needs them),
 * then the nearest minute, hour or day, "about" unless it is exact. Self-contained on purpose:
 * the page script embeds `durationParts.toString()`.
 */
export function durationParts(seconds: number): { unit: DurationUnit; count: number; about: boolean } {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return { unit: 'seconds', count: s, about: false };
  if (s < 5400) {
    const m = Math.round(s / 60);
    return { unit: 'minutes', count: m, about: m * 60 !== s };
  }
  if (s < 129600) {
    const h = Math.round(s / 3600);
    return { unit: 'hours', count: h, about: h * 3600 !== s };
  }
  const d = Math.round(s / 86400);
  return { unit: 'days', count: d, about: d * 86400 !== s };
}

/** "5 seconds", "about 5 minutes", in `lang` (the catalogue's `duration.*` words). */
export function humanDuration(seconds: number, lang: string, overrides?: TextOverrides): string {
  const p = durationParts(seconds);
  const amount = text(lang, `duration.${p.unit}`, overrides, { count: p.count });
  return p.about ? text(lang, 'duration.about', overrides, { duration: amount }) : amount;
}

/** What a page script needs to say a duration itself: each unit's plural cases and their language, and "about". */
export interface DurationWords {
  units: Record<DurationUnit, { lang: string; cases: PluralCases }>;
  /** "about \u0000", the marker standing for the amount. */
  about: string;
}

export function durationWords(lang: string, overrides?: TextOverrides): DurationWords {
  const unit = (u: DurationUnit) => {
    const words = textWithLanguage(lang, `duration.${u}`, overrides);
    return { lang: words.lang, cases: pluralCasesOf(words.raw, 'count') };
  };
  return {
    units: { seconds: unit('seconds'), minutes: unit('minutes'), hours: unit('hours'), days: unit('days') },
    about: text(lang, 'duration.about', overrides, { duration: '\u0000' }),
  };
}

/** How a clock time is written: the hour and minute with the zone, and the day when it is not today. */
export function clockOptions(sameDay: boolean): Intl.DateTimeFormatOptions {
  return sameDay
    ? { hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }
    : { weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' };
}

const clocks = new Map<string, Intl.DateTimeFormat>();

/**
 * `at` as a clock time in `lang`, in UTC: the server does not know the reader's zone, so it
 * names the one it uses (the page's script rewrites it in the reader's own).
 */
export function clockTime(at: Date, lang: string, now: Date): string {
  const sameDay = at.toISOString().slice(0, 10) === now.toISOString().slice(0, 10);
  const key = `${lang} ${sameDay}`;
  let clock = clocks.get(key);
  if (clock === undefined) {
    try {
      clock = new Intl.DateTimeFormat(lang, { ...clockOptions(sameDay), timeZone: 'UTC' });
    } catch {
      clock = new Intl.DateTimeFormat('en', { ...clockOptions(sameDay), timeZone: 'UTC' });
    }
    clocks.set(key, clock);
  }
  return clock.format(at);
}
