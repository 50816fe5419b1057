/**
 * Versioned resource rows of one tenant (one PostgreSQL schema). Knows nothing of HTTP or FHIR
 * semantics beyond versions: the interaction layer decides what to write, this writes it.
 */
import { PREPARED, type Database, type SqlClient } from './db.js';
import { INDEX_COLUMNS, INDEX_TABLES, migrations, quoteIdent, type IndexTable } from './schema.js';
import { indexRowsJson, indexValueCasts, insertNewSql, replaceCurrentSql, type IndexRowsParam } from './write-sql.js';

export interface StoredVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  deleted: boolean;
  /** The resource's JSON text exactly as stored (null for a deletion). */
  content: string | null;
}

export interface CurrentVersion extends StoredVersion {
  rid: string;
}

export interface IndexRow {
  table: IndexTable;
  param: string;
  values: (string | number | null)[];
}

export interface NewVersion extends StoredVersion {
  indexRows: IndexRow[];
}

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  since?: string;
  /** Versions current at some point in [atLow, atHigh]. */
  at?: { low: string; high: string };
  count: number;
  /** Keyset position: return versions strictly older than this one. */
  after?: HistoryCursor;
}

export interface HistoryCursor {
  lastUpdated: string;
  resourceType: string;
  id: string;
  versionId: number;
}

const VERSION_COLUMNS = 'resource_type, id, version_id, last_updated, deleted, content';
/** The same, of a table aliased r. */
const VERSION_COLUMNS_OF_R = VERSION_COLUMNS.split(', ').map((c) => `r.${c}`).join(', ');

interface VersionRow {
  rid?: string | number;
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: Date | string;
  deleted: boolean;
  content: string | null;
}

function toVersion(row: VersionRow): StoredVersion {
  return {
    resourceType: row.resource_type,
    id: row.id,
    versionId: Number(row.version_id),
    lastUpdated: row.last_updated instanceof Date ? row.last_updated.toISOString() : new Date(row.last_updated).toISOString(),
    deleted: row.deleted,
    content: row.content,
  };
}

export class ResourceStore {
  private readonly s: string;

  constructor(
    readonly db: Database,
    readonly schema: string,
  ) {
    this.s = quoteIdent(schema);
  }

