/**
 * SQL for a ParsedSearch over one tenant schema. Every value is a bind parameter ($1..$n); the
 * resource type is $1 and is repeated in each index subquery so the (resource_type, param, value)
 * indexes of schema.ts apply. Each filter is one `[NOT] EXISTS (SELECT 1 FROM sp_x i WHERE i.rid =
 * r.rid AND i.resource_type = $1 AND i.param = $k AND (alt1 OR alt2 ...))`; PostgreSQL plans these
 * as semi/anti-joins, driving either from the value index (selective values) or from
 * sp_x_rid_idx (few candidate resources).
 */
import { quoteIdent } from '../store/schema.js';
import type { SearchParamType } from './parameters.js';
import type { Condition, ParsedSearch, SearchFilter, SortKey } from './query-types.js';
import { escapeLike } from './values.js';

class Binder {
  readonly params: unknown[] = [];
  add(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}

interface Ctx {
  s: string;
  rt: string;
  b: Binder;
}

/** A date / number target: SQL expressions for its range. */
interface RangeExprs {
  lo: string;
  hi: string;
  cast: 'timestamptz' | 'numeric';
}

function rangeCondition(c: { prefix: string; lo: string; hi: string }, t: RangeExprs, b: Binder, value?: string): string {
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
function urlAncestors(url: string): string[] {
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

function conditionSql(c: Condition, b: Binder): string {
  switch (c.kind) {
    case 'token': {
      const parts: string[] = [];
      if (c.system === null) parts.push('i.system IS NULL');
      else if (c.system !== undefined) parts.push(`i.system = ${b.add(c.system)}`);
      if (c.code !== undefined) parts.push(`i.code = ${b.add(c.code)}`);
      return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
    }
    case 'text':
      return `lower(i.display) LIKE ${b.add(escapeLike(c.text.toLowerCase()) + '%')}`;
    case 'string':
      if (c.mode === 'exact') return `(i.norm = ${b.add(c.norm)} AND i.exact = ${b.add(c.exact)})`;
      if (c.mode === 'contains') return `i.norm LIKE ${b.add('%' + escapeLike(c.norm) + '%')}`;
      return `i.norm LIKE ${b.add(escapeLike(c.norm) + '%')}`;
    case 'reference': {
      const parts: string[] = [];
      if (c.url !== undefined) parts.push(`i.target_url = ${b.add(c.url)}`);
      if (c.type !== undefined) parts.push(`i.target_type = ${b.add(c.type)}`);
      if (c.id !== undefined) parts.push(`i.target_id = ${b.add(c.id)}`);
      if (c.version !== undefined) parts.push(`i.target_version = ${b.add(c.version)}`);
      return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
    }
    case 'date':
      return rangeCondition(c, { lo: 'i.lo', hi: 'i.hi', cast: 'timestamptz' }, b);
    case 'number': {
      const range = rangeCondition(c, { lo: 'i.lo', hi: 'i.hi', cast: 'numeric' }, b, c.value);
      const units: string[] = [];
      if (c.system !== undefined) units.push(`i.system = ${b.add(c.system)}`);
      if (c.code !== undefined) {
        if (c.system !== undefined) units.push(`i.code = ${b.add(c.code)}`);
        else {
          const p = b.add(c.code);
          units.push(`(i.code = ${p} OR i.unit = ${p})`);
        }
      }
      return units.length ? `(${units.join(' AND ')} AND ${range})` : range;
    }
    case 'uri':
      if (c.mode === 'exact') return `i.value = ${b.add(c.value)}`;
      if (c.mode === 'below') return `(i.value = ${b.add(c.value)} OR i.value LIKE ${b.add(escapeLike(c.value) + '/%')})`;
      return `i.value = ANY(${b.add(urlAncestors(c.value))}::text[])`;
    case 'missing':
    case 'id':
      throw new Error(`${c.kind} is not an index condition`);
  }
}

function filterSql(f: SearchFilter, ctx: Ctx): string {
  const { b } = ctx;
  if ('column' in f.source) {
    if (f.source.column === 'id') {
      const ids = f.anyOf.map((c) => (c.kind === 'id' ? c.id : ''));
      const sql = ids.length === 1 ? `r.id = ${b.add(ids[0])}` : `r.id = ANY(${b.add(ids)}::text[])`;
      return f.negate ? `NOT (${sql})` : sql;
    }
    const target: RangeExprs = { lo: 'r.last_updated', hi: 'r.last_updated', cast: 'timestamptz' };
    const alts = f.anyOf.map((c) => (c.kind === 'date' ? rangeCondition(c, target, b) : 'FALSE'));
    return alts.length === 1 ? alts[0]! : `(${alts.join(' OR ')})`;
  }
  const { table, indexParam } = f.source;
  const rows = `SELECT 1 FROM ${ctx.s}.${table} i WHERE i.rid = r.rid AND i.resource_type = ${ctx.rt} AND i.param = ${b.add(indexParam)}`;
  if (f.anyOf.every((c) => c.kind === 'missing')) {
    const wanted = new Set(f.anyOf.map((c) => (c as { missing: boolean }).missing));
    if (wanted.size === 2) return 'TRUE';
    let present = `EXISTS (${rows})`;
    if (table === 'sp_reference') {
      // A reference given only by identifier is indexed as a token row under '<code>:identifier'.
      const idRows = `SELECT 1 FROM ${ctx.s}.sp_token i WHERE i.rid = r.rid AND i.resource_type = ${ctx.rt} AND i.param = ${b.add(`${indexParam}:identifier`)}`;
      present = `(${present} OR EXISTS (${idRows}))`;
    }
    return wanted.has(true) ? `NOT ${present}` : present;
  }
  const alts = f.anyOf.map((c) => conditionSql(c, b));
  const where = alts.length === 1 ? alts[0]! : `(${alts.join(' OR ')})`;
  return `${f.negate ? 'NOT ' : ''}EXISTS (${rows} AND ${where})`;
}

function whereSql(parsed: ParsedSearch, ctx: Ctx): string {
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

function sortSql(key: SortKey, ctx: Ctx): string {
  const dir = key.descending ? 'DESC' : 'ASC';
  if ('column' in key.source) return `r.${key.source.column} ${dir}`;
  const { table, indexParam, type } = key.source;
  const cols = SORT_COLUMNS[type];
  if (!cols) throw new Error(`cannot sort on ${type}`);
  const agg = key.descending ? `max(${cols[1]})` : `min(${cols[0]})`;
  const value = `(SELECT ${agg} FROM ${ctx.s}.${table} i WHERE i.rid = r.rid AND i.resource_type = ${ctx.rt} AND i.param = ${ctx.b.add(indexParam)})`;
  return `${value} ${dir} NULLS LAST`;
}

function context(schema: string, parsed: ParsedSearch): Ctx {
  const b = new Binder();
  return { s: quoteIdent(schema), b, rt: b.add(parsed.resourceType) };
}

/**
 * SQL returning the matching current, non-deleted resources of one page, in `_sort` order (then by
 * rid), or by last_updated then rid without _sort (the order of resource_type_updated_idx).
 * Columns: rid, id, resource_type, version_id, last_updated, content. Resources without a value
 * for a sort parameter come last in both directions.
 */
export function buildSearchSql(schema: string, parsed: ParsedSearch, page: { limit: number; offset: number }): { sql: string; params: unknown[] } {
  const ctx = context(schema, parsed);
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
