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
import { PREPARED, type SqlClient } from '../store/db.js';
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

/** One received message to record with its outcome. */
export interface InboundRecord {
  key: InboundKey;
  messageType: string;
  raw: string;
  outcome: MessageOutcome;
}

/** The JSON row MessageLog's INSERT unpacks (column order of insertSql). */
function inboundRow(r: InboundRecord): unknown[] {
  const o = r.outcome;
  return [r.key.sendingApp, r.key.sendingFacility, r.key.controlId ?? null, r.messageType, o.status, r.raw, o.ackCode, o.ack, o.error ?? null, o.resources === undefined ? null : JSON.stringify(o.resources)];
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
    const inserted = await tx.query<{ id: string }>(`${this.insertSql()} RETURNING id`, [JSON.stringify([inboundRow({ key, messageType, raw, outcome })])], PREPARED);
    if (inserted.rows[0]) return { id: String(inserted.rows[0].id) };
    return { duplicate: await this.stored(tx, key) };
  }

  /**
   * Record several received messages at once (a batch, all new): how many rows were inserted —
   * fewer than given means some copy was already recorded, and the caller must roll back.
   */
  async recordMany(tx: SqlClient, rows: InboundRecord[]): Promise<number> {
    const inserted = await tx.query<{ n: number }>(`WITH ins AS (${this.insertSql()} RETURNING 1) SELECT count(*)::int AS n FROM ins`, [JSON.stringify(rows.map(inboundRow))], PREPARED);
    return Number(inserted.rows[0]?.n ?? 0);
  }

  /** INSERT of received messages from $1, a JSON array of inboundRow arrays; an existing key is skipped. */
  private insertSql(): string {
    return `INSERT INTO ${this.table} (direction, sending_app, sending_facility, control_id, message_type, status, raw, ack_code, ack, error, resources, processed_at)
       SELECT 'in', e->>0, e->>1, e->>2, e->>3, e->>4, e->>5, e->>6, e->>7, e->>8, (e->>9)::jsonb, now() FROM jsonb_array_elements($1::jsonb) e
       ON CONFLICT DO NOTHING`;
  }

  private async stored(tx: SqlClient, key: InboundKey): Promise<StoredOutcome> {
    const existing = await tx.query<{ id: string; status: MessageStatus; ack_code: AckCode | null; ack: string | null }>(
      `SELECT id, status, ack_code, ack FROM ${this.table}
       WHERE direction = 'in' AND sending_app = $1 AND sending_facility = $2 AND control_id = $3`,
      [key.sendingApp, key.sendingFacility, key.controlId ?? null],
      PREPARED,
    );
    const row = existing.rows[0];
    if (!row) throw new Error('hl7_message: the message key conflicts but no row was found');
    return { id: String(row.id), status: row.status, ackCode: row.ack_code, ack: row.ack };
  }
}
