/**
 * Search (search.html) at type, system and compartment level, GET and POST _search: builds the
 * searchset Bundle as JSON text, embedding stored resources without re-serialising them unless
 * _summary / _elements asks for a subset.
 *
 * - Paging is keyset (paging.ts): next / previous links carry an opaque _cursor; _offset still works
 *   for the first page asked. Links echo only the parameters the search used.
 * - total: _total=accurate counts, _total=estimate asks the planner, _total=none never gives one;
 *   by default a total is given only when it is known for free (the whole result fits the first
 *   page). _summary=count counts and returns no entries. _count=0 counts too unless _total says otherwise.
 * - _include / _revinclude (include.ts), _summary / _elements (summary.ts).
 * - Ignored parameters are listed in an OperationOutcome entry (search.mode = outcome); with
 *   Prefer: handling=strict they are a 400 instead (raised while parsing).
 */
import { filterVisible, restrictSearch } from '../auth/policy.js';
import { badRequest, outcome } from '../fhir/outcome.js';
import { MAX_INCLUDED, parseIncludes, resolveIncludes } from '../search/include.js';
import {
  buildEstimateSql,
  buildPageSql,
  buildScopeCountSql,
  cursorAt,
  decodeCursor,
  keyCount,
  pageRows,
  planRows,
  type Cursor,
  type PageRow,
  type SearchScope,
} from '../search/paging.js';
import { isResourceType } from '../search/parameters.js';
import { DEFAULT_COUNT, MAX_COUNT, parseSearch, type ParsedSearch, type SearchOptions } from '../search/query.js';
import { shapeOf, shapeText } from '../search/summary.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import { bundleText, type BundleEntryText } from './bundle-json.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { readClient } from './context.js';

/** What is searched: the URL path links are written with ('Patient', '', 'Patient/1/Observation') and the scope. */
export interface SearchTarget {
  path: string;
  scope: SearchScope;
}