  /** Create the schema and apply pending migrations; safe to run concurrently from several processes. */
  async migrate(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`carebridge:migrate:${this.schema}`]);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${this.s}`);
      await tx.query(`CREATE TABLE IF NOT EXISTS ${this.s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = await tx.query<{ version: number }>(`SELECT version FROM ${this.s}.schema_migrations`);
      const applied = new Set(done.rows.map((r) => Number(r.version)));
      const steps = migrations(this.schema);
      for (let i = 0; i < steps.length; i++) {
        if (applied.has(i + 1)) continue;
        for (const statement of splitStatements(steps[i]!)) await tx.query(statement);
        await tx.query(`INSERT INTO ${this.s}.schema_migrations (version) VALUES ($1)`, [i + 1]);
      }
    });
  }

  async current(client: SqlClient, resourceType: string, id: string, forUpdate = false): Promise<CurrentVersion | undefined> {
    const r = await client.query<VersionRow>(
      `SELECT rid, ${VERSION_COLUMNS} FROM ${this.s}.resource WHERE resource_type = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`,
      [resourceType, id],
      PREPARED,
    );
    const row = r.rows[0];
    return row ? { ...toVersion(row), rid: String(row.rid) } : undefined;
  }

  /**
   * The current rows of `targets` ('Type/id'; absent ones have no version) and, for each, whether
   * any current resource of `sourceType` refers to it through the search parameter `param`, in one
   * statement: for consumers that skip work when nothing refers to a resource (an over-approximation
   * of a search on that parameter: other filters are theirs).
   */
  async currentAndReferenced(
    client: SqlClient,
    targets: string[],
    sourceType: string,
    param: string,
  ): Promise<Map<string, { version?: CurrentVersion; referenced: boolean }>> {
    const out = new Map<string, { version?: CurrentVersion; referenced: boolean }>();
    if (targets.length === 0) return out;
    const r = await client.query<Partial<VersionRow> & { target: string; referenced: boolean }>(
      `SELECT k.t || '/' || k.i AS target, r.rid, ${VERSION_COLUMNS_OF_R},
              EXISTS (SELECT 1 FROM ${this.s}.sp_reference x
                      WHERE x.target_type = k.t AND x.target_id = k.i AND x.resource_type = $2 AND x.param = $3) AS referenced
       FROM (SELECT e->>0 AS t, e->>1 AS i FROM json_array_elements($1::json) e) k
       LEFT JOIN ${this.s}.resource r ON r.resource_type = k.t AND r.id = k.i`,
      [JSON.stringify(targets.map((t) => t.split('/'))), sourceType, param],
      PREPARED,
    );
    for (const row of r.rows) {
      const version = row.id !== null && row.id !== undefined ? { ...toVersion(row as VersionRow), rid: String(row.rid) } : undefined;
      out.set(row.target, { version, referenced: row.referenced });
    }
    return out;
  }

  /** The current rows of several resources in one statement (absent ones are missing from the map, keyed `type/id`). */
  async currentMany(client: SqlClient, keys: Array<{ resourceType: string; id: string }>, forUpdate = false): Promise<Map<string, CurrentVersion>> {
    const out = new Map<string, CurrentVersion>();
    if (keys.length === 0) return out;
    if (keys.length === 1) {
      // One key (most calls): the by-id statement, whose generic plan is kept; the list form's plan
      // depends on the list's length, so PostgreSQL plans it again on most executions.
      const k = keys[0]!;
      const v = await this.current(client, k.resourceType, k.id, forUpdate);
      if (v) out.set(`${v.resourceType}/${v.id}`, v);
      return out;
    }
    const r = await client.query<VersionRow>(
      `SELECT rid, ${VERSION_COLUMNS} FROM ${this.s}.resource
       WHERE (resource_type, id) IN (SELECT e->>0, e->>1 FROM json_array_elements($1::json) e)${forUpdate ? ' FOR UPDATE' : ''}`,
      [JSON.stringify(keys.map((k) => [k.resourceType, k.id]))],
      PREPARED,
    );
    for (const row of r.rows) out.set(`${row.resource_type}/${row.id}`, { ...toVersion(row), rid: String(row.rid) });
    return out;
  }

  async version(client: SqlClient, resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
    const r = await client.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM ${this.s}.resource WHERE resource_type = $1 AND id = $2 AND version_id = $3
       UNION ALL
       SELECT ${VERSION_COLUMNS} FROM ${this.s}.resource_history WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
      [resourceType, id, versionId],
    );
    return r.rows[0] ? toVersion(r.rows[0]) : undefined;
  }

  /** Current, non-deleted resources by rid, in the order given. */
  async byRids(client: SqlClient, rids: string[]): Promise<CurrentVersion[]> {
    if (rids.length === 0) return [];
    const r = await client.query<VersionRow>(
      `SELECT rid, ${VERSION_COLUMNS} FROM ${this.s}.resource WHERE rid = ANY($1::bigint[])`,
      [rids],
    );
    const byRid = new Map(r.rows.map((row) => [String(row.rid), { ...toVersion(row), rid: String(row.rid) }]));
    return rids.map((rid) => byRid.get(rid)).filter((v): v is CurrentVersion => v !== undefined);
  }

  /**
   * Insert first versions of new resources with their index rows and change events, in one
   * statement (write-sql.ts, which also says how the rows travel).
   */
  async insertNew(tx: SqlClient, versions: NewVersion[], options: { changeEvents?: boolean } = {}): Promise<void> {
    if (versions.length === 0) return;
    // changeEvents false: the server's audit records (AuditEvent, Provenance), which no consumer needs.
    const changeEvents = options.changeEvents ?? true;
    let rows = '[';
    let contents = '[';
    for (let i = 0; i < versions.length; i++) {
      const v = versions[i]!;
      const sep = i === 0 ? '' : ',';
      rows += `${sep}[${JSON.stringify(v.resourceType)},${JSON.stringify(v.id)},${v.versionId},${JSON.stringify(v.lastUpdated)},${v.deleted}]`;
      contents += `${sep}${v.content ?? 'null'}`;
    }
    const { tables, params } = indexParams(versions, 4);
    const r = await tx.query<{ events: number }>(insertNewSql(this.s, tables, changeEvents), [`${rows}]`, this.schema, `${contents}]`, ...params], PREPARED);
    const expected = changeEvents ? versions.length : 0;
    if (Number(r.rows[0]?.events) !== expected) throw new Error(`insert of ${versions.length} versions recorded ${r.rows[0]?.events} change events`);
  }

  /**
   * Replace the current version (locked by the caller): the old one moves to history, the index is
   * rewritten and the change event recorded, in one statement.
   */
  async replaceCurrent(tx: SqlClient, previous: CurrentVersion, next: NewVersion): Promise<void> {
    const { tables, params } = indexParams([next], 9);
    const action = next.deleted ? 'delete' : previous.deleted ? 'create' : 'update';
    const r = await tx.query<{ events: number }>(replaceCurrentSql(this.s, VERSION_COLUMNS, tables), [
      previous.rid,
      next.versionId,
      next.lastUpdated,
      next.deleted,
      next.content,
      previous.versionId,
      this.schema,
      action,
      ...params,
    ], PREPARED);
    // The caller holds the row lock, so this can only fail if that contract is broken.
    if (Number(r.rows[0]?.events) !== 1) throw new Error(`version conflict on ${previous.resourceType}/${previous.id}`);
  }

  /** Rewrite the index rows of current resources (locked by the caller), keeping their versions: reindexing. */
  async replaceIndexRows(tx: SqlClient, items: { rid: string; resourceType: string; rows: IndexRow[] }[]): Promise<void> {
    if (items.length === 0) return;
    await this.deleteIndexRows(tx, items.map((i) => i.rid));
    await this.insertIndexRows(tx, items);
  }

  private async deleteIndexRows(tx: SqlClient, rids: string[]): Promise<void> {
    for (const table of INDEX_TABLES) {
      await tx.query(`DELETE FROM ${this.s}.${table} WHERE rid = ANY($1::bigint[])`, [rids]);
    }
  }

  private async insertIndexRows(tx: SqlClient, items: { rid: string; resourceType: string; rows: IndexRow[] }[]): Promise<void> {
    for (const [table, rows] of indexRowsJson(items, (item) => item.rows, (item) => `${JSON.stringify(item.rid)},${JSON.stringify(item.resourceType)}`)) {
      await tx.query(
        `INSERT INTO ${this.s}.${table} (rid, resource_type, param, ${INDEX_COLUMNS[table].join(', ')})
         SELECT (e->>0)::bigint, e->>1, e->>2, ${indexValueCasts(table, 3)} FROM json_array_elements($1::json) e`,
        [rows],
      );
    }
  }

  /** History newest first, keyset-paged on (last_updated, resource_type, id, version_id). */
  async history(client: SqlClient, q: HistoryQuery): Promise<StoredVersion[]> {
    const params: unknown[] = [];
    const where: string[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.resourceType) where.push(`resource_type = ${p(q.resourceType)}`);
    if (q.id) where.push(`id = ${p(q.id)}`);
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    let source = `(SELECT ${VERSION_COLUMNS} FROM ${this.s}.resource ${filter}
                   UNION ALL SELECT ${VERSION_COLUMNS} FROM ${this.s}.resource_history ${filter})`;
    const outer: string[] = [];
    if (q.at) {
      // A version was current during [low, high] if it started before high and its successor after low.
      source = `(SELECT * FROM (SELECT v.*, lead(v.last_updated) OVER (PARTITION BY v.resource_type, v.id ORDER BY v.version_id) AS superseded
                 FROM ${source} v) w WHERE w.last_updated <= ${p(q.at.high)} AND (w.superseded IS NULL OR w.superseded > ${p(q.at.low)}))`;
    }
    if (q.since) outer.push(`h.last_updated >= ${p(q.since)}`);
    if (q.after) {
      outer.push(
        `(h.last_updated, h.resource_type, h.id, h.version_id) < (${p(q.after.lastUpdated)}::timestamptz, ${p(q.after.resourceType)}, ${p(q.after.id)}, ${p(q.after.versionId)}::int)`,
      );
    }
    const sql = `SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.content FROM ${source} h
      ${outer.length ? `WHERE ${outer.join(' AND ')}` : ''}
      ORDER BY h.last_updated DESC, h.resource_type DESC, h.id DESC, h.version_id DESC LIMIT ${p(q.count)}`;
    const r = await client.query<VersionRow>(sql, params);
    return r.rows.map(toVersion);
  }

  /**
   * Serialise writers of one condition (conditional create/update/delete) for the rest of the
   * transaction, so that "search, then write" cannot race another writer of the same condition.
   */
  async lockCondition(tx: SqlClient, resourceType: string, normalizedQuery: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [this.conditionKey(resourceType, normalizedQuery)], PREPARED);
  }

  /**
   * The locks of several conditions in one statement, taken in a stable order (sorted keys) so
   * that two writers locking overlapping sets cannot deadlock. Same keys as lockCondition.
   */
  async lockConditions(tx: SqlClient, conditions: Array<{ resourceType: string; normalizedQuery: string }>): Promise<void> {
    const keys = [...new Set(conditions.map((c) => this.conditionKey(c.resourceType, c.normalizedQuery)))].sort();
    if (keys.length === 0) return;
    if (keys.length === 1) return tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', keys, PREPARED).then(() => undefined);
    // unnest yields the array in order, so the locks are taken in the sorted order.
    await tx.query('SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest($1::text[]) AS k', [keys], PREPARED);
  }

  private conditionKey(resourceType: string, normalizedQuery: string): string {
    return `${this.schema}:${resourceType}?${normalizedQuery}`;
  }
}

/** Index rows of the versions (keyed by position) as one JSON parameter per table present, numbered from `first`. */
function indexParams(versions: NewVersion[], first: number): { tables: IndexRowsParam[]; params: string[] } {
  const tables: IndexRowsParam[] = [];
  const params: string[] = [];
  for (const [table, rows] of indexRowsJson(versions, (v) => v.indexRows, (_, k) => String(k))) {
    tables.push({ table, param: first + params.length });
    params.push(rows);
  }
  return { tables, params };
}

/** Split a migration into statements (they contain no semicolons inside literals). */
function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
