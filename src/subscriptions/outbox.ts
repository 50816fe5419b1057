/**
 * Transactional outbox: every version the store writes records its change_event row in the same
 * statement (src/store/write-sql.ts), so an event exists exactly when its version was committed.
 * recordChanges writes events on their own (tests, tools). The relay
 * (relay.ts) turns committed events into jobs. A NOTIFY in the same statement wakes relays
 * (PostgreSQL delivers it on commit only, never for a rolled-back transaction).
 */
import type { SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import { OUTBOX_CHANNEL } from '../store/write-sql.js';

export type ChangeAction = 'create' | 'update' | 'delete';

export interface ChangeRecord {
  resourceType: string;
  id: string;
  versionId: number;
  action: ChangeAction;
}

export { OUTBOX_CHANNEL };

/** Record changes: one statement for any number of versions (the batched create path). */
export async function recordChanges(tx: SqlClient, schema: string, changes: ChangeRecord[]): Promise<void> {
  if (changes.length === 0) return;
  const s = quoteIdent(schema);
  const rows = changes.map((c) => [c.resourceType, c.id, c.versionId, c.action]);
  await tx.query(
    `WITH ins AS (
       INSERT INTO ${s}.change_event (resource_type, id, version_id, action)
       SELECT e->>0, e->>1, (e->>2)::int, e->>3 FROM json_array_elements($1::json) e
       RETURNING 1)
     SELECT pg_notify('${OUTBOX_CHANNEL}', $2) FROM (SELECT count(*) FROM ins) c`,
    [JSON.stringify(rows), schema],
  );
}
