/**
 * The hl7_message table (src/store/schema.ts): every message received (and later sent), raw,
 * with its outcome. For received messages (direction 'in') the key (MSH-3, MSH-4, MSH-10) is
 * unique. The row is written with its outcome as the LAST statement of the message's
 * transaction (record): a second copy of a message (a resend, or the same message on two
 * connections at once) either finds the first's committed row, or waits on the unique index for
 * the first to commit and then finds it; either way it rolls back what it wrote and answers with
 * the first's ACK. (Claiming the row first would cost two more statements on every message to
 * save work only on duplicates.)
 */
import type { SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import type { AckCode } from './ack.js';

export type MessageStatus = 'processing' | 'processed' | 'error' | 'rejected';

export interface InboundKey {
  sendingApp: string;
  sendingFacility: string;
  /** MSH-10; undefined for a message without one (never a duplicate). */
  controlId?: string;
}

export interface StoredOutcome {
  id: string;
  status: MessageStatus;
  ackCode: AckCode | null;
  ack: string | null;
}

export interface MessageOutcome {
  status: Exclude<MessageStatus, 'processing'>;
  ackCode: AckCode;
  ack: string;
  error?: string;
  resources?: unknown;
}

export class MessageLog {
  private readonly table: string;

  constructor(schema: string) {
    this.table = `${quoteIdent(schema)}.hl7_message`;
  }

  /**
   * Record a received message with its outcome: the new row's id, or — when the key was already
   * taken by a committed message — that message's stored outcome (the caller must then roll back).
   */
  async record(tx: SqlClient, key: InboundKey, messageType: string, raw: string, outcome: MessageOutcome): Promise<{ id: string } | { duplicate: StoredOutcome }> {
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO ${this.table} (direction, sending_app, sending_facility, control_id, message_type, status, raw, ack_code, ack, error, resources, processed_at)
       VALUES ('in', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, now())
       ON CONFLICT DO NOTHING RETURNING id`,
      [key.sendingApp, key.sendingFacility, key.controlId ?? null, messageType, outcome.status, raw, outcome.ackCode, outcome.ack, outcome.error ?? null, outcome.resources === undefined ? null : JSON.stringify(outcome.resources)],
    );
    if (inserted.rows[0]) return { id: String(inserted.rows[0].id) };
    return { duplicate: await this.stored(tx, key) };
  }

  /**
   * Record several received messages at once (a batch, all new): how many rows were inserted —
   * fewer than given means some copy was already recorded, and the caller must roll back.
   */
  async recordMany(tx: SqlClient, rows: Array<{ key: InboundKey; messageType: string; raw: string; outcome: MessageOutcome }>): Promise<number> {
    const json = rows.map((r) => [r.key.sendingApp, r.key.sendingFacility, r.key.controlId ?? null, r.messageType, r.outcome.status, r.raw, r.outcome.ackCode, r.outcome.ack, r.outcome.error ?? null, r.outcome.resources === undefined ? null : JSON.stringify(r.outcome.resources)]);
    const inserted = await tx.query<{ n: number }>(
      `WITH ins AS (
         INSERT INTO ${this.table} (direction, sending_app, sending_facility, control_id, message_type, status, raw, ack_code, ack, error, resources, processed_at)
         SELECT 'in', e->>0, e->>1, e->>2, e->>3, e->>4, e->>5, e->>6, e->>7, e->>8, (e->>9)::jsonb, now() FROM json_array_elements($1::json) e
         ON CONFLICT DO NOTHING RETURNING 1)
       SELECT count(*)::int AS n FROM ins`,
      [JSON.stringify(json)],
    );
    return Number(inserted.rows[0]?.n ?? 0);
  }

  private async stored(tx: SqlClient, key: InboundKey): Promise<StoredOutcome> {
    const existing = await tx.query<{ id: string; status: MessageStatus; ack_code: AckCode | null; ack: string | null }>(
      `SELECT id, status, ack_code, ack FROM ${this.table}
       WHERE direction = 'in' AND sending_app = $1 AND sending_facility = $2 AND control_id = $3`,
      [key.sendingApp, key.sendingFacility, key.controlId ?? null],
    );
    const row = existing.rows[0];
    if (!row) throw new Error('hl7_message: the message key conflicts but no row was found');
    return { id: String(row.id), status: row.status, ackCode: row.ack_code, ack: row.ack };
  }

  /**
   * Claim a received message: insert its row, or — when the key was already taken by a
   * committed message — return that message's stored outcome.
   */
  async claim(tx: SqlClient, key: InboundKey, messageType: string, raw: string): Promise<{ id: string } | { duplicate: StoredOutcome }> {
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO ${this.table} (direction, sending_app, sending_facility, control_id, message_type, status, raw)
       VALUES ('in', $1, $2, $3, $4, 'processing', $5)
       ON CONFLICT DO NOTHING RETURNING id`,
      [key.sendingApp, key.sendingFacility, key.controlId ?? null, messageType, raw],
    );
    if (inserted.rows[0]) return { id: String(inserted.rows[0].id) };
    const existing = await tx.query<{ id: string; status: MessageStatus; ack_code: AckCode | null; ack: string | null }>(
      `SELECT id, status, ack_code, ack FROM ${this.table}
       WHERE direction = 'in' AND sending_app = $1 AND sending_facility = $2 AND control_id = $3`,
      [key.sendingApp, key.sendingFacility, key.controlId ?? null],
    );
    const row = existing.rows[0];
    if (!row) throw new Error('hl7_message: the message key conflicts but no row was found');
    return { duplicate: { id: String(row.id), status: row.status, ackCode: row.ack_code, ack: row.ack } };
  }

  async finish(tx: SqlClient, id: string, outcome: MessageOutcome): Promise<void> {
    await tx.query(
      `UPDATE ${this.table} SET status = $2, ack_code = $3, ack = $4, error = $5, resources = $6::jsonb, processed_at = now() WHERE id = $1`,
      [id, outcome.status, outcome.ackCode, outcome.ack, outcome.error ?? null, outcome.resources === undefined ? null : JSON.stringify(outcome.resources)],
    );
  }
}
