/**
 * The operator view of HL7 v2 messages (no express here: src/http/admin-hl7v2.ts serves it):
 * list received and sent messages, show one with its ACK, error and resources, and replay one —
 * a sent message that failed or is dead goes back to the delivery queue; a received message that
 * was answered AE/AR (status error/rejected) runs through the inbound handler again.
 */
import { badRequest, conflict, FhirError, notFound } from '../fhir/outcome.js';
import type { Tenants } from '../store/tenants.js';
import { quoteIdent } from '../store/schema.js';
import type { Logger } from 'pino';
import { InboundHandler } from './inbound.js';
import { loadMappingConfig } from './mapping-config.js';
import { Mapper } from './mapper.js';
import type { OutboundDelivery } from './outbound/delivery.js';
import { DEFAULT_PLACER_SYSTEM } from './outbound/settings.js';

export interface MessageSummary {
  id: string;
  direction: 'in' | 'out';
  status: string;
  messageType: string | null;
  controlId: string | null;
  /** in: MSH-3/MSH-4 of the sender; out: MSH-5/MSH-6 of the receiver. */
  application: string;
  facility: string;
  endpoint: string | null;
  focus: string | null;
  event: string | null;
  attempts: number;
  ackCode: string | null;
  error: string | null;
  receivedAt: string;
  processedAt: string | null;
  nextAttemptAt: string | null;
}

export interface MessageDetail extends MessageSummary {
  raw: string;
  ack: string | null;
  resources: unknown;
}

export interface ListQuery {
  direction?: string;
  status?: string;
  type?: string;
  count?: string;
  /** Keyset cursor: messages older than this id. */
  before?: string;
}

const SUMMARY_COLUMNS = `id::text AS id, direction, status, message_type, control_id, sending_app, sending_facility, endpoint, focus, event,
  attempts, ack_code, error, received_at, processed_at, next_attempt_at`;

function summary(row: Record<string, any>): MessageSummary {
  const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());
  return {
    id: row.id,
    direction: row.direction,
    status: row.status,
    messageType: row.message_type,
    controlId: row.control_id,
    application: row.sending_app,
    facility: row.sending_facility,
    endpoint: row.endpoint ?? null,
    focus: row.focus ?? null,
    event: row.event ?? null,
    attempts: Number(row.attempts ?? 0),
    ackCode: row.ack_code,
    error: row.error,
    receivedAt: iso(row.received_at)!,
    processedAt: iso(row.processed_at),
    nextAttemptAt: iso(row.next_attempt_at),
  };
}

const ID = /^[1-9]\d{0,17}$/;

export class Hl7v2Admin {
  constructor(
    private readonly deps: {
      tenants: Tenants;
      delivery?: OutboundDelivery;
      /** Built on first use: only replays of received messages need the mappings. */
      inbound: () => InboundHandler;
    },
  ) {}

