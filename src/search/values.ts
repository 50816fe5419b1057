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

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

function utcMs(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  if (y >= 100) return Date.UTC(y, mo, d, h, mi, s, ms);
  // Date.UTC maps years 0..99 to 1900..1999.
  const dt = new Date(0);
  dt.setUTCFullYear(y, mo, d);
  dt.setUTCHours(h, mi, s, ms);
  return dt.getTime();
}

function daysInMonth(y: number, mo: number): number {
  return mo === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(mo) ? 30 : 31;
}

function isoOf(ms: number): string {
  if (ms <= MIN_DATE_MS) return MIN_DATE;
  if (ms >= MAX_DATE_MS) return MAX_DATE;
  return new Date(ms).toISOString();
}

/**
 * Parse a FHIR date, dateTime or instant (also a search value, where minutes without seconds are
 * accepted) into the inclusive range its precision implies. Returns undefined when malformed.
 */
export function parseDate(text: string): ParsedDate | undefined {
  const m = DATE_RE.exec(text);
  if (!m) return undefined;
  const y = +m[1]!;
  const mo = m[2] === undefined ? undefined : +m[2];
  const d = m[3] === undefined ? undefined : +m[3];
  if (mo !== undefined && (mo < 1 || mo > 12)) return undefined;
  if (d !== undefined && (d < 1 || d > daysInMonth(y, mo!))) return undefined;
  if (m[4] === undefined) {
    // year, month or day precision
    let loMs: number;
    let hiMs: number;
    let precision: DatePrecision;
    if (mo === undefined) {
      loMs = utcMs(y, 0, 1);
      hiMs = utcMs(y + 1, 0, 1) - 1;
      precision = 'year';
    } else if (d === undefined) {
      loMs = utcMs(y, mo - 1, 1);
      hiMs = utcMs(y, mo, 1) - 1;
      precision = 'month';
    } else {
      loMs = utcMs(y, mo - 1, d);
      hiMs = loMs + 86_400_000 - 1;
      precision = 'day';
    }
    return { lo: isoOf(loMs), hi: isoOf(hiMs), loMs, hiMs, precision };
  }
  const h = +m[4];
  const mi = +m[5]!;
  let s = m[6] === undefined ? 0 : +m[6];
  if (h > 23 || mi > 59 || s > 60) return undefined;
  if (s === 60) s = 59; // leap second: keep it inside its minute
  const frac = m[7];
  const ms = frac === undefined ? 0 : +(frac + '00').slice(0, 3);
  let offsetMs = 0;
  const tz = m[8];
  if (tz !== undefined && tz !== 'Z') {
    const th = +tz.slice(1, 3);
    const tm = +tz.slice(4, 6);
    if (th > 14 || tm > 59) return undefined;
    offsetMs = (tz[0] === '-' ? -1 : 1) * (th * 60 + tm) * 60_000;
  }
  const loMs = utcMs(y, mo! - 1, d!, h, mi, s, ms) - offsetMs;
  let width: number;
  let precision: DatePrecision;
  if (m[6] === undefined) {
    width = 60_000;
    precision = 'minute';
  } else if (frac === undefined) {
    width = 1000;
    precision = 'second';
  } else {
    width = frac.length >= 3 ? 1 : frac.length === 2 ? 10 : 100;
    precision = 'millisecond';
  }
  const hiMs = loMs + width - 1;
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
