/**
 * Keyset paging of search results (search.html#paging) and the statements around it: the page
 * query, the count (_total=accurate) and the planner's estimate (_total=estimate), over a scope of
 * one type, several types or all types (system search), with extra conditions (compartments).
 *
 * Results are ordered by the _sort keys then rid, or by (last_updated, rid) without _sort. A page
 * link carries an opaque cursor: the sort key values and rid of the row the page starts after
 * (next) or ends before (previous). The next page is the same query plus "(keys, rid) after the
 * cursor", so concurrent writes never make a page skip or repeat rows that were already ordered
 * before the cursor. Key values travel as PostgreSQL text and are cast back to the key's type,
 * so timestamps and numerics compare exactly. Keys in one direction and never NULL (the default
 * order) compare as one row value, which the (resource_type, last_updated, rid) index serves; other
 * orders (mixed directions, index values that may be missing and sort last) use the equivalent
 * OR-expansion: k1 beyond c1, or k1 = c1 and k2 beyond c2, ...
 */
import { badRequest } from '../fhir/outcome.js';
import { quoteIdent } from '../store/schema.js';
import { Binder, sortValueSql, whereSql, type Ctx } from './query-sql.js';
import type { ParsedSearch, SortKey } from './query-types.js';

/** Which resources a search ranges over, beyond its parameters. */
export interface SearchScope {
  /** One type (type and compartment search), several, or all (system search). */
  types: readonly string[] | 'all';
  /** Extra AND-ed conditions on `r` (compartment membership), built with the statement's binder and quoted schema. */
  conditions?: (b: Binder, schema: string) => string[];
}

export interface Cursor {
  /** after: the page starts after this row (next); before: the page ends before it (previous). */
  dir: 'after' | 'before';
  /** The _sort the cursor was made for: a cursor is only valid for the same order. */
  sort: string;
  values: (string | null)[];
  rid: string;
}

export interface PageRow {
  rid: string;
  id: string;
  resource_type: string;
  content: string;
  /** Sort key values as text (for cursors). */
  keys: (string | null)[];
}

interface OrderKey {
  expr: string;
  cast: string;
  desc: boolean;
  /** Index sort values may be missing (NULL, sorted last); columns never are. */
  nullable: boolean;
  nullsFirst: boolean;
}

const INDEX_CASTS: Record<string, string> = { date: 'timestamptz', number: 'numeric', quantity: 'numeric' };

export function sortSignature(sort: readonly SortKey[]): string {
  return sort.map((k) => `${k.descending ? '-' : ''}${k.code}`).join(',');
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify({ d: c.dir === 'after' ? 'a' : 'b', s: c.sort, v: c.values, r: c.rid })).toString('base64url');
}

/** Decode a _cursor for a search sorted by `sort`; 400 when it is not one of ours or was made for another order. */
export function decodeCursor(text: string, sort: readonly SortKey[]): Cursor {
  const bad = () => badRequest('The _cursor parameter is not one this server issued for this search', ['_cursor']);
  let raw: { d?: unknown; s?: unknown; v?: unknown; r?: unknown };
  try {
    raw = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as typeof raw;
  } catch {
    throw bad();
  }
  const keyCount = sort.length || 1;
  if (
    (raw.d !== 'a' && raw.d !== 'b') ||
    raw.s !== sortSignature(sort) ||
    !Array.isArray(raw.v) ||
    raw.v.length !== keyCount ||
    !raw.v.every((v) => v === null || typeof v === 'string') ||
    typeof raw.r !== 'string' ||
    !/^\d{1,19}$/.test(raw.r)
  ) {
    throw bad();
  }
  return { dir: raw.d === 'a' ? 'after' : 'before', sort: raw.s, values: raw.v as (string | null)[], rid: raw.r };
}

/** Statement context and WHERE clause for `parsed` over `scope`. */
function scoped(schema: string, parsed: ParsedSearch, scope: SearchScope): { ctx: Ctx; where: string } {
  const b = new Binder();
  const s = quoteIdent(schema);
  let ctx: Ctx;
  let where: string;
  if (scope.types !== 'all' && scope.types.length === 1) {
    ctx = { s, b, rt: b.add(scope.types[0]) };
    where = whereSql(parsed, ctx);
  } else {
    // Several types: index rows are matched on the row's own type; the type condition becomes a list (or none).
    ctx = { s, b, rt: 'r.resource_type' };
    where = whereSql(parsed, ctx).replace(/^r\.resource_type = r\.resource_type\s+AND /, '');
    if (scope.types !== 'all') where = `r.resource_type = ANY(${b.add([...scope.types])}::text[])\n  AND ${where}`;
  }
  for (const c of scope.conditions?.(b, s) ?? []) where += `\n  AND ${c}`;
  return { ctx, where };
}

function orderKeys(parsed: ParsedSearch, ctx: Ctx): OrderKey[] {
  const keys: OrderKey[] = parsed.sort.length
    ? parsed.sort.map((k) => {
        const column = 'column' in k.source;
        const cast = 'column' in k.source ? (k.source.column === 'id' ? 'text' : 'timestamptz') : (INDEX_CASTS[k.source.type] ?? 'text');
        return { expr: sortValueSql(k, ctx), cast, desc: k.descending, nullable: !column, nullsFirst: false };
      })
    : [{ expr: 'r.last_updated', cast: 'timestamptz', desc: false, nullable: false, nullsFirst: false }];
  return keys;
}

function orderBy(key: OrderKey, expr: string): string {
  return `${expr} ${key.desc ? 'DESC' : 'ASC'}${key.nullable ? (key.nullsFirst ? ' NULLS FIRST' : ' NULLS LAST') : ''}`;
}

