/**
 * SQL for one alternative (Condition) of a filter, against an index row aliased `i` (query-sql.ts
 * wraps it in the EXISTS / IN subquery). Column names are those of INDEX_COLUMNS in schema.ts,
 * passed through `col` so the same conditions apply to the component columns of sp_composite
 * (composite.ts) and to sp_reference.target_url (reference :above / :below).
 */
import type { Binder } from './query-sql.js';
import type { Condition } from './query-types.js';

/** `column` holds one of the index parameters `params` (registry.ts indexParamsOf): usually one. */
export function paramIs(column: string, params: readonly string[], b: Binder): string {
  return params.length === 1 ? `${column} = ${b.add(params[0])}` : `${column} = ANY(${b.add(params)}::text[])`;
}
import { escapeLike } from './values.js';

/** A date / number target: SQL expressions for its range. */
export interface RangeExprs {
  lo: string;
  hi: string;
  cast: 'timestamptz' | 'numeric';
}

/** Column name → SQL expression. */
export type ColumnMap = (name: string) => string;
const plainColumns: ColumnMap = (name) => `i.${name}`;
/** sp_reference.target_url is what reference :above / :below (uri conditions) compare. */
export const REFERENCE_URL: ColumnMap = (name) => (name === 'value' ? 'i.target_url' : `i.${name}`);

export function rangeCondition(c: { prefix: string; lo: string; hi: string }, t: RangeExprs, b: Binder, value?: string): string {
  const lo = () => `${b.add(c.lo)}::${t.cast}`;
  const hi = () => `${b.add(c.hi)}::${t.cast}`;
  const within = () => `(${t.lo} >= ${lo()} AND ${t.hi} <= ${hi()})`;
  if (value !== undefined) {
    // number / quantity: gt/lt/ge/le compare the target value (middle of its range) with the search value.
    const mid = `((${t.lo} + ${t.hi}) / 2)`;
    const v = () => `${b.add(value)}::numeric`;
    switch (c.prefix) {
      case 'gt':
        return `${mid} > ${v()}`;
      case 'lt':
        return `${mid} < ${v()}`;
      case 'ge':
        return `${mid} >= ${v()}`;
      case 'le':
        return `${mid} <= ${v()}`;
      case 'ap': {
        const p = b.add(value);
        return `(${t.lo} <= GREATEST(${hi()}, ${p}::numeric + abs(${p}::numeric) * 0.1) AND ${t.hi} >= LEAST(${lo()}, ${p}::numeric - abs(${p}::numeric) * 0.1))`;
      }
    }
  }
  switch (c.prefix) {
    case 'eq':
      return within();
    case 'ne':
      return `NOT ${within()}`;
    case 'gt':
      return `${t.hi} > ${hi()}`;
    case 'lt':
      return `${t.lo} < ${lo()}`;
    // ge / le: the leading bound is implied by both branches; it lets the (param, hi) / (param, lo) index apply.
    case 'ge':
      return `(${t.hi} >= ${lo()} AND (${t.hi} > ${hi()} OR ${within()}))`;
    case 'le':
      return `(${t.lo} <= ${hi()} AND (${t.lo} < ${lo()} OR ${within()}))`;
    case 'sa':
      return `${t.lo} > ${hi()}`;
    case 'eb':
      return `${t.hi} < ${lo()}`;
    case 'ap': // dates: c.lo / c.hi are already widened
      return `(${t.lo} <= ${hi()} AND ${t.hi} >= ${lo()})`;
    default:
      throw new Error(`unknown prefix ${c.prefix}`);
  }
}

/** '/'-prefixes of a URL, longest first, down to scheme://host (for uri:above). */
export function urlAncestors(url: string): string[] {
  const out = [url];
  const start = url.indexOf('://') >= 0 ? url.indexOf('/', url.indexOf('://') + 3) : -1;
  let u = url;
  for (;;) {
    const cut = u.lastIndexOf('/');
    if (cut < 0 || cut < start) break;
    u = u.slice(0, cut);
    out.push(u, u + '/');
  }
  return out;
}

/** Lower case without combining marks (as values.ts normalizeString), in SQL: for token :text. */
const foldSql = (e: string) => `regexp_replace(normalize(lower(${e}), NFD), '[\\u0300-\\u036f]', '', 'g')`;

/**
 * Component k (0-based) of an sp_composite row: its text columns a, b, c and numeric lo, hi hold
 * what the component's own index table would (composite-extract.ts), by column name.
 */
const COMPOSITE_SLOT: Record<string, string> = {
  system: 'a', code: 'b', display: 'c', unit: 'c', norm: 'a', exact: 'b',
  target_type: 'a', target_id: 'b', target_url: 'c', value: 'a', lo: 'lo', hi: 'hi',
};
export function compositeColumns(k: number): ColumnMap {
  return (name) => {
    const slot = COMPOSITE_SLOT[name];
    return slot ? `i.c${k + 1}_${slot}` : 'NULL';
  };
}

/** Epoch milliseconds of an ISO instant, as a decimal string (dates in sp_composite). */
export function epochMs(iso: string): string {
  return String(Date.parse(iso));
}

/** The alternatives of one filter (comma-separated values), OR-ed. */
export function anyOfSql(anyOf: Condition[], b: Binder, s: string, col: ColumnMap = plainColumns): string {
  const alts = anyOf.map((c) => conditionSql(c, b, s, col));
  return alts.length === 1 ? alts[0]! : `(${alts.join(' OR ')})`;
}

/**
 * `s`: the quoted tenant schema (stored value sets are read from its `resource` table).
 */
