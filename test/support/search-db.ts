/**
 * A PGlite database with one tenant schema holding hand-made resources and their index rows, for
 * search tests. Deleted resources are stored as tombstones without index rows, as the writer does.
 */
import { PGlite } from '@electric-sql/pglite';
import type { FhirResource as Resource } from 'fhir/r4.js';
import { expect } from 'vitest';
import { FhirError } from '../../src/fhir/outcome.js';
import { extractIndexRows } from '../../src/search/extract.js';
import { buildSearchSql, parseSearch, type SearchOptions } from '../../src/search/query.js';
import { INDEX_COLUMNS, migrations } from '../../src/store/schema.js';

export const SCHEMA = 't_test';

export interface Fixture {
  r: Resource;
  deleted?: boolean;
  /** Default: one second after the previous fixture's, from 2024-01-01T00:00:01Z. */
  lastUpdated?: string;
}

export async function createSearchDb(resources: Fixture[]): Promise<PGlite> {
  const db = new PGlite();
  await db.exec(`CREATE SCHEMA ${SCHEMA}`);
  for (const m of migrations(SCHEMA)) await db.exec(m);
  let n = 0;
  for (const { r, deleted, lastUpdated } of resources) {
    n++;
    const res = await db.query<{ rid: number }>(
      `INSERT INTO ${SCHEMA}.resource (resource_type, id, version_id, last_updated, deleted, content) VALUES ($1, $2, 1, $3, $4, $5) RETURNING rid`,
      [r.resourceType, r.id, lastUpdated ?? new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString(), deleted ?? false, JSON.stringify(r)],
    );
    if (deleted) continue;
    const rid = res.rows[0]!.rid;
    for (const row of extractIndexRows(r)) {
      const cols = INDEX_COLUMNS[row.table];
      const ph = cols.map((_, i) => `$${i + 4}`).join(', ');
      await db.query(`INSERT INTO ${SCHEMA}.${row.table} (rid, resource_type, param, ${cols.join(', ')}) VALUES ($1, $2, $3, ${ph})`, [
        rid,
        r.resourceType,
        row.param,
        ...row.values,
      ]);
    }
  }
  return db;
}

/** 'a=1&b=2' → pairs, without URL decoding (so '+', '|' and '$' stay as written). */
export function pairs(query: string): Array<[string, string]> {
  if (!query) return [];
  return query.split('&').map((kv) => {
    const eq = kv.indexOf('=');
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  });
}

/** The sorted ids a search returns (strict mode unless told otherwise). */
export async function searchIds(db: PGlite, type: string, query: string, options: Partial<SearchOptions> = {}): Promise<string[]> {
  const parsed = parseSearch(type, pairs(query), { strict: true, ...options });
  const { sql, params } = buildSearchSql(SCHEMA, parsed, { limit: 1000, offset: 0 });
  const res = await db.query<{ id: string }>(sql, params);
  return res.rows.map((r) => r.id).sort();
}

/** The FhirError `fn` throws (fails the test when it throws nothing or something else). */
export function fhirErrorOf(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    return e as FhirError;
  }
  throw new Error('expected a FhirError');
}

/** Parse in strict mode and return the 400's first issue (expression and diagnostics). */
export function badSearch(type: string, query: string): { status: number; expression: string[] | undefined; message: string } {
  const e = fhirErrorOf(() => parseSearch(type, pairs(query), { strict: true }));
  return { status: e.status, expression: e.issues[0]?.expression, message: e.message };
}