  async list(tenant: string, q: ListQuery): Promise<{ messages: MessageSummary[]; next?: string }> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      conditions.push(sql.replace('?', `$${params.length}`));
    };
    if (q.direction !== undefined) {
      if (q.direction !== 'in' && q.direction !== 'out') throw badRequest(`direction must be 'in' or 'out' (got '${q.direction}')`);
      add('direction = ?', q.direction);
    }
    if (q.status) add('status = ?', q.status);
    if (q.type) add(q.type.includes('^') ? 'message_type = ?' : "split_part(message_type, '^', 1) = ?", q.type);
    if (q.before !== undefined) {
      if (!ID.test(q.before)) throw badRequest(`_cursor must be a message id (got '${q.before}')`);
      add('id < ?::bigint', q.before);
    }
    const count = q.count === undefined ? 50 : Number(q.count);
    if (!Number.isInteger(count) || count < 1 || count > 500) throw badRequest(`_count must be an integer from 1 to 500 (got '${q.count}')`);
    const store = await this.deps.tenants.store(tenant);
    const r = await store.db.query<Record<string, any>>(
      `SELECT ${SUMMARY_COLUMNS} FROM ${quoteIdent(store.schema)}.hl7_message
       ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY hl7_message.id DESC LIMIT ${count + 1}`,
      params,
    );
    const messages = r.rows.slice(0, count).map(summary);
    return r.rows.length > count ? { messages, next: messages[messages.length - 1]!.id } : { messages };
  }

  async get(tenant: string, id: string): Promise<MessageDetail> {
    if (!ID.test(id)) throw notFound(`No HL7 v2 message '${id}'`);
    const store = await this.deps.tenants.store(tenant);
    const r = await store.db.query<Record<string, any>>(
      `SELECT ${SUMMARY_COLUMNS}, raw, ack, resources FROM ${quoteIdent(store.schema)}.hl7_message WHERE id = $1::bigint`,
      [id],
    );
    const row = r.rows[0];
    if (!row) throw notFound(`No HL7 v2 message '${id}'`);
    const resources = typeof row.resources === 'string' ? JSON.parse(row.resources) : row.resources;
    return { ...summary(row), raw: row.raw, ack: row.ack, resources: resources ?? null };
  }

  /** Replay: out failed/dead → queued; in error/rejected → processed again (a new message row). */
  async replay(tenant: string, id: string): Promise<{ message: MessageDetail; ack?: string }> {
    const message = await this.get(tenant, id);
    if (message.direction === 'out') {
      if (!this.deps.delivery) throw new FhirError(503, { severity: 'error', code: 'transient', diagnostics: 'HL7 v2 outbound delivery is not running' });
      if (!(await this.deps.delivery.replay(tenant, id))) throw conflict(`Message ${id} is ${message.status}; only failed or dead messages are replayed`);
      return { message: await this.get(tenant, id) };
    }
    if (message.status !== 'error' && message.status !== 'rejected') throw conflict(`Message ${id} is ${message.status}; only messages answered AE or AR (error, rejected) are replayed`);
    const store = await this.deps.tenants.store(tenant);
    const table = `${quoteIdent(store.schema)}.hl7_message`;
    // Free the message's key (MSH-3/4/10) so that the inbound handler processes it as new rather than
    // answering it as a duplicate; the old row stays, marked replayed, with its control id in raw.
    const freed = await store.db.query(
      `UPDATE ${table} SET status = 'replayed', control_id = NULL WHERE id = $1::bigint AND status IN ('error', 'rejected')`,
      [id],
    );
    if (freed.rowCount !== 1) throw conflict(`Message ${id} is being replayed already`);
    const ack = await this.deps.inbound().handleText(message.raw);
    const replayed = await store.db.query<{ id: string }>(
      `SELECT id::text AS id FROM ${table} WHERE direction = 'in' AND sending_app = $1 AND sending_facility = $2 AND control_id IS NOT DISTINCT FROM $3 AND id > $4::bigint ORDER BY hl7_message.id DESC LIMIT 1`,
      [message.application, message.facility, message.controlId, id],
    );
    const newId = replayed.rows[0]?.id;
    if (!newId) {
      // Not stored (an internal error such as the database going away): the original stays replayable.
      await store.db.query(`UPDATE ${table} SET status = $2, control_id = $3 WHERE id = $1::bigint`, [id, message.status, message.controlId]);
      throw new FhirError(503, { severity: 'error', code: 'transient', diagnostics: `Message ${id} could not be reprocessed now; try again` });
    }
    await store.db.query(`UPDATE ${table} SET error = $2 WHERE id = $1::bigint`, [id, `replayed as message ${newId}; was: ${message.error ?? ''}`]);
    return { message: await this.get(tenant, newId), ack };
  }
}

/** The operator view for a server: the inbound handler for replays is built on first use. */
export function createHl7v2Admin(options: { tenants: Tenants; delivery?: OutboundDelivery; logger: Logger; baseUrl: () => string; ownPlacerSystem?: string }): Hl7v2Admin {
  let inbound: InboundHandler | undefined;
  return new Hl7v2Admin({
    tenants: options.tenants,
    delivery: options.delivery,
    inbound: () =>
      (inbound ??= new InboundHandler({
        tenants: options.tenants,
        mapper: new Mapper(loadMappingConfig()),
        logger: options.logger.child({ component: 'hl7v2-replay' }),
        baseUrl: options.baseUrl(),
        ownPlacerSystem: options.ownPlacerSystem ?? DEFAULT_PLACER_SYSTEM,
      })),
  });
}
