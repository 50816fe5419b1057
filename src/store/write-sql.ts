/**
 * The SQL of a version write as ONE statement: the resource row, its search-index rows in every
 * index table, and its change_event row (the transactional outbox) go in through data-modifying
 * CTEs. A database round trip costs more here than the work it carries (each is a socket write
 * and a wake-up on both sides), so a create is one statement and an update two (lock, write)
 * instead of one per table.
 *
 * All sub-statements of one statement see the same snapshot: the history copy reads the version
 * being replaced, and deleting a resource's old index rows never touches the rows inserted
 * beside it.
 */
import { INDEX_COLUMNS, INDEX_COLUMN_TYPES, INDEX_TABLES, type IndexTable } from './schema.js';

/** Channel the outbox relay LISTENs on; the payload is the tenant schema that changed. */
export const OUTBOX_CHANNEL = 'carebridge_outbox';

export interface IndexRowsParam {
  table: IndexTable;
  /** Parameter number ($n) holding a JSON array of [resource_type, id, param, ...values]. */
  param: number;
}

/**
 * Group index rows by table as JSON-ready arrays: each row is `key(item)` — (resource type, id) for
 * the write statement, (rid, resource type) for re-indexing — then param and the values.
 */
export function indexRowsByTable<T extends { rows: Array<{ table: IndexTable; param: string; values: unknown[] }> }>(
  items: T[],
  key: (item: T) => unknown[],
): Map<IndexTable, unknown[][]> {
  const byTable = new Map<IndexTable, unknown[][]>();
  for (const item of items) {
    const head = key(item);
    for (const row of item.rows) {
      let acc = byTable.get(row.table);
      if (!acc) byTable.set(row.table, (acc = []));
      acc.push([...head, row.param, ...row.values]);
    }
  }
  return byTable;
}

/** CTEs inserting index rows whose rid comes from `ridSource` (a CTE with rid, resource_type, id). */
function indexInsertCtes(s: string, tables: IndexRowsParam[], ridSource: string): string[] {
  return tables.map(({ table, param }) => {
    const columns = INDEX_COLUMNS[table];
    const casts = INDEX_COLUMN_TYPES[table].map((t, i) => `(e->>${i + 3})::${t}`).join(', ');
    return `ins_${table} AS (
      INSERT INTO ${s}.${table} (rid, resource_type, param, ${columns.join(', ')})
      SELECT r.rid, r.resource_type, e->>2, ${casts}
      FROM jsonb_array_elements($${param}::jsonb) e JOIN ${ridSource} r ON r.resource_type = e->>0 AND r.id = e->>1)`;
  });
}

/** The final SELECT: records the change events of `events` (a CTE or subquery) and wakes the relays. */
function changeEventTail(s: string, schemaParam: number, events: string): string {
  return `ev AS (
      INSERT INTO ${s}.change_event (resource_type, id, version_id, action)
      SELECT resource_type, id, version_id, action FROM ${events}
      RETURNING 1)
    SELECT pg_notify('${OUTBOX_CHANNEL}', $${schemaParam}), (SELECT count(*) FROM ev)::int AS events`;
}

/**
 * First versions of new resources. $1: JSON array of [type, id, versionId, lastUpdated, deleted,
 * content]; $2: the schema (notify payload); then one JSON parameter per index table present.
 */
export function insertNewSql(s: string, columns: string, tables: IndexRowsParam[], changeEvents = true): string {
  const head = `WITH new_rows AS (
      INSERT INTO ${s}.resource (${columns})
      SELECT e->>0, e->>1, (e->>2)::int, (e->>3)::timestamptz, (e->>4)::bool, e->>5 FROM jsonb_array_elements($1::jsonb) e
      RETURNING rid, resource_type, id, version_id)`;
  const ctes = indexInsertCtes(s, tables, 'new_rows');
  if (changeEvents) {
    return `${head},
    ${[...ctes, changeEventTail(s, 2, `(SELECT resource_type, id, version_id, 'create'::text AS action FROM new_rows) c`)].join(',\n    ')}`;
  }
  // The server's audit records (src/audit/record.ts): no change event, no NOTIFY. $2 stays in the
  // statement so that the parameter list is the same.
  return `${head}${ctes.map((c) => `,\n    ${c}`).join('')}
    SELECT 0 AS events WHERE $2::text IS NOT NULL`;
}

/**
 * A new version replacing the current row (locked by the caller): the old version to history,
 * the row updated only if it still has the expected version, the old index rows deleted and the
 * new ones inserted, the change event recorded. $1 rid, $2 new versionId, $3 lastUpdated,
 * $4 deleted, $5 content, $6 expected current versionId, $7 schema, $8 action; then index tables.
 */
export function replaceCurrentSql(s: string, columns: string, tables: IndexRowsParam[]): string {
  const deletes = INDEX_TABLES.map((table) => `del_${table} AS (DELETE FROM ${s}.${table} WHERE rid = $1)`);
  return `WITH hist AS (
      INSERT INTO ${s}.resource_history (${columns})
      SELECT ${columns} FROM ${s}.resource WHERE rid = $1 AND version_id = $6),
    upd AS (
      UPDATE ${s}.resource SET version_id = $2, last_updated = $3, deleted = $4, content = $5
      WHERE rid = $1 AND version_id = $6
      RETURNING rid, resource_type, id, version_id),
    ${[...deletes, ...indexInsertCtes(s, tables, 'upd'), changeEventTail(s, 7, `(SELECT resource_type, id, version_id, $8::text AS action FROM upd) c`)].join(',\n    ')}`;
}
