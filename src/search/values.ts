/**
 * Value conventions shared by index extraction (extract.ts) and query building (query-*.ts), so
 * that a value is normalised the same way when it is stored and when it is searched for.
 *
 * - Strings: `normalizeString` (lower case, accents removed, whitespace collapsed), clipped to
 *   MAX_NORM_LENGTH characters so the btree index on sp_string.norm never overflows.
 * - Dates: every date, dateTime and instant is an inclusive range [lo, hi] at millisecond
 *   granularity, as ISO-8601 UTC strings. The range is implied by the precision ('2020' covers the
 *   whole year). A dateTime without a time zone is taken as UTC (the spec leaves the zone of such
 *   values to the server; UTC keeps results independent of the server's locale).
 * - Numbers: a decimal is the range implied by its precision: half a unit of the last digit either
 *   side (100 → [99.5, 100.5], 1.5 → [1.45, 1.55]). Bounds are exact decimal strings (BigInt
 *   arithmetic) so that nothing is lost to binary floating point on the way to a numeric column.
 */

/** Bounds used for open-ended ranges (a Period without start or end). */
export const MIN_DATE = '0001-01-01T00:00:00.000Z';
export const MAX_DATE = '9999-12-31T23:59:59.999Z';
const MIN_DATE_MS = Date.parse(MIN_DATE);
const MAX_DATE_MS = Date.parse(MAX_DATE);

/** Longest normalised string stored in sp_string.norm (and compared by :exact / default search). */
export const MAX_NORM_LENGTH = 512;
/** Longest value stored in an indexed text column of the other tables (btree rows are limited to ~2.7 kB). */
export const MAX_INDEXED_TEXT = 1024;

// ---------------------------------------------------------------------------------------------
// Strings

const ASCII_PLAIN = /^[\x20-\x7e]*$/;
const COMBINING_MARKS = /\p{M}/gu;
const NEEDS_SPACE_COLLAPSE = /\s\s|^\s|\s$|[\t\n\r\f\v\u00a0\u2000-\u200b\u2028\u2029\u3000]/;

/** Lower-case, accents (combining marks after NFD) removed, whitespace collapsed and trimmed. */
export function normalizeString(s: string): string {
  let t = s.toLowerCase();
  if (!ASCII_PLAIN.test(t)) t = t.normalize('NFD').replace(COMBINING_MARKS, '');
  if (NEEDS_SPACE_COLLAPSE.test(t)) t = t.replace(/\s+/g, ' ').trim();
  return t;
}

/** The value stored in sp_string.norm for a string (normalised, then clipped). */
export function normForIndex(s: string): string {
  const n = normalizeString(s);
  return n.length > MAX_NORM_LENGTH ? clipChars(n, MAX_NORM_LENGTH) : n;
}

/** Clip to at most `max` UTF-16 units without splitting a surrogate pair. */
export function clipChars(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return s.slice(0, end);
}

/** Escape a value for use inside a LIKE pattern (PostgreSQL's default escape character, backslash). */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

// ---------------------------------------------------------------------------------------------
// Dates

export interface DateRange {
  lo: string;
  hi: string;
}

/** Precision of a parsed date, coarsest first. */
export type DatePrecision = 'year' | 'month' | 'day' | 'minute' | 'second' | 'millisecond';

export interface ParsedDate extends DateRange {
  precision: DatePrecision;
  loMs: number;
  hiMs: number;
}

