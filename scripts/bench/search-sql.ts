/**
 * The SQL statement CareBridge runs for a search, for EXPLAIN in scripts/bench/search.ts.
 *
 * The search modules under src/search are being changed while this benchmark is used, so this is
 * the one place that knows their entry points, and it binds to them loosely: the modules are
 * imported at run time through non-literal specifiers (a changed signature never breaks the
 * benchmark's typecheck) and their exports are checked before use. If the page-statement builder
 * of keyset paging (paging.ts buildPageSql, what the search interaction runs) exists it is used,
 * else query.ts buildSearchSql. A failure (e.g. a parameter the parser does not support yet) is
 * returned as `error` for the report, never thrown.
 */

export interface GeneratedSql {
  sql: string;
  params: unknown[];
  /** Which builder made it, e.g. 'paging.ts buildPageSql'. */
  builder: string;
}

type ParseSearch = (resourceType: string, params: Array<[string, string]>, options: { strict: boolean }) => unknown;
type BuildSearchSql = (schema: string, parsed: unknown, page: { limit: number; offset: number }) => { sql: string; params: unknown[] };
type BuildPageSql = (schema: string, parsed: unknown, scope: { types: string[] }, page: { limit: number; offset: number }) => { sql: string; params: unknown[] };

interface Builders {
  parseSearch: ParseSearch;
  build: (schema: string, resourceType: string, parsed: unknown, limit: number) => { sql: string; params: unknown[] };
  name: string;
}

let loaded: Promise<Builders> | undefined;

async function tryImport(specifier: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function load(): Promise<Builders> {
  const querySpec = new URL('../../src/search/query.js', import.meta.url).href;
  const pagingSpec = new URL('../../src/search/paging.js', import.meta.url).href;
  const query = await tryImport(querySpec);
  if (!query || typeof query.parseSearch !== 'function') throw new Error('src/search/query.ts does not export parseSearch');
  const parseSearch = query.parseSearch as ParseSearch;
  const paging = await tryImport(pagingSpec);
  if (paging && typeof paging.buildPageSql === 'function') {
    const buildPageSql = paging.buildPageSql as BuildPageSql;
    return { parseSearch, name: 'paging.ts buildPageSql', build: (schema, rt, parsed, limit) => buildPageSql(schema, parsed, { types: [rt] }, { limit, offset: 0 }) };
  }
  if (typeof query.buildSearchSql === 'function') {
    const buildSearchSql = query.buildSearchSql as BuildSearchSql;
    return { parseSearch, name: 'query.ts buildSearchSql', build: (schema, _rt, parsed, limit) => buildSearchSql(schema, parsed, { limit, offset: 0 }) };
  }
  throw new Error('neither src/search/paging.ts buildPageSql nor src/search/query.ts buildSearchSql is exported');
}

/**
 * The statement for the first page (`limit` rows: CareBridge asks for _count + 1 to know whether
 * there is a next page) of `resourceType?pairs`, parsed as with `Prefer: handling=strict`.
 * _include / _revinclude run as separate statements in CareBridge and are not part of it.
 */
export async function carebridgeSearchSql(
  schema: string,
  resourceType: string,
  pairs: Array<[string, string]>,
  limit: number,
): Promise<GeneratedSql | { error: string }> {
  try {
    loaded ??= load();
    const b = await loaded;
    const parsed = b.parseSearch(resourceType, pairs, { strict: true });
    const { sql, params } = b.build(schema, resourceType, parsed, limit);
    if (typeof sql !== 'string' || !Array.isArray(params)) return { error: `${b.name} did not return { sql, params }` };
    return { sql, params, builder: b.name };
  } catch (error) {
    const status = (error as { status?: unknown }).status;
    return { error: `${typeof status === 'number' ? `${status}: ` : ''}${(error as Error).message ?? String(error)}` };
  }
}
