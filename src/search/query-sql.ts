/**
 * SQL for a ParsedSearch over one tenant schema. Every value is a bind parameter ($1..$n); the
 * resource type is $1 and is repeated in each index subquery so the (resource_type, param, value)
 * indexes of schema.ts apply. Each filter is one `[NOT] EXISTS (SELECT 1 FROM sp_x i WHERE i.rid =
 * r.rid AND i.resource_type = $1 AND i.param = $k AND (alt1 OR alt2 ...))`; PostgreSQL plans these
 * as semi/anti-joins, driving either from the value index (selective values) or from
 * sp_x_rid_idx (few candidate resources). The conditions themselves are in sql-conditions.ts;
 * chained and _has filters (SearchFilter.path) in links-sql.ts.
 */
import { quoteIdent } from '../store/schema.js';
import type { SearchParamType } from './parameters.js';
import { linkedFilterSql } from './links-sql.js';
import type { ParsedSearch, SearchFilter, SortKey } from './query-types.js';
import { anyOfSql, paramIs, rangeCondition, REFERENCE_URL, type RangeExprs } from './sql-conditions.js';

export class Binder {
  readonly params: unknown[] = [];
  add(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}

/** Statement context: quoted schema, the resource type expression (a bind parameter) and the binder. */
export interface Ctx {
  s: string;
  rt: string;
  b: Binder;
  /** Alias of the resource row filters apply to ('r' when absent; nested levels of chains use others). */
  alias?: string;
}

/** The condition `f` puts on the resource row `ctx.alias` (default `r`) of type `ctx.rt`. */
export function filterSql(f: SearchFilter, ctx: Ctx): string {
  if (f.path?.length) return linkedFilterSql(f, ctx, filterSql);
  const { b } = ctx;
  const r = ctx.alias ?? 'r';
  if ('column' in f.source) {
    if (f.source.column === 'id') {
      const ids = f.anyOf.map((c) => (c.kind === 'id' ? c.id : ''));
      const sql = ids.length === 1 ? `${r}.id = ${b.add(ids[0])}` : `${r}.id = ANY(${b.add(ids)}::text[])`;
      return f.negate ? `NOT (${sql})` : sql;
    }
    const target: RangeExprs = { lo: `${r}.last_updated`, hi: `${r}.last_updated`, cast: 'timestamptz' };
    const alts = f.anyOf.map((c) => (c.kind === 'date' ? rangeCondition(c, target, b) : 'FALSE'));
    return alts.length === 1 ? alts[0]! : `(${alts.join(' OR ')})`;
  }
  const { table, indexParams } = f.source;
  const rows = `SELECT 1 FROM ${ctx.s}.${table} i WHERE i.rid = ${r}.rid AND i.resource_type = ${ctx.rt} AND ${paramIs('i.param', indexParams, b)}`;
  if (f.anyOf.every((c) => c.kind === 'missing')) {
    const wanted = new Set(f.anyOf.map((c) => (c as { missing: boolean }).missing));
    if (wanted.size === 2) return 'TRUE';
    let present = `EXISTS (${rows})`;
    if (table === 'sp_reference') {
      // A reference given only by identifier is indexed as a token row under '<code>:identifier'.
      const idRows = `SELECT 1 FROM ${ctx.s}.sp_token i WHERE i.rid = ${r}.rid AND i.resource_type = ${ctx.rt} AND ${paramIs('i.param', indexParams.map((p) => `${p}:identifier`), b)}`;
      present = `(${present} OR EXISTS (${idRows}))`;
    }
    return wanted.has(true) ? `NOT ${present}` : present;
  }
  const col = table === 'sp_reference' ? REFERENCE_URL : undefined;
  return `${f.negate ? 'NOT ' : ''}EXISTS (${rows} AND ${anyOfSql(f.anyOf, b, ctx.s, col)})`;
}

export function whereSql(parsed: ParsedSearch, ctx: Ctx): string {
  const parts = [`r.resource_type = ${ctx.rt}`, 'NOT r.deleted'];
  for (const f of parsed.filters) parts.push(filterSql(f, ctx));
  return parts.join('\n  AND ');
}

/** Column sorted on for each parameter type: [ascending (min), descending (max)]. */
const SORT_COLUMNS: Partial<Record<SearchParamType, [string, string]>> = {
  string: ['i.norm', 'i.norm'],
  token: ['i.code', 'i.code'],
  date: ['i.lo', 'i.hi'],
  number: ['i.lo', 'i.hi'],
  quantity: ['i.lo', 'i.hi'],
  uri: ['i.value', 'i.value'],
  reference: ["coalesce(i.target_url, i.target_type || '/' || i.target_id)", "coalesce(i.target_url, i.target_type || '/' || i.target_id)"],
};

/** The value a resource is sorted on for `key` (NULL when it has none); keyset paging compares it too. */
export function sortValueSql(key: SortKey, ctx: Ctx): string {
  if ('column' in key.source) return `r.${key.source.column}`;
  const { table, indexParams, type } = key.source;
  const cols = SORT_COLUMNS[type];
  if (!cols) throw new Error(`cannot sort on ${type}`);
  const agg = key.descending ? `max(${cols[1]})` : `min(${cols[0]})`;
  return `(SELECT ${agg} FROM ${ctx.s}.${table} i WHERE i.rid = r.rid AND i.resource_type = ${ctx.rt} AND ${paramIs('i.param', indexParams, ctx.b)})`;
}

function sortSql(key: SortKey, ctx: Ctx): string {
  const dir = key.descending ? 'DESC' : 'ASC';
  if ('column' in key.source) return `r.${key.source.column} ${dir}`;
  return `${sortValueSql(key, ctx)} ${dir} NULLS LAST`;
}

function context(schema: string, parsed: ParsedSearch, b = new Binder()): Ctx {
  return { s: quoteIdent(schema), b, rt: b.add(parsed.resourceType) };
}

/**
 * SQL returning the matching current, non-deleted resources of one page, in `_sort` order (then by
 * rid), or by last_updated then rid without _sort (the order of resource_type_updated_idx).
 * Columns: rid, id, resource_type, version_id, last_updated, content. Resources without a value
 * for a sort parameter come last in both directions.
 */
/** `binder`: share one between searches combined into one statement (their parameters then never collide). */
export function buildSearchSql(schema: string, parsed: ParsedSearch, page: { limit: number; offset: number }, binder?: Binder): { sql: string; params: unknown[] } {
  const ctx = context(schema, parsed, binder);
  const where = whereSql(parsed, ctx);
  const order = parsed.sort.length ? [...parsed.sort.map((k) => sortSql(k, ctx)), 'r.rid ASC'] : ['r.last_updated ASC', 'r.rid ASC'];
  const sql =
    `SELECT r.rid, r.id, r.resource_type, r.version_id, r.last_updated, r.content\n` +
    `FROM ${ctx.s}.resource r\n` +
    `WHERE ${where}\n` +
    `ORDER BY ${order.join(', ')}\n` +
    `LIMIT ${ctx.b.add(page.limit)} OFFSET ${ctx.b.add(page.offset)}`;
  return { sql, params: ctx.b.params };
}

/** SQL counting all matches; one row, column `count` (bigint: pg returns it as a string). */
export function buildCountSql(schema: string, parsed: ParsedSearch): { sql: string; params: unknown[] } {
  const ctx = context(schema, parsed);
  const where = whereSql(parsed, ctx);
  return { sql: `SELECT count(*) AS count\nFROM ${ctx.s}.resource r\nWHERE ${where}`, params: ctx.b.params };
}
