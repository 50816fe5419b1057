/**
 * Search conditions used by writes (If-None-Exist, conditional update/delete, conditional
 * references in transactions). They go through the search engine itself, in strict mode: a
 * parameter the engine would ignore must not silently widen what a write touches.
 */
import { buildSearchSql, parseSearch } from '../search/query.js';
import { Binder } from '../search/query-sql.js';
import type { SearchRegistry } from '../search/registry.js';
import type { SqlClient } from '../store/db.js';
import type { StoredVersion } from '../store/resource-store.js';

export function queryPairs(query: string): Array<[string, string]> {
  return [...new URLSearchParams(query.startsWith('?') ? query.slice(1) : query)];
}

/** A canonical form of a condition: the same condition always gives the same lock. */
export function normalizeQuery(query: string): string {
  return queryPairs(query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .sort()
    .join('&');
}

interface MatchRow {
  id: string;
  resource_type: string;
  version_id: number;
  last_updated: Date | string;
  content: string;
}

const toStored = (row: MatchRow): StoredVersion => ({
  resourceType: row.resource_type,
  id: row.id,
  versionId: Number(row.version_id),
  lastUpdated: new Date(row.last_updated).toISOString(),
  deleted: false,
  content: row.content,
});

/** `registry`: the tenant's search parameters (searchRegistryOf(store)); core ones when omitted. */
export async function findMatches(client: SqlClient, schema: string, resourceType: string, query: string, limit: number, registry?: SearchRegistry): Promise<StoredVersion[]> {
  const parsed = parseSearch(resourceType, queryPairs(query), { strict: true, registry });
  const { sql, params } = buildSearchSql(schema, parsed, { limit, offset: 0 });
  const r = await client.query<MatchRow>(sql, params);
  return r.rows.map(toStored);
}

/**
 * Several conditions matched in ONE statement (each a subquery of a UNION ALL, sharing one set of
 * bind parameters): the matches of each, in the order given. Same semantics as findMatches.
 */
export async function findMatchesMany(
  client: SqlClient,
  schema: string,
  conditions: Array<{ resourceType: string; query: string }>,
  limit: number,
  registry?: SearchRegistry,
): Promise<StoredVersion[][]> {
  if (conditions.length === 0) return [];
  if (conditions.length === 1) return [await findMatches(client, schema, conditions[0]!.resourceType, conditions[0]!.query, limit, registry)];
  const binder = new Binder();
  const parts = conditions.map((c, k) => {
    const parsed = parseSearch(c.resourceType, queryPairs(c.query), { strict: true, registry });
    return `SELECT ${k} AS k, q.* FROM (${buildSearchSql(schema, parsed, { limit, offset: 0 }, binder).sql}) q`;
  });
  const r = await client.query<MatchRow & { k: number }>(parts.join('\nUNION ALL\n'), binder.params);
  const out: StoredVersion[][] = conditions.map(() => []);
  for (const row of r.rows) out[Number(row.k)]!.push(toStored(row));
  return out;
}
