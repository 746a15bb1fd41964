/**
 * Times as a person reads them: a clock time in this machine's time zone with the zone named,
 * and how far away it is ("14:35 CET (in 45 min)"), instead of an ISO stamp in UTC with
 * milliseconds that the reader has to convert in their head.
 */

const CLOCK = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
const DAY_AND_CLOCK = new Intl.DateTimeFormat('en-GB', {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  hour: '2-digit',
  minute: '2-digit',
  timeZoneName: 'short',
});

/** "14:35 CET (in 45 min)", or with the day when it is not today: "Tue 3 Dec, 09:00 CET (in 2 days)". */
export function whenInWords(at: Date, now = new Date()): string {
  const sameDay = at.toDateString() === now.toDateString();
  const clock = (sameDay ? CLOCK : DAY_AND_CLOCK).format(at);
  return `${clock} (in ${durationInWords((at.getTime() - now.getTime()) / 1000)})`;
}

/** A span of seconds rounded to what matters at its scale: "30 s", "45 min", "2 h 5 min", "3 days". */
export function durationInWords(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
  return `${Math.round(hours / 24)} days`;
}
