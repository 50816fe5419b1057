/**
 * Search conditions used by writes (If-None-Exist, conditional update/delete, conditional
 * references in transactions). They go through the search engine itself, in strict mode: a
 * parameter the engine would ignore must not silently widen what a write touches.
 */
import { buildSearchSql, parseSearch } from '../search/query.js';
import { Binder } from '../search/query-sql.js';
import type { ParsedSearch } from '../search/query-types.js';
import type { SearchRegistry } from '../search/registry.js';
import { PREPARED, type SqlClient } from '../store/db.js';
import type { StoredVersion } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';

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
 * Several conditions matched in ONE statement: the matches of each, in the order given. Same
 * semantics as findMatches. Conditions that are one plain token parameter (identifier=sys|value,
 * alternatives OR-ed: every HL7 v2 identity and most If-None-Exist) go through one fixed
 * statement joining the values, as arrays, to the token index — planned in a fraction of a
 * millisecond whatever their number; the others are subqueries of a UNION ALL sharing one set
 * of bind parameters (planning those costs ~1 ms a subquery).
 */
export async function findMatchesMany(
  client: SqlClient,
  schema: string,
  conditions: Array<{ resourceType: string; query: string }>,
  limit: number,
  registry?: SearchRegistry,
): Promise<StoredVersion[][]> {
  if (conditions.length === 0) return [];
  const parsed = conditions.map((c) => parseSearch(c.resourceType, queryPairs(c.query), { strict: true, registry }));
  const out: StoredVersion[][] = conditions.map(() => []);
  const tokens = new TokenMatches();
  const others: number[] = [];
  for (const [k, p] of parsed.entries()) if (!tokens.add(k, p)) others.push(k);
  const pending: Array<Promise<void>> = [];
  if (tokens.size) pending.push(tokens.run(client, schema, limit, out));
  if (others.length) {
    const binder = new Binder();
    const parts = others.map((k) => `SELECT ${k} AS k, q.* FROM (${buildSearchSql(schema, parsed[k]!, { limit, offset: 0 }, binder).sql}) q`);
    pending.push(
      client.query<MatchRow & { k: number }>(parts.join('\nUNION ALL\n'), binder.params).then((r) => {
        for (const row of r.rows) out[Number(row.k)]!.push(toStored(row));
      }),
    );
  }
  await Promise.all(pending);
  return out;
}

/** Plain token conditions, one row per alternative: [k, type, index param, code, any system?, system]. */
class TokenMatches {
  private readonly rows: { k: number[]; type: string[]; param: string[]; code: string[]; anySystem: boolean[]; system: Array<string | null> } = {
    k: [], type: [], param: [], code: [], anySystem: [], system: [],
  };
  size = 0;

  /** Takes the condition when it is one unmodified token filter with codes; false otherwise. */
  add(k: number, p: ParsedSearch): boolean {
    const [f] = p.filters;
    if (p.filters.length !== 1 || p.sort.length || p.offset || p.cursor || !f || f.negate || f.modifier || f.path || !('table' in f.source) || f.source.table !== 'sp_token') return false;
    if (!f.anyOf.every((c) => c.kind === 'token' && c.code !== undefined)) return false;
    for (const c of f.anyOf as Array<{ system?: string | null; code: string }>) {
      for (const param of f.source.indexParams) {
        this.rows.k.push(k);
        this.rows.type.push(p.resourceType);
        this.rows.param.push(param);
        this.rows.code.push(c.code);
        this.rows.anySystem.push(c.system === undefined);
        this.rows.system.push(c.system ?? null);
      }
    }
    this.size++;
    return true;
  }

  async run(client: SqlClient, schema: string, limit: number, out: StoredVersion[][]): Promise<void> {
    const s = quoteIdent(schema);
    const { k, type, param, code, anySystem, system } = this.rows;
    const r = await client.query<MatchRow & { k: number }>(
      `SELECT x.k, r.id, r.resource_type, r.version_id, r.last_updated, r.content
       FROM (SELECT DISTINCT m.k, i.rid
             FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[]) AS m(k, resource_type, param, code, any_system, system)
             JOIN ${s}.sp_token i ON i.resource_type = m.resource_type AND i.param = m.param AND i.code = m.code
              AND (m.any_system OR i.system IS NOT DISTINCT FROM m.system)) x
       JOIN ${s}.resource r ON r.rid = x.rid AND NOT r.deleted
       ORDER BY x.k, r.last_updated, r.rid`,
      [k, type, param, code, anySystem, system],
      PREPARED,
    );
    for (const row of r.rows) {
      const matches = out[Number(row.k)]!;
      if (matches.length < limit) matches.push(toStored(row));
    }
  }
}
