/**
 * Event numbers per subscription (events-since-subscription-start), assigned in the database.
 *
 * The subscription_state row is the counter; the matcher numbers in commit order, one process per
 * tenant at a time (rest-hook.ts), and the unique keys reject any double numbering. An event is numbered at most once per (subscription, change
 * seq): a change job that runs again (at-least-once) finds its event already numbered and adds
 * nothing. An older version of a resource arriving after a newer one was numbered is dropped, so
 * numbers never go backwards in a resource's history.
 */
import type { Access } from '../auth/access.js';
import type { SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import type { ChangeAction } from './outbox.js';

export interface EventToNumber {
  subscriptionId: string;
  changeSeq: string;
  resourceType: string;
  id: string;
  versionId: number;
  action: ChangeAction;
}

export interface NumberedEvent {
  subscriptionId: string;
  eventNumber: number;
  changeSeq: string;
  resourceType: string;
  id: string;
  versionId: number;
  action: ChangeAction;
  createdAt: string;
}

export interface SubscriptionState {
  eventsSinceStart: number;
  delivered: number;
  owner?: Access;
  failures: number;
  lastError?: string;
}

/**
 * Number the events in the caller's transaction (the matcher's, which holds the tenant's matcher
 * cursor lock: numbering is serialised per tenant; the unique keys are the backstop). Returns the
 * events numbered now (an event already numbered, or an older version of a resource whose newer
 * version is numbered, is skipped).
 */
export async function numberEvents(tx: SqlClient, schema: string, events: EventToNumber[]): Promise<NumberedEvent[]> {
  if (events.length === 0) return [];
  const s = quoteIdent(schema);
  await tx.query(`INSERT INTO ${s}.subscription_state (subscription_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [[...new Set(events.map((e) => e.subscriptionId))]]);
  const out: NumberedEvent[] = [];
  for (const e of events) {
    const r = await tx.query<{ event_number: string | number; created_at: string | Date }>(
      `WITH bump AS (
         UPDATE ${s}.subscription_state SET events_since_start = events_since_start + 1, updated_at = now()
         WHERE subscription_id = $1 AND NOT EXISTS (
           SELECT 1 FROM ${s}.subscription_event
           WHERE subscription_id = $1 AND (change_seq = $2 OR (resource_type = $3 AND id = $4 AND version_id >= $5)))
         RETURNING events_since_start)
       INSERT INTO ${s}.subscription_event (subscription_id, event_number, change_seq, resource_type, id, version_id, action)
       SELECT $1, events_since_start, $2, $3, $4, $5, $6 FROM bump RETURNING event_number, created_at`,
      [e.subscriptionId, e.changeSeq, e.resourceType, e.id, e.versionId, e.action],
    );
    const row = r.rows[0];
    if (row) out.push({ ...e, eventNumber: Number(row.event_number), createdAt: new Date(row.created_at).toISOString() });
  }
  return out;
}

interface EventRow {
  subscription_id: string;
  event_number: string | number;
  change_seq: string | number;
  resource_type: string;
  id: string;
  version_id: number;
  action: ChangeAction;
  created_at: string | Date;
}

function toEvent(r: EventRow): NumberedEvent {
  return {
    subscriptionId: r.subscription_id,
    eventNumber: Number(r.event_number),
    changeSeq: String(r.change_seq),
    resourceType: r.resource_type,
    id: r.id,
    versionId: Number(r.version_id),
    action: r.action,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

/** Numbered events of a subscription with after < number ≤ until, in order. */
export async function eventsBetween(client: SqlClient, schema: string, subscriptionId: string, after: number, until: number, limit: number): Promise<NumberedEvent[]> {
  const r = await client.query<EventRow>(
    `SELECT subscription_id, event_number, change_seq, resource_type, id, version_id, action, created_at
     FROM ${quoteIdent(schema)}.subscription_event
     WHERE subscription_id = $1 AND event_number > $2 AND event_number <= $3 ORDER BY event_number LIMIT $4`,
    [subscriptionId, after, until, limit],
  );
  return r.rows.map(toEvent);
}

export async function readState(client: SqlClient, schema: string, subscriptionId: string): Promise<SubscriptionState> {
  const r = await client.query<{ events_since_start: string | number; delivered: string | number; owner: unknown; failures: number; last_error: string | null }>(
    `SELECT events_since_start, delivered, owner, failures, last_error FROM ${quoteIdent(schema)}.subscription_state WHERE subscription_id = $1`,
    [subscriptionId],
  );
  const row = r.rows[0];
  if (!row) return { eventsSinceStart: 0, delivered: 0, failures: 0 };
  const owner = typeof row.owner === 'string' ? (JSON.parse(row.owner) as Access) : ((row.owner ?? undefined) as Access | undefined);
  return { eventsSinceStart: Number(row.events_since_start), delivered: Number(row.delivered), owner: owner ?? undefined, failures: row.failures, lastError: row.last_error ?? undefined };
}

/**
 * A subscription (re)created: a fresh state with its creator as owner and numbering from 1.
 * Runs in the creating write's transaction (write rule), so state and resource commit together.
 */
export async function resetState(tx: SqlClient, schema: string, subscriptionId: string, owner: Access | undefined): Promise<void> {
  const s = quoteIdent(schema);
  await tx.query(`DELETE FROM ${s}.subscription_event WHERE subscription_id = $1`, [subscriptionId]);
  await tx.query(
    `INSERT INTO ${s}.subscription_state (subscription_id, owner) VALUES ($1, $2::jsonb)
     ON CONFLICT (subscription_id) DO UPDATE SET owner = EXCLUDED.owner, events_since_start = 0, delivered = 0,
       failures = 0, last_error = NULL, next_attempt_at = NULL, lease_token = NULL, lease_until = NULL, updated_at = now()`,
    [subscriptionId, owner ? JSON.stringify(owner) : null],
  );
}
