/**
 * Outbound rows of hl7_message (direction 'out'): queued by the change consumer, then moved by
 * the delivery worker: queued → sent, or failed (attempts, error, next_attempt_at) → … → dead.
 * lease_until marks the row one worker is sending right now (expires if that worker dies).
 */
import type { SqlClient } from '../../store/db.js';
import { quoteIdent } from '../../store/schema.js';

export type OutboundStatus = 'queued' | 'failed' | 'sent' | 'dead';

export interface NewOutbound {
  endpoint: string;
  dedupeKey: string;
  focus: string;
  event: string;
  messageType: string;
  controlId: string;
  receivingApp: string;
  receivingFacility: string;
  raw: string;
}

export interface OutboundRow {
  id: string;
  endpoint: string;
  status: OutboundStatus;
  attempts: number;
  raw: string;
  due: boolean;
}

export class OutboundLog {
  readonly table: string;

  constructor(schema: string) {
    this.table = `${quoteIdent(schema)}.hl7_message`;
  }

  /** A fresh row id (the message's control id is derived from it before the row is inserted). */
  async nextId(tx: SqlClient): Promise<string> {
    const r = await tx.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence($1, 'id'))::text AS id`, [this.table.replace(/"/g, '')]);
    return r.rows[0]!.id;
  }

  /** Insert a queued message unless its dedupe key exists; returns the id of the row now holding the key if it still waits for delivery. */
  async enqueue(tx: SqlClient, id: string, m: NewOutbound): Promise<string | undefined> {
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO ${this.table} (id, direction, sending_app, sending_facility, control_id, message_type, status, raw, endpoint, dedupe_key, focus, event)
       VALUES ($1, 'out', $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10)
       ON CONFLICT (dedupe_key) WHERE direction = 'out' DO NOTHING RETURNING id::text AS id`,
      [id, m.receivingApp, m.receivingFacility, m.controlId, m.messageType, m.raw, m.endpoint, m.dedupeKey, m.focus, m.event],
    );
    if (inserted.rows[0]) return inserted.rows[0].id;
    const existing = await tx.query<{ id: string }>(
      `SELECT id::text AS id FROM ${this.table} WHERE direction = 'out' AND dedupe_key = $1 AND status IN ('queued', 'failed')`,
      [m.dedupeKey],
    );
    return existing.rows[0]?.id;
  }

  /** Events already recorded for a resource to an endpoint (NW, CA, A04…), any status. */
  async eventsFor(tx: SqlClient, focus: string, endpoint: string): Promise<Set<string>> {
    const r = await tx.query<{ event: string }>(`SELECT DISTINCT event FROM ${this.table} WHERE direction = 'out' AND focus = $1 AND endpoint = $2`, [focus, endpoint]);
    return new Set(r.rows.map((row) => row.event));
  }

  async status(client: SqlClient, id: string): Promise<OutboundStatus | undefined> {
    const r = await client.query<{ status: OutboundStatus }>(`SELECT status FROM ${this.table} WHERE id = $1 AND direction = 'out'`, [id]);
    return r.rows[0]?.status;
  }

  /** The oldest message of the endpoint still to deliver (the only one that may go out now). */
  async head(client: SqlClient, endpoint: string): Promise<OutboundRow | undefined> {
    const r = await client.query<{ id: string; endpoint: string; status: OutboundStatus; attempts: number; raw: string; due: boolean }>(
      `SELECT id::text AS id, endpoint, status, attempts, raw, (next_attempt_at IS NULL OR next_attempt_at <= now() + interval '50 milliseconds') AS due
       FROM ${this.table} WHERE direction = 'out' AND endpoint = $1 AND status IN ('queued', 'failed') ORDER BY hl7_message.id LIMIT 1`,
      [endpoint],
    );
    const row = r.rows[0];
    return row ? { ...row, attempts: Number(row.attempts) } : undefined;
  }

  /** Take the sending lease; false when another worker holds it or the row is no longer pending. */
  async claim(client: SqlClient, id: string, leaseMs: number): Promise<boolean> {
    const r = await client.query(
      `UPDATE ${this.table} SET lease_until = now() + $2 * interval '1 millisecond'
       WHERE id = $1 AND status IN ('queued', 'failed') AND (lease_until IS NULL OR lease_until < now())`,
      [id, leaseMs],
    );
    return r.rowCount === 1;
  }

  async markSent(client: SqlClient, id: string, ack: string, ackCode: string): Promise<void> {
    await client.query(
      `UPDATE ${this.table} SET status = 'sent', ack = $2, ack_code = $3, attempts = attempts + 1, error = NULL, lease_until = NULL, next_attempt_at = NULL, processed_at = now() WHERE id = $1`,
      [id, ack, ackCode],
    );
  }

  /** A failed attempt: 'failed' with the time of the next one, or 'dead' when attempts ran out. */
  async markFailed(client: SqlClient, id: string, outcome: { dead: boolean; error: string; ack?: string; ackCode?: string; retryInMs: number }): Promise<void> {
    await client.query(
      `UPDATE ${this.table} SET status = $2, error = $3, ack = COALESCE($4, ack), ack_code = COALESCE($5, ack_code), attempts = attempts + 1,
         lease_until = NULL, next_attempt_at = CASE WHEN $2 = 'dead' THEN NULL ELSE now() + $6 * interval '1 millisecond' END, processed_at = now()
       WHERE id = $1`,
      [id, outcome.dead ? 'dead' : 'failed', outcome.error, outcome.ack ?? null, outcome.ackCode ?? null, outcome.retryInMs],
    );
  }

  /** failed/dead → queued with fresh attempts (operator replay); false when the row is in another state. */
  async requeue(client: SqlClient, id: string): Promise<{ endpoint: string } | undefined> {
    const r = await client.query<{ endpoint: string }>(
      `UPDATE ${this.table} SET status = 'queued', attempts = 0, next_attempt_at = NULL, lease_until = NULL
       WHERE id = $1 AND direction = 'out' AND status IN ('failed', 'dead') RETURNING endpoint`,
      [id],
    );
    return r.rows[0];
  }

  /** Heads of every endpoint with messages waiting (to restart delivery after a restart of an in-process queue). */
  async pendingHeads(client: SqlClient): Promise<Array<{ id: string; endpoint: string }>> {
    const r = await client.query<{ id: string; endpoint: string }>(
      `SELECT min(id)::text AS id, endpoint FROM ${this.table} WHERE direction = 'out' AND status IN ('queued', 'failed') GROUP BY endpoint`,
    );
    return r.rows;
  }
}
