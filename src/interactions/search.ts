/** search-type (GET and POST _search): search.html. Builds a searchset Bundle from stored JSON. */
import { badRequest, outcome } from '../fhir/outcome.js';
import { buildCountSql, buildSearchSql, DEFAULT_COUNT, MAX_COUNT, parseSearch } from '../search/query.js';
import { bundleText, type BundleEntryText } from './bundle-json.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { readClient } from './context.js';

interface Row {
  id: string;
  resource_type: string;
  content: string;
}

export async function searchResources(
  ctx: InteractionContext,
  resourceType: string | undefined,
  pairs: Array<[string, string]>,
  options: { strict: boolean },
): Promise<InteractionResult> {
  if (!resourceType) throw badRequest('Search across all resource types is not supported yet; search one type, e.g. GET /Patient?name=…');
  const offsetText = pairs.find(([k]) => k === '_offset')?.[1];
  const offset = offsetText === undefined ? 0 : Number(offsetText);
  if (!Number.isInteger(offset) || offset < 0) throw badRequest('_offset must be a non-negative integer', ['_offset']);
  const rest = pairs.filter(([k]) => k !== '_offset' && k !== '_format' && k !== '_pretty');
  const parsed = parseSearch(resourceType, rest, options);
  const count = Math.min(parsed.count ?? DEFAULT_COUNT, MAX_COUNT);
  const client = readClient(ctx);
  const { sql, params } = buildSearchSql(ctx.store.schema, parsed, { limit: count + 1, offset });
  const rows = count === 0 ? [] : (await client.query<Row>(sql, params)).rows;
  const hasNext = rows.length > count;
  const page = rows.slice(0, count);
  const totalMode = rest.find(([k]) => k === '_total')?.[1];
  let total: number | undefined;
  if (totalMode === 'accurate' || count === 0 || (totalMode !== 'none' && !hasNext && offset === 0)) {
    if (!hasNext && count > 0) total = offset + page.length;
    else {
      const c = buildCountSql(ctx.store.schema, parsed);
      total = Number((await client.query<{ count: string | number }>(c.sql, c.params)).rows[0]?.count ?? 0);
    }
  }

  // Links echo only the parameters the search actually used (search.html#conformance).
  const used = rest.filter(([k]) => !parsed.unknown.includes(k.split(':')[0]!.split('.')[0]!));
  const link = (off: number) => {
    const q = new URLSearchParams(used);
    q.set('_count', String(count));
    if (off > 0) q.set('_offset', String(off));
    return `${ctx.baseUrl}/${resourceType}?${q}`;
  };
  const links = [{ relation: 'self', url: link(offset) }];
  if (offset > 0) links.push({ relation: 'previous', url: link(Math.max(0, offset - count)) });
  if (hasNext) links.push({ relation: 'next', url: link(offset + count) });

  const entries: BundleEntryText[] = page.map((r) => ({
    fullUrl: `${ctx.baseUrl}/${r.resource_type}/${r.id}`,
    resource: r.content,
    search: { mode: 'match' },
  }));
  const notes = [...parsed.unknown.map((p) => `Unknown search parameter '${p}' for ${resourceType} was ignored`), ...(parsed.unsupported ?? []).map((p) => `Search parameter '${p}' is not supported yet and was ignored`)];
  if (notes.length) {
    entries.push({
      resource: outcome(notes.map((diagnostics) => ({ severity: 'warning', code: 'not-supported', diagnostics }))),
      search: { mode: 'outcome' },
    });
  }
  return { status: 200, body: bundleText({ type: 'searchset', total, links, entries }) };
}