const MS_PER_DAY = 86_400_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12), by whole 400-year eras. */
function daysFromCivil(y: number, mo: number, d: number): number {
  const yy = mo <= 2 ? y - 1 : y; // count the year from March, so that Feb 29 ends it
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

/** Epoch milliseconds of a UTC date and time (month 1-12); arithmetic, so years 0-99 need no Date fix-up. */
function utcMs(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  return daysFromCivil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + ms;
}

function daysInMonth(y: number, mo: number): number {
  return mo === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : mo === 4 || mo === 6 || mo === 9 || mo === 11 ? 30 : 31;
}

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/** Date#toISOString of a time in [MIN_DATE, MAX_DATE] (years 0001-9999), without a Date object. */
function formatIso(t: number): string {
  const days = Math.floor(t / MS_PER_DAY);
  let rest = t - days * MS_PER_DAY;
  // The inverse of daysFromCivil: era, year of era, day of year (from March 1st), month.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const mo = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (mo <= 2 ? 1 : 0);
  const ms = rest % 1000;
  rest = (rest - ms) / 1000;
  const s = rest % 60;
  rest = (rest - s) / 60;
  const mi = rest % 60;
  const h = (rest - mi) / 60;
  return `${PAD2[(y / 100) | 0]}${PAD2[y % 100]}-${PAD2[mo]}-${PAD2[d]}T${PAD2[h]}:${PAD2[mi]}:${PAD2[s]}.${PAD3[ms]}Z`;
}

function isoOf(ms: number): string {
  if (ms <= MIN_DATE_MS) return MIN_DATE;
  if (ms >= MAX_DATE_MS) return MAX_DATE;
  return formatIso(ms);
}

/** The value of the n ASCII digits of `s` at `at`, or -1 when any is not a digit (or missing). */
function digitsAt(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48; // NaN past the end
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Parse a FHIR date, dateTime or instant (also a search value, where minutes without seconds are
 * accepted) into the inclusive range its precision implies. Returns undefined when malformed.
 * Accepted: YYYY[-MM[-DD[Thh:mm[:ss[.f{1,9}]][Z|(+|-)hh:mm]]]], read character by character
 * (this runs for every date of every written resource).
 */
export function parseDate(text: string): ParsedDate | undefined {
  const len = text.length;
  const y = digitsAt(text, 0, 4);
  if (y < 0) return undefined;
  if (len === 4) return dayRange(utcMs(y, 1, 1), utcMs(y + 1, 1, 1) - 1, 'year');
  if (text.charCodeAt(4) !== 45 /* - */) return undefined;
  const mo = digitsAt(text, 5, 2);
  if (mo < 1 || mo > 12) return undefined;
  if (len === 7) return dayRange(utcMs(y, mo, 1), (mo === 12 ? utcMs(y + 1, 1, 1) : utcMs(y, mo + 1, 1)) - 1, 'month');
  if (text.charCodeAt(7) !== 45 /* - */) return undefined;
  const d = digitsAt(text, 8, 2);
  if (d < 1 || d > daysInMonth(y, mo)) return undefined;
  if (len === 10) {
    const lo = utcMs(y, mo, d);
    return dayRange(lo, lo + MS_PER_DAY - 1, 'day');
  }
  if (text.charCodeAt(10) !== 84 /* T */ || text.charCodeAt(13) !== 58 /* : */) return undefined;
  const h = digitsAt(text, 11, 2);
  const mi = digitsAt(text, 14, 2);
  if (h < 0 || mi < 0 || h > 23 || mi > 59) return undefined;
  let pos = 16;
  let s = 0;
  let ms = 0;
  let width = 60_000;
  let precision: DatePrecision = 'minute';
  if (text.charCodeAt(pos) === 58 /* : */) {
    s = digitsAt(text, pos + 1, 2);
    if (s < 0 || s > 60) return undefined;
    if (s === 60) s = 59; // leap second: keep it inside its minute
    pos += 3;
    width = 1000;
    precision = 'second';
    if (text.charCodeAt(pos) === 46 /* . */) {
      let n = 0;
      while (n < 10 && digitsAt(text, pos + 1 + n, 1) >= 0) n++;
      if (n === 0 || n > 9) return undefined;
      // milliseconds: the first three digits, padded with zeros
      ms = n >= 3 ? digitsAt(text, pos + 1, 3) : digitsAt(text, pos + 1, n) * (n === 2 ? 10 : 100);
      width = n >= 3 ? 1 : n === 2 ? 10 : 100;
      precision = 'millisecond';
      pos += 1 + n;
    }
  }
  let offsetMs = 0;
  if (pos < len) {
    const sign = text.charCodeAt(pos);
    if (sign === 90 /* Z */) {
      if (pos + 1 !== len) return undefined;
    } else if (sign === 43 /* + */ || sign === 45 /* - */) {
      if (pos + 6 !== len || text.charCodeAt(pos + 3) !== 58 /* : */) return undefined;
      const th = digitsAt(text, pos + 1, 2);
      const tm = digitsAt(text, pos + 4, 2);
      if (th < 0 || tm < 0 || th > 14 || tm > 59) return undefined;
      offsetMs = (sign === 45 ? -1 : 1) * (th * 60 + tm) * 60_000;
    } else {
      return undefined;
    }
  }
  const loMs = utcMs(y, mo, d, h, mi, s, ms) - offsetMs;
  const hiMs = loMs + width - 1;
  return { lo: isoOf(loMs), hi: isoOf(hiMs), loMs, hiMs, precision };
}

function dayRange(loMs: number, hiMs: number, precision: DatePrecision): ParsedDate {
  return { lo: isoOf(loMs), hi: isoOf(hiMs), loMs, hiMs, precision };
}

// ---------------------------------------------------------------------------------------------
// Numbers

export interface DecimalRange {
  /** The value itself as an exact decimal string. */
  value: string;
  lo: string;
  hi: string;
}

const DECIMAL_RE = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** An exact decimal string for big × 10^-scale (also ucum.ts's unit conversions). */
export function formatScaled(big: bigint, scale: number): string {
  if (scale <= 0) return (big * 10n ** BigInt(-scale)).toString();
  const neg = big < 0n;
  let digits = (neg ? -big : big).toString();
  if (digits.length <= scale) digits = '0'.repeat(scale - digits.length + 1) + digits;
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, '');
  const out = frac ? `${int}.${frac}` : int;
  return neg && out !== '0' ? '-' + out : out;
}

/**
 * The implicit range of a decimal written as `text` (JSON number text or a search value):
 * value ± half a unit of its last significant digit. Undefined when not a number.
 */
export function decimalRange(text: string): DecimalRange | undefined {
  const m = DECIMAL_RE.exec(text);
  if (!m) return undefined;
  const frac = m[3] ?? '';
  const exp = m[4] === undefined ? 0 : +m[4];
  if (!Number.isFinite(exp) || Math.abs(exp) > 1000) return undefined;
  const scale = frac.length - exp;
  let big = BigInt(m[2]! + frac);
  if (m[1] === '-') big = -big;
  return {
    value: formatScaled(big, scale),
    lo: formatScaled(big * 10n - 5n, scale + 1),
    hi: formatScaled(big * 10n + 5n, scale + 1),
  };
}

/** decimalRange for a JSON number (precision = the shortest representation JavaScript gives it). */
export function numberRange(n: number): DecimalRange | undefined {
  return Number.isFinite(n) ? decimalRange(String(n)) : undefined;
}
