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
 *
 * Parameters are JSON text unpacked by PostgreSQL (pg's JavaScript encoding of array parameters,
 * escaping every element, cost more than the database's own work):
 * - version rows: a jsonb array of [type, id, versionId, lastUpdated, deleted];
 * - their contents: a json (not jsonb) array of the resources' JSON texts as they are, joined
 *   without escaping; json keeps each element's text verbatim, so the stored text is exactly what
 *   the writer serialised, and neither side escapes or unescapes the content again;
 * - index rows: one jsonb array per index table present, each row [k, param, ...values] where k
 *   is the 1-based position of its version in the statement (a small integer joins cheaper than
 *   (type, id), and the rows travel ~50 bytes shorter).
 */
import type { IndexRow } from './resource-store.js';
import { INDEX_COLUMNS, INDEX_COLUMN_TYPES, INDEX_TABLES, type IndexTable } from './schema.js';

/** Channel the outbox relay LISTENs on; the payload is the tenant schema that changed. */
export const OUTBOX_CHANNEL = 'carebridge_outbox';

export interface IndexRowsParam {
  table: IndexTable;
  /** Parameter number ($n) holding the table's rows as a JSON array. */
  param: number;
}

/**
 * Index rows grouped by table, as JSON array text: each row of `rowsOf(item)` becomes
 * `[key, param, ...values]`, where `keyJson(item, k)` gives the key's JSON (k the item's 1-based
 * position): the ordinal for the write statement, `rid,"Type"` for re-indexing. Built as text
 * directly: no per-row arrays.
 */
export function indexRowsJson<T>(items: T[], rowsOf: (item: T) => IndexRow[], keyJson: (item: T, k: number) => string): Map<IndexTable, string> {
  const byTable = new Map<IndexTable, string[]>();
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const head = `[${keyJson(item, i + 1)},`;
    for (const row of rowsOf(item)) {
      let text = head + JSON.stringify(row.param);
      for (const v of row.values) text += v === null ? ',null' : `,${JSON.stringify(v)}`;
      let acc = byTable.get(row.table);
      if (!acc) byTable.set(row.table, (acc = []));
      acc.push(`${text}]`);
    }
  }
  const out = new Map<IndexTable, string>();
  for (const [table, rows] of byTable) out.set(table, `[${rows.join(',')}]`);
  return out;
}

/** The index columns of `table` read from a JSON row `e` whose first value is element `first`. */
export function indexValueCasts(table: IndexTable, first: number): string {
  return INDEX_COLUMN_TYPES[table].map((t, i) => `(e->>${first + i})::${t}`).join(', ');
}

/** CTEs inserting index rows [k, param, ...values]; `join` finds the row's rid and type (alias r). */
function indexInsertCtes(s: string, tables: IndexRowsParam[], join: string): string[] {
  return tables.map(({ table, param }) => `ins_${table} AS (
      INSERT INTO ${s}.${table} (rid, resource_type, param, ${INDEX_COLUMNS[table].join(', ')})
      SELECT r.rid, r.resource_type, e->>1, ${indexValueCasts(table, 2)}
      FROM jsonb_array_elements($${param}::jsonb) e ${join})`);
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
 * First versions of new resources. $1: version rows; $2: the schema (notify payload); $3: their
 * contents; then one parameter per index table present. The rids are drawn from the table's
 * sequence up front (src), so index rows find theirs by position without joining the inserted
 * rows back on (type, id).
 */
export function insertNewSql(s: string, tables: IndexRowsParam[], changeEvents = true): string {
  const head = `WITH src AS MATERIALIZED (
      SELECT x.k, nextval('${s}.resource_rid_seq') AS rid, x.e->>0 AS resource_type, x.e->>1 AS id, (x.e->>2)::int AS version_id,
             (x.e->>3)::timestamptz AS last_updated, (x.e->>4)::bool AS deleted, NULLIF(x.c::text, 'null') AS content
      FROM ROWS FROM (jsonb_array_elements($1::jsonb), json_array_elements($3::json)) WITH ORDINALITY AS x(e, c, k)),
    new_rows AS (
      INSERT INTO ${s}.resource (rid, resource_type, id, version_id, last_updated, deleted, content)
      SELECT rid, resource_type, id, version_id, last_updated, deleted, content FROM src)`;
  const ctes = indexInsertCtes(s, tables, 'JOIN src r ON r.k = (e->>0)::bigint');
  if (changeEvents) {
    return `${head},
    ${[...ctes, changeEventTail(s, 2, `(SELECT resource_type, id, version_id, 'create'::text AS action FROM src ORDER BY k) c`)].join(',\n    ')}`;
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
 * $4 deleted, $5 content, $6 expected current versionId, $7 schema, $8 action; then index tables
 * (rows keyed 1: the one version).
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
    ${[...deletes, ...indexInsertCtes(s, tables, 'CROSS JOIN upd r'), changeEventTail(s, 7, `(SELECT resource_type, id, version_id, $8::text AS action FROM upd) c`)].join(',\n    ')}`;
}