/** Parameters every resource type has, usable in a search across all types. */
const COMMON_PARAMS = new Set(['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']);
/** Control parameters that never need to be known to a type. */
const CONTROL_PARAMS = new Set(['_count', '_offset', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_cursor', '_contained', '_containedType']);
/** A DomainResource type used to parse the common parameters of a search across all types. */
const PARSE_AS_ANY = 'Basic';

/** Type-level search (GET [type]?..., POST [type]/_search), or system search without a type. */
export async function searchResources(
  ctx: InteractionContext,
  resourceType: string | undefined,
  pairs: Array<[string, string]>,
  options: { strict: boolean },
): Promise<InteractionResult> {
  if (!resourceType) return systemSearch(ctx, pairs, options);
  return runSearch(ctx, { path: resourceType, scope: { types: [resourceType] } }, pairs, options);
}

/** System search (GET [base]?_type=..., POST [base]/_search): _type names the types, else all of them. */
export async function systemSearch(ctx: InteractionContext, pairs: Array<[string, string]>, options: { strict: boolean }): Promise<InteractionResult> {
  const typeValues = pairs.filter(([k]) => k === '_type').flatMap(([, v]) => v.split(','));
  const types = [...new Set(typeValues.map((t) => t.trim()).filter(Boolean))];
  for (const t of types) if (!isResourceType(t)) throw badRequest(`_type: '${t}' is not a resource type`, ['_type']);
  return runSearch(ctx, { path: '', scope: { types: types.length ? types : 'all' } }, pairs, options);
}

/**
 * Parse the parameters for every type of the scope. Across several types a parameter must mean
 * the same for each (same index parameter and value type); across all types only the common
 * parameters (_id, _lastUpdated, _tag, _profile, _security, _source) apply.
 */
function parseScoped(scope: SearchScope, pairs: Array<[string, string]>, options: SearchOptions): ParsedSearch {
  const types = scope.types;
  if (types !== 'all' && types.length === 1) return parseSearch(types[0]!, pairs, options);
  if (types === 'all') {
    const kept: Array<[string, string]> = [];
    const unknown: string[] = [];
    for (const pair of pairs) {
      const code = pair[0].split(':')[0]!.split('.')[0]!;
      if (COMMON_PARAMS.has(code) || CONTROL_PARAMS.has(code)) kept.push(pair);
      else if (options.strict) throw badRequest(`Search parameter '${pair[0]}' is not one of the parameters common to all resource types`, [code]);
      else if (!unknown.includes(code)) unknown.push(code);
    }
    const parsed = parseSearch(PARSE_AS_ANY, kept, options);
    for (const k of parsed.sort) {
      if (!('column' in k.source) && !COMMON_PARAMS.has(k.code)) throw badRequest(`Cannot sort on '${k.code}' across all resource types`, ['_sort']);
    }
    return { ...parsed, resourceType: '', unknown: [...parsed.unknown, ...unknown] };
  }
  const all = types.map((t) => parseSearch(t, pairs, options));
  const first = all[0]!;
  const shape = (p: ParsedSearch) => JSON.stringify([p.filters, p.sort]);
  if (all.some((p) => shape(p) !== shape(first))) {
    throw badRequest(`The search parameters do not mean the same for all of ${types.join(', ')}; search the types one at a time`);
  }
  const merge = (get: (p: ParsedSearch) => string[]) => [...new Set(all.flatMap(get))];
  return { ...first, resourceType: '', unknown: merge((p) => p.unknown), unsupported: merge((p) => p.unsupported) };
}

export async function runSearch(
  ctx: InteractionContext,
  target: SearchTarget,
  pairs: Array<[string, string]>,
  options: SearchOptions,
): Promise<InteractionResult> {
  // What the access token reaches is part of the search itself (src/auth/policy.ts).
  ({ target, pairs } = restrictSearch(ctx, target, pairs));
  options = { ...options, registry: options.registry ?? searchRegistryOf(ctx.store) }; // the tenant's search parameters
  const rest = pairs.filter(([k]) => k !== '_format' && k !== '_pretty' && (k !== '_type' || target.path !== ''));
  const parsed = parseScoped(target.scope, rest, options);
  const includes = parseIncludes(rest, options);
  // Warnings for the outcome entry: [issue code, text].
  const notes: Array<['not-supported' | 'incomplete', string]> = [
    ...parsed.unknown.map((p) => `Unknown search parameter '${p}'${parsed.resourceType ? ` for ${parsed.resourceType}` : ''} was ignored`),
    ...(parsed.unsupported ?? []).map((p) => `Search parameter '${p}' is not supported yet and was ignored`),
    ...includes.warnings,
  ].map((text) => ['not-supported', text]);
  if (parsed.summary !== undefined && parsed.summary !== 'false' && parsed.elements?.length) {
    notes.push(['not-supported', '_elements was ignored: _summary is given too']);
  }
  const shape = shapeOf(parsed.summary, parsed.elements);
  const count = Math.min(parsed.count ?? DEFAULT_COUNT, MAX_COUNT);
  const countOnly = parsed.summary === 'count';
  const client = readClient(ctx);
  const schema = ctx.store.schema;
  const scope = target.scope;

  let cursor: Cursor | undefined = parsed.cursor ? decodeCursor(parsed.cursor, parsed.sort) : undefined;
  const offset = cursor ? 0 : (parsed.offset ?? 0);
  const fetchPage = async (c: Cursor | undefined): Promise<PageRow[]> => {
    const q = buildPageSql(schema, parsed, scope, { limit: count + 1, offset: c ? 0 : offset, cursor: c });
    return pageRows((await client.query<Record<string, unknown>>(q.sql, q.params)).rows, keyCount(parsed));
  };
  let page: PageRow[] = [];
  let hasNext = false;
  let hasPrevious = false;
  if (!countOnly && count > 0) {
    let rows = await fetchPage(cursor);
    if (cursor?.dir === 'before' && rows.length <= count) {
      // Back at the start: that is the first page.
      cursor = undefined;
      rows = await fetchPage(undefined);
    }
    if (cursor?.dir === 'before') {
      page = rows.slice(0, count).reverse();
      hasPrevious = true;
      hasNext = true;
    } else {
      page = rows.slice(0, count);
      hasNext = rows.length > count;
      hasPrevious = cursor !== undefined || offset > 0;
    }
  }

  // total (search.html#total): never a count query unless asked for.
  let total: number | undefined;
  const known = !countOnly && count > 0 && !hasNext && !cursor ? offset + page.length : undefined;
  if (parsed.total !== 'none' || countOnly) {
    if (known !== undefined) total = known;
    else if (countOnly || parsed.total === 'accurate' || (count === 0 && parsed.total === undefined)) {
      const c = buildScopeCountSql(schema, parsed, scope);
      total = Number((await client.query<{ count: string | number }>(c.sql, c.params)).rows[0]?.count ?? 0);
    } else if (parsed.total === 'estimate') {
      const e = buildEstimateSql(schema, parsed, scope);
      total = planRows((await client.query<Record<string, unknown>>(e.sql, e.params)).rows);
    }
  }

  const entries: BundleEntryText[] = page.map((r) => ({
    fullUrl: `${ctx.baseUrl}/${r.resource_type}/${r.id}`,
    resource: shape ? shapeText(r.content, shape) : r.content,
    search: { mode: 'match' },
  }));
  if (includes.specs.length && page.length) {
    const inc = await resolveIncludes(client, schema, ctx.baseUrl, page, includes.specs);
    inc.rows = await filterVisible(ctx, inc.rows);
    const includeShape = shape?.kind === 'elements' ? undefined : shape;
    for (const r of inc.rows) {
      entries.push({
        fullUrl: `${ctx.baseUrl}/${r.resource_type}/${r.id}`,
        resource: includeShape ? shapeText(r.content, includeShape) : r.content,
        search: { mode: 'include' },
      });
    }
    if (inc.truncated) notes.push(['incomplete', `Only the first ${MAX_INCLUDED} included resources are returned`]);
  }
  if (notes.length) {
    entries.push({
      resource: outcome(notes.map(([code, diagnostics]) => ({ severity: 'warning', code, diagnostics }))),
      search: { mode: 'outcome' },
    });
  }

  // Links echo only the parameters the search used (search.html#conformance), as GET urls.
  const ignored = new Set([...parsed.unknown, ...(parsed.unsupported ?? [])]);
  const used = rest.filter((pair) => {
    const [k] = pair;
    const code = k.split(':')[0]!.split('.')[0]!;
    if (k === '_cursor' || k === '_offset' || k === '_count' || includes.rejected.has(pair)) return false;
    if (code === '_elements' && shape?.kind !== 'elements') return false;
    return !ignored.has(code) && !ignored.has(k);
  });
  if (target.path === '' && scope.types !== 'all') used.unshift(['_type', scope.types.join(',')]);
  const link = (extra: Record<string, string>) => {
    const q = new URLSearchParams(used);
    q.set('_count', String(count));
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return `${ctx.baseUrl}${target.path ? `/${target.path}` : ''}?${q}`;
  };
  const self: Record<string, string> = cursor && parsed.cursor ? { _cursor: parsed.cursor } : offset > 0 ? { _offset: String(offset) } : {};
  const links = [{ relation: 'self', url: link(self) }];
  if (!countOnly) {
    if (hasPrevious || hasNext) links.push({ relation: 'first', url: link({}) });
    if (hasPrevious && page.length) links.push({ relation: 'previous', url: link({ _cursor: cursorAt(parsed, page[0]!, 'before') }) });
    if (hasNext && page.length) links.push({ relation: 'next', url: link({ _cursor: cursorAt(parsed, page[page.length - 1]!, 'after') }) });
  }
  return { status: 200, body: bundleText({ type: 'searchset', total, links, entries }) };
}
