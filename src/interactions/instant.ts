/** FHIR date/dateTime/instant text → the instant range it denotes (precision gives the width). */
import { badRequest } from '../fhir/outcome.js';

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function dateRange(text: string, param: string): { low: string; high: string } {
  const m = DATE_RE.exec(text.trim());
  if (!m) throw badRequest(`${param}: '${text}' is not a valid FHIR date, dateTime or instant`, [param]);
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const zone = tz ?? 'Z';
  const iso = (t: string) => {
    const ms = Date.parse(t);
    if (Number.isNaN(ms)) throw badRequest(`${param}: '${text}' is not a valid date`, [param]);
    return ms;
  };
  let low: number;
  let high: number;
  if (h !== undefined) {
    const start = iso(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}.${(frac ?? '0').padEnd(3, '0').slice(0, 3)}${zone}`);
    low = start;
    high = frac !== undefined ? start : s !== undefined ? start + 999 : start + 59_999;
  } else if (d !== undefined) {
    low = iso(`${y}-${mo}-${d}T00:00:00Z`);
    high = low + 86_400_000 - 1;
  } else if (mo !== undefined) {
    low = iso(`${y}-${mo}-01T00:00:00Z`);
    high = Date.UTC(Number(y), Number(mo), 1) - 1;
  } else {
    low = Date.UTC(Number(y), 0, 1);
    high = Date.UTC(Number(y) + 1, 0, 1) - 1;
  }
  return { low: new Date(low).toISOString(), high: new Date(high).toISOString() };
}