/** Rows strictly after `values` in the order of `keys` (which end with rid). */
export function afterSql(keys: OrderKey[], values: (string | null)[], b: Binder): string {
  // Each value is bound once (and used at least once: an unused parameter has no type for PostgreSQL).
  const vals = keys.map((k, i) => (values[i] === null ? null : `${b.add(values[i])}::${k.cast}`));
  if (keys.every((k) => !k.nullable && k.desc === keys[0]!.desc) && vals.every((v) => v !== null)) {
    return `(${keys.map((k) => k.expr).join(', ')}) ${keys[0]!.desc ? '<' : '>'} (${vals.join(', ')})`;
  }
  const alts: string[] = [];
  const equal: string[] = [];
  keys.forEach((k, i) => {
    const v = vals[i]!;
    let beyond: string | undefined;
    if (v === null) beyond = k.nullsFirst ? `${k.expr} IS NOT NULL` : undefined;
    else {
      const cmp = `${k.expr} ${k.desc ? '<' : '>'} ${v}`;
      beyond = k.nullable && !k.nullsFirst ? `(${cmp} OR ${k.expr} IS NULL)` : cmp;
    }
    if (beyond) alts.push([...equal, beyond].join(' AND '));
    equal.push(v === null ? `${k.expr} IS NULL` : `${k.expr} = ${v}`);
  });
  return alts.length ? `(${alts.map((a) => `(${a})`).join('\n    OR ')})` : 'FALSE';
}

/**
 * One page: `limit` rows after `offset` rows, or after / before `cursor`. With a 'before' cursor
 * the rows come back nearest-first (reversed); the caller puts them back in order.
 */
export function buildPageSql(
  schema: string,
  parsed: ParsedSearch,
  scope: SearchScope,
  page: { limit: number; offset: number; cursor?: Cursor },
): { sql: string; params: unknown[] } {
  const { ctx, where } = scoped(schema, parsed, scope);
  const reverse = page.cursor?.dir === 'before';
  const keys = orderKeys(parsed, ctx).map((k) => (reverse ? { ...k, desc: !k.desc, nullsFirst: !k.nullsFirst } : k));
  const all = [...keys, { expr: 'r.rid', cast: 'bigint', desc: reverse, nullable: false, nullsFirst: false }];
  let cond = where;
  if (page.cursor) cond += `\n  AND ${afterSql(all, [...page.cursor.values, page.cursor.rid], ctx.b)}`;
  const cols = keys.map((k, i) => `${k.expr} AS k${i}`).join(', ');
  const inner =
    `SELECT r.rid, r.id, r.resource_type, r.content, ${cols}\n` +
    `  FROM ${ctx.s}.resource r\n` +
    `  WHERE ${cond}\n` +
    `  ORDER BY ${[...keys.map((k, i) => orderBy(k, `k${i}`)), orderBy(all[all.length - 1]!, 'r.rid')].join(', ')}\n` +
    `  LIMIT ${ctx.b.add(page.limit)}${page.offset > 0 ? ` OFFSET ${ctx.b.add(page.offset)}` : ''}`;
  const sql =
    `SELECT q.rid::text AS rid, q.id, q.resource_type, q.content, ${keys.map((_, i) => `q.k${i}::text AS c${i}`).join(', ')}\n` +
    `FROM (${inner}) q\n` +
    `ORDER BY ${[...keys.map((k, i) => orderBy(k, `q.k${i}`)), orderBy(all[all.length - 1]!, 'q.rid')].join(', ')}`;
  return { sql, params: ctx.b.params };
}

/** Page rows as returned by buildPageSql's statement. */
export function pageRows(rows: Record<string, unknown>[], keyCount: number): PageRow[] {
  return rows.map((r) => ({
    rid: String(r.rid),
    id: String(r.id),
    resource_type: String(r.resource_type),
    content: String(r.content),
    keys: Array.from({ length: keyCount }, (_, i) => (r[`c${i}`] === null || r[`c${i}`] === undefined ? null : String(r[`c${i}`]))),
  }));
}

export function keyCount(parsed: ParsedSearch): number {
  return parsed.sort.length || 1;
}

/** A cursor for the page after (`dir` after) or before (`dir` before) `row`. */
export function cursorAt(parsed: ParsedSearch, row: PageRow, dir: Cursor['dir']): string {
  return encodeCursor({ dir, sort: sortSignature(parsed.sort), values: row.keys, rid: row.rid });
}

/** All matches counted (_total=accurate, _summary=count). */
export function buildScopeCountSql(schema: string, parsed: ParsedSearch, scope: SearchScope): { sql: string; params: unknown[] } {
  const { ctx, where } = scoped(schema, parsed, scope);
  return { sql: `SELECT count(*) AS count\nFROM ${ctx.s}.resource r\nWHERE ${where}`, params: ctx.b.params };
}

/** The planner's row estimate for the matches (_total=estimate): EXPLAIN only, nothing is read. */
export function buildEstimateSql(schema: string, parsed: ParsedSearch, scope: SearchScope): { sql: string; params: unknown[] } {
  const { ctx, where } = scoped(schema, parsed, scope);
  return { sql: `EXPLAIN (FORMAT JSON) SELECT 1\nFROM ${ctx.s}.resource r\nWHERE ${where}`, params: ctx.b.params };
}

/** Plan Rows of the top node of an EXPLAIN (FORMAT JSON) result. */
export function planRows(rows: Record<string, unknown>[]): number | undefined {
  const first = rows[0];
  if (!first) return undefined;
  let plan = Object.values(first)[0];
  if (typeof plan === 'string') plan = JSON.parse(plan) as unknown;
  const n = (plan as { Plan?: { 'Plan Rows'?: number } }[] | undefined)?.[0]?.Plan?.['Plan Rows'];
  return typeof n === 'number' ? Math.round(n) : undefined;
}
