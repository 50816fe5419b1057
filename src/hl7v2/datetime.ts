/**
 * HL7 v2 DTM/TS/DT values (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]) to FHIR date, dateTime
 * and instant, keeping the precision the sender gave. FHIR requires an offset whenever a time is
 * present; a v2 time without one is the sender's local time, so it gets the offset of the
 * configured time zone at that moment ('local' = this server's zone, 'UTC', '+05:30', or an IANA
 * name such as 'Europe/Berlin').
 */

export interface V2DateTime {
  year: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  second?: number;
  /** Fraction digits as written ('4' for .4). */
  fraction?: string;
  /** '+02:15', '-08:00' or 'Z' when given in the value. */
  offset?: string;
}

const DTM_RE = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$/;

/** Parse a DTM; undefined when malformed or impossible (month 13, 31 February, 25 o'clock…). */
export function parseDtm(text: string): V2DateTime | undefined {
  const m = DTM_RE.exec(text.trim());
  if (!m) return undefined;
  // Inline rather than a helper closure: this runs for every date in every message.
  const v: V2DateTime = {
    year: Number(m[1]),
    month: m[2] === undefined ? undefined : Number(m[2]),
    day: m[3] === undefined ? undefined : Number(m[3]),
    hour: m[4] === undefined ? undefined : Number(m[4]),
    minute: m[5] === undefined ? undefined : Number(m[5]),
    second: m[6] === undefined ? undefined : Number(m[6]),
    fraction: m[7],
  };
  if (v.fraction !== undefined && v.second === undefined) return undefined;
  if (v.month !== undefined && (v.month < 1 || v.month > 12)) return undefined;
  if (v.day !== undefined && (v.day < 1 || v.day > daysInMonth(v.year, v.month!))) return undefined;
  if (v.hour !== undefined && v.hour > 23) return undefined;
  if (v.minute !== undefined && v.minute > 59) return undefined;
  if (v.second !== undefined && v.second > 59) return undefined;
  if (m[8]) {
    const hh = Number(m[8].slice(1, 3));
    const mm = Number(m[8].slice(3, 5));
    if (hh > 14 || mm > 59) return undefined;
    v.offset = `${m[8][0]}${m[8].slice(1, 3)}:${m[8].slice(3, 5)}`;
  }
  return v;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const p2 = (n: number) => String(n).padStart(2, '0');

/** FHIR date: as precise as given, at most the day. */
export function toFhirDate(v: V2DateTime): string {
  let s = String(v.year).padStart(4, '0');
  if (v.month !== undefined) s += `-${p2(v.month)}`;
  if (v.day !== undefined) s += `-${p2(v.day)}`;
  return s;
}

/** FHIR dateTime: date alone when no time was given; otherwise seconds and an offset. */
export function toFhirDateTime(v: V2DateTime, timezone: string): string {
  if (v.hour === undefined || v.day === undefined) return toFhirDate(v);
  const time = `${p2(v.hour)}:${p2(v.minute ?? 0)}:${p2(v.second ?? 0)}${v.fraction ? `.${v.fraction}` : ''}`;
  return `${toFhirDate(v)}T${time}${v.offset ?? offsetFor(v, timezone)}`;
}

/** FHIR instant: always to the second with an offset (a date alone means its midnight). */
export function toFhirInstant(v: V2DateTime, timezone: string): string {
  return toFhirDateTime({ ...v, month: v.month ?? 1, day: v.day ?? 1, hour: v.hour ?? 0 }, timezone);
}

/** Check a configured time zone; throws with the reason when it cannot be used. */
export function checkTimezone(timezone: string): void {
  if (timezone === 'local' || timezone === 'UTC' || timezone === 'Z' || /^[+-]\d{2}:\d{2}$/.test(timezone)) return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new Error(`unknown time zone '${timezone}' (use 'local', 'UTC', '+hh:mm' or an IANA name)`);
  }
}

/** The offset ('+01:00', 'Z') of a wall-clock time in a time zone. */
export function offsetFor(v: V2DateTime, timezone: string): string {
  if (timezone === 'UTC' || timezone === 'Z') return 'Z';
  if (/^[+-]\d{2}:\d{2}$/.test(timezone)) return timezone;
  const wall = Date.UTC(v.year, (v.month ?? 1) - 1, v.day ?? 1, v.hour ?? 0, v.minute ?? 0, v.second ?? 0);
  let minutes: number;
  if (timezone === 'local') {
    const local = new Date(v.year, (v.month ?? 1) - 1, v.day ?? 1, v.hour ?? 0, v.minute ?? 0, v.second ?? 0);
    minutes = -local.getTimezoneOffset();
  } else {
    // The zone's offset at the instant that wall clock shows there (checked twice around DST changes).
    const first = zoneOffsetMinutes(wall, timezone);
    minutes = zoneOffsetMinutes(wall - first * 60_000, timezone);
  }
  if (minutes === 0) return timezone === 'local' ? '+00:00' : 'Z';
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${p2(Math.trunc(abs / 60))}:${p2(abs % 60)}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Minutes the IANA zone is ahead of UTC at the instant (also the scheduling workflows' time zone math). */
export function zoneOffsetMinutes(utcMillis: number, timezone: string): number {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(utcMillis)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return Math.round((asUtc - Math.floor(utcMillis / 1000) * 1000) / 60_000);
}