export function conditionSql(c: Condition, b: Binder, s: string, col: ColumnMap = plainColumns): string {
  switch (c.kind) {
    case 'token': {
      const parts: string[] = [];
      if (c.system === null) parts.push(`${col('system')} IS NULL`);
      else if (c.system !== undefined) parts.push(`${col('system')} = ${b.add(c.system)}`);
      if (c.code !== undefined) parts.push(`${col('code')} = ${b.add(c.code)}`);
      return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
    }
    case 'text':
      return `${foldSql(col('display'))} LIKE ${b.add(escapeLike(c.text) + '%')}`;
    case 'string':
      if (c.mode === 'exact') return `(${col('norm')} = ${b.add(c.norm)} AND ${col('exact')} = ${b.add(c.exact)})`;
      if (c.mode === 'contains') return `${col('norm')} LIKE ${b.add('%' + escapeLike(c.norm) + '%')}`;
      return `${col('norm')} LIKE ${b.add(escapeLike(c.norm) + '%')}`;
    case 'reference': {
      const parts: string[] = [];
      if (c.url !== undefined) parts.push(`${col('target_url')} = ${b.add(c.url)}`);
      if (c.type !== undefined) parts.push(`${col('target_type')} = ${b.add(c.type)}`);
      if (c.id !== undefined) parts.push(`${col('target_id')} = ${b.add(c.id)}`);
      if (c.version !== undefined) parts.push(`${col('target_version')} = ${b.add(c.version)}`);
      return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
    }
    case 'date':
      return rangeCondition(c, { lo: col('lo'), hi: col('hi'), cast: 'timestamptz' }, b);
    case 'number': {
      const range = rangeCondition(c, { lo: col('lo'), hi: col('hi'), cast: 'numeric' }, b, c.value);
      const units: string[] = [];
      if (c.system !== undefined) units.push(`${col('system')} = ${b.add(c.system)}`);
      if (c.code !== undefined) {
        if (c.system !== undefined) units.push(`${col('code')} = ${b.add(c.code)}`);
        else {
          const p = b.add(c.code);
          units.push(`(${col('code')} = ${p} OR ${col('unit')} = ${p})`);
        }
      }
      return units.length ? `(${units.join(' AND ')} AND ${range})` : range;
    }
    case 'uri': {
      const v = col('value');
      if (c.mode === 'exact') return `${v} = ${b.add(c.value)}`;
      if (c.mode === 'below') return `(${v} = ${b.add(c.value)} OR ${v} LIKE ${b.add(escapeLike(c.value) + '/%')})`;
      return `${v} = ANY(${b.add(urlAncestors(c.value))}::text[])`;
    }
    case 'codes': {
      // A value without a system (a primitive `code` such as Patient.gender) matches on its code.
      const alts = c.sets.map((set) => {
        const sys = col('system');
        const system = set.system === null ? `${sys} IS NULL` : `(${sys} = ${b.add(set.system)} OR ${sys} IS NULL)`;
        const code = set.codes.length === 1 ? `${col('code')} = ${b.add(set.codes[0])}` : `${col('code')} = ANY(${b.add(set.codes)}::text[])`;
        return `(${code} AND ${system})`;
      });
      if (alts.length === 0) return 'FALSE';
      return alts.length === 1 ? alts[0]! : `(${alts.join(' OR ')})`;
    }
    case 'stored-value-set': {
      const [sys, code] = [col('system'), col('code')];
      const codes = () => storedValueSetCodes(c, b, s);
      return `(${code} IN (SELECT vs.code FROM (${codes()}) vs(system, code)) AND (${sys} IS NULL OR (${sys}, ${code}) IN (${codes()})))`;
    }
    case 'composite':
      return `(${c.parts.map((part, k) => compositePartSql(part, k, b, s)).join(' AND ')})`;
    case 'missing':
    case 'id':
      throw new Error(`${c.kind} is not an index condition`);
  }
}

function compositePartSql(c: Condition, k: number, b: Binder, s: string): string {
  const col = compositeColumns(k);
  if (c.kind === 'date') {
    // dates are stored as epoch milliseconds in the numeric columns
    return rangeCondition({ prefix: c.prefix, lo: epochMs(c.lo), hi: epochMs(c.hi) }, { lo: col('lo'), hi: col('hi'), cast: 'numeric' }, b);
  }
  return conditionSql(c, b, s, col);
}

/**
 * (system, code) of the concepts a stored ValueSet enumerates: compose.include[].concept[] (with
 * the include's system) and every expansion.contains entry, at any depth. Filters, whole-system
 * includes and excludes of a stored value set are not evaluated (terminology.ts explains).
 */
function storedValueSetCodes(c: { url: string; version?: string }, b: Binder, s: string): string {
  const vs =
    `SELECT v.content::jsonb AS doc FROM ${s}.resource v WHERE v.resource_type = 'ValueSet' AND NOT v.deleted ` +
    `AND v.rid IN (SELECT u.rid FROM ${s}.sp_uri u WHERE u.resource_type = 'ValueSet' AND u.param = 'url' AND u.value = ${b.add(c.url)})` +
    (c.version === undefined
      ? ''
      : ` AND v.rid IN (SELECT t.rid FROM ${s}.sp_token t WHERE t.resource_type = 'ValueSet' AND t.param = 'version' AND t.code = ${b.add(c.version)})`);
  return (
    `SELECT inc->>'system', cc->>'code' FROM (${vs}) d, jsonb_array_elements(coalesce(d.doc->'compose'->'include', '[]')) inc, ` +
    `jsonb_array_elements(coalesce(inc->'concept', '[]')) cc ` +
    `UNION SELECT e->>'system', e->>'code' FROM (${vs}) d, jsonb_path_query(d.doc, 'lax $.expansion.** ? (exists (@.code))') e`
  );
}
