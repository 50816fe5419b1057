/**
 * UCUM canonical units for quantity search (search.html#quantity: "the server SHOULD convert
 * quantities to a canonical form").
 *
 * Index side: a Quantity in UCUM (system http://unitsofmeasure.org with a code) whose unit converts
 * to UCUM base units gets, besides its own sp_quantity row, a row in canonical form under the
 * parameter `<code>:canonical`: system UCUM, code the base-unit expression ('g', 'm-1.s-2.g',
 * 'm-3', '1' for dimensionless) and lo/hi multiplied by the unit's factor (6000 mg → 6 g). A
 * separate parameter name keeps these rows out of searches without units and out of _sort.
 * Installed as extract.ts's quantity canonicalizer when this module is loaded (the search engine
 * imports it, so every process that can write or search has it).
 *
 * Query side (canonicalQuantitySearch, called by query-parse.ts): when every value of a quantity
 * parameter is `[prefix]number|http://unitsofmeasure.org|code` in a convertible unit,
 * `value-quantity=gt5|http://unitsofmeasure.org|g` searches `value-quantity:canonical` for
 * > 5 g, which finds 6000 mg. Otherwise the values are matched as given (exact system and code).
 * Resources indexed before this existed have no canonical rows: reindex them once
 * (scripts/tools/reindex.ts or $reindex).
 *
 * Not converted (exact system|code match only): units ucum-lhc does not know, arbitrary units
 * ([IU], [arb'U]...), special units whose conversion is not a factor (Cel, [degF], [pH]...),
 * quantities without a UCUM system and code.
 *
 * Arithmetic is exact on decimal strings; a unit's factor is ucum-lhc's magnitude rounded to 15
 * significant digits (ug/dL = 0.01 g/... not 0.009999999999999998), the same on both sides. The
 * conversion is looked up once per unit code and cached.
 */
import { createRequire } from 'node:module';
import { setQuantityCanonicalizer, type QuantityCanonicalizer } from './extract.js';
import type { Condition } from './query-types.js';
import { formatScaled } from './values.js';

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

interface UcumUtils {
  convertToBaseUnits(
    unit: string,
    value: number,
  ): { status: string; magnitude?: number; unitToExp?: Record<string, number>; fromUnitIsSpecial?: boolean };
}
const require = createRequire(import.meta.url);
const ucum = (require('@lhncbc/ucum-lhc') as { UcumLhcUtils: { getInstance(): UcumUtils } }).UcumLhcUtils.getInstance();

// ---------------------------------------------------------------------------------------------
// Exact decimals: value = big × 10^-scale

interface Decimal {
  big: bigint;
  scale: number;
}

const DECIMAL_RE = /^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function parseDecimal(text: string): Decimal | undefined {
  const m = DECIMAL_RE.exec(text.trim());
  if (!m) return undefined;
  const frac = m[3] ?? '';
  let big = BigInt(m[2]! + frac);
  if (m[1] === '-') big = -big;
  let scale = frac.length - (m[4] === undefined ? 0 : Number(m[4]));
  // Drop trailing zeros so factors like 1.00000000000000e+12 stay small.
  while (big !== 0n && big % 10n === 0n) {
    big /= 10n;
    scale--;
  }
  return { big, scale };
}

/** `value` (a decimal string, or ±Infinity) times `factor`, as an exact decimal string. */
function scale(value: string, factor: Decimal): string | undefined {
  if (value === 'Infinity' || value === '-Infinity') return value;
  const d = parseDecimal(value);
  return d ? formatScaled(d.big * factor.big, d.scale + factor.scale) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Units

export interface CanonicalUnit {
  /** The base-unit expression, e.g. 'g', 'm-1.s-2.g', '1'. */
  code: string;
  /** Multiply a value in the unit by this to get it in `code`. */
  factor: string;
}

const cache = new Map<string, { code: string; factor: Decimal } | null>();
const MAX_CACHED_UNITS = 10_000;

function lookup(code: string): { code: string; factor: Decimal } | null {
  const hit = cache.get(code);
  if (hit !== undefined) return hit;
  let found: { code: string; factor: Decimal } | null = null;
  try {
    const r = ucum.convertToBaseUnits(code, 1);
    if (r.status === 'succeeded' && !r.fromUnitIsSpecial && typeof r.magnitude === 'number' && Number.isFinite(r.magnitude) && r.magnitude > 0) {
      const factor = parseDecimal(r.magnitude.toPrecision(15));
      const base = Object.entries(r.unitToExp ?? {})
        .map(([unit, exp]) => (exp === 1 ? unit : `${unit}${exp}`))
        .join('.');
      if (factor) found = { code: base || '1', factor };
    }
  } catch {
    found = null; // ucum-lhc throws on some malformed codes
  }
  if (cache.size >= MAX_CACHED_UNITS) cache.clear();
  cache.set(code, found);
  return found;
}

/** The canonical unit of a UCUM code, or undefined when it has no factor conversion. */
export function canonicalUnit(code: string): CanonicalUnit | undefined {
  const u = lookup(code);
  return u ? { code: u.code, factor: formatScaled(u.factor.big, u.factor.scale) } : undefined;
}

/**
 * A quantity (value and its implicit range, decimal strings) in canonical UCUM form, or undefined
 * when `system` is not UCUM or the unit does not convert.
 */
export function canonicalQuantity(
  value: { value: string; lo: string; hi: string },
  system: string | null | undefined,
  code: string | null | undefined,
): { system: string; code: string; value: string; lo: string; hi: string } | undefined {
  if (system !== UCUM_SYSTEM || !code) return undefined;
  const u = lookup(code);
  if (!u) return undefined;
  const v = scale(value.value, u.factor);
  const lo = scale(value.lo, u.factor);
  const hi = scale(value.hi, u.factor);
  if (v === undefined || lo === undefined || hi === undefined) return undefined;
  return { system: UCUM_SYSTEM, code: u.code, value: v, lo, hi };
}

/** The index-side canonicalizer (extract.ts): the `<code>:canonical` row of a UCUM quantity. */
export const ucumCanonicalizer: QuantityCanonicalizer = ({ system, code, lo, hi }) => {
  if (system !== UCUM_SYSTEM || !code) return undefined;
  const u = lookup(code);
  if (!u) return undefined;
  const clo = scale(lo, u.factor);
  const chi = scale(hi, u.factor);
  return clo === undefined || chi === undefined ? undefined : { system: UCUM_SYSTEM, code: u.code, lo: clo, hi: chi };
};

/** Index parameter of the canonical rows of quantity parameter `code`. */
export const canonicalParam = (code: string) => `${code}:canonical`;

/**
 * Where and how to search the parsed values of quantity parameter `code`: in canonical form on
 * `<code>:canonical` when all of them are UCUM quantities in convertible units, else as parsed.
 */
export function canonicalQuantitySearch(stored: readonly string[], anyOf: Condition[]): { indexParams: readonly string[]; anyOf: Condition[] } {
  const converted: Condition[] = [];
  for (const c of anyOf) {
    const canonical = c.kind === 'number' ? canonicalQuantity(c, c.system, c.code) : undefined;
    if (!canonical || c.kind !== 'number') return { indexParams: stored, anyOf };
    converted.push({ ...c, system: canonical.system, code: canonical.code, value: canonical.value, lo: canonical.lo, hi: canonical.hi });
  }
  return converted.length > 0 ? { indexParams: stored.map(canonicalParam), anyOf: converted } : { indexParams: stored, anyOf };
}

export function installUcumCanonicalizer(): void {
  setQuantityCanonicalizer(ucumCanonicalizer);
}

installUcumCanonicalizer();
