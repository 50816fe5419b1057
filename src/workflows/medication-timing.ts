/**
 * Dosage instructions in words (for the printed prescription and reminder messages) and the
 * reminder times a Dosage.timing gives.
 *
 * Reminder times (nextReminder): from timing.repeat
 * - timeOfDay ['08:00:00', '20:00:00']: every day at those times, in the server's local time zone
 *   (TZ of the process; CareBridge keeps no per-patient zone);
 * - else frequency per period periodUnit: every period/frequency, counted from the start of the
 *   bounds (boundsPeriod.start, else the request's authoredOn, else the first scheduling);
 * - bounds: boundsPeriod.end, or start + boundsDuration; no reminder after it. Without a period or
 *   timeOfDay there is nothing to remind of. Units mo and a are 30 and 365 days.
 */
import type { Dosage, Duration, Timing } from 'fhir/r4.js';

/** A table without a prototype: units and words come from resources, and `constructor` must not be found. */
const table = <T>(entries: Record<string, T>): Readonly<Record<string, T>> => Object.assign(Object.create(null) as Record<string, T>, entries);

const UNIT_MS = table({ s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000, wk: 7 * 86_400_000, mo: 30 * 86_400_000, a: 365 * 86_400_000 });
const UNIT_WORDS = table({ s: 'second', min: 'minute', h: 'hour', d: 'day', wk: 'week', mo: 'month', a: 'year' });
const DURATION_CODES = table({ second: 's', seconds: 's', minute: 'min', minutes: 'min', hour: 'h', hours: 'h', day: 'd', days: 'd', week: 'wk', weeks: 'wk', month: 'mo', months: 'mo', year: 'a', years: 'a' });

function durationMs(d: Duration | undefined): number | undefined {
  if (d?.value === undefined) return undefined;
  const unit = d.code ?? DURATION_CODES[d.unit ?? ''] ?? d.unit;
  const ms = unit ? UNIT_MS[unit] : undefined;
  return ms === undefined ? undefined : d.value * ms;
}

/** One dosage instruction as a line of text: its text, else dose, route and timing in words. */
export function describeDosage(d: Dosage): string {
  if (d.text) return d.text;
  const parts: string[] = [];
  const dose = d.doseAndRate?.[0]?.doseQuantity;
  if (dose?.value !== undefined) parts.push(`${dose.value} ${dose.unit ?? dose.code ?? ''}`.trim());
  const route = d.route?.text ?? d.route?.coding?.[0]?.display;
  if (route) parts.push(route);
  const r = d.timing?.repeat;
  if (r?.period !== undefined && r.periodUnit) {
    const every = r.period === 1 ? UNIT_WORDS[r.periodUnit] : `${r.period} ${UNIT_WORDS[r.periodUnit]}s`;
    parts.push(`${r.frequency ?? 1} time${(r.frequency ?? 1) === 1 ? '' : 's'} per ${every}`);
  }
  if (r?.timeOfDay?.length) parts.push(`at ${r.timeOfDay.map((t) => t.slice(0, 5)).join(', ')}`);
  if (d.asNeededBoolean) parts.push('as needed');
  if (d.patientInstruction) parts.push(d.patientInstruction);
  return parts.join(', ') || 'as directed';
}

/** The bounds of a timing: [start, end) in epoch ms (end may be Infinity). */
export function timingBounds(timing: Timing, anchorIso: string): { start: number; end: number } {
  const r = timing.repeat;
  const start = Date.parse(r?.boundsPeriod?.start ?? anchorIso);
  const endText = r?.boundsPeriod?.end;
  const duration = durationMs(r?.boundsDuration);
  const end = endText ? Date.parse(endText) : duration !== undefined ? start + duration : Number.POSITIVE_INFINITY;
  return { start, end };
}

/** The first reminder time strictly after `after` (epoch ms), or undefined when there is none. */
export function nextReminder(timing: Timing | undefined, anchorIso: string, after: number): number | undefined {
  const r = timing?.repeat;
  if (!timing || !r) return undefined;
  const { start, end } = timingBounds(timing, anchorIso);
  if (Number.isNaN(start)) return undefined;
  const from = Math.max(after, start - 1);
  let next: number | undefined;
  if (r.timeOfDay?.length) {
    for (let day = 0; day < 2 && next === undefined; day++) {
      const base = new Date(from);
      base.setDate(base.getDate() + day);
      const candidates = r.timeOfDay
        .map((t) => {
          const [h, m, s] = t.split(':').map(Number);
          const c = new Date(base);
          c.setHours(h ?? 0, m ?? 0, s ?? 0, 0);
          return c.getTime();
        })
        .filter((c) => c > from)
        .sort((a, b) => a - b);
      next = candidates[0];
    }
  } else if (r.period !== undefined && r.periodUnit && UNIT_MS[r.periodUnit]) {
    const interval = (r.period * UNIT_MS[r.periodUnit]!) / Math.max(r.frequency ?? 1, 1);
    if (!(interval > 0)) return undefined;
    const k = Math.floor((from - start) / interval) + 1;
    next = start + Math.max(k, 0) * interval;
    if (next <= from) next += interval;
  }
  return next !== undefined && next < end ? next : undefined;
}
