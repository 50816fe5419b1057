/**
 * One received HL7 v2 message, start to end: parse, check the header, map to FHIR, then in ONE
 * database transaction write the resources through the Writer and record the message row with
 * its outcome (a duplicate MSH-10 finds the earlier row, rolls back and gets the original ACK
 * again: message-log.ts); the ACK is returned only after that transaction committed.
 *
 * - AA: processed.
 * - AE: the content could not be processed (a bad date, a missing PID, a resource that does not
 *   validate): the message row is kept with status 'error', no resource is written.
 * - AR: unreadable, unsupported type, version or missing MSH-10: row kept with status 'rejected'.
 * - An internal failure (database down): AE 207 and nothing stored, so that a resend is
 *   processed normally later.
 */
import type { Logger } from 'pino';
import type { InteractionContext } from '../interactions/context.js';
import { Writer } from '../interactions/writer.js';
import type { Tenants } from '../store/tenants.js';
import { DEFAULT_TENANT } from '../store/tenants.js';
import { buildAck, refreshAck, V2DataError, type AckCode, type V2Issue } from './ack.js';
import { applyPlan, applyPlans } from './apply.js';
import type { Mapper, Plan } from './mapper.js';
import { MessageLog, type StoredOutcome } from './message-log.js';
import { markInbound } from './source-marker.js';
import { parseMessage, ParseError, peekHeader, readHeader, type Header, type Message, type Separators } from './parser.js';

export interface InboundDeps {
  tenants: Tenants;
  mapper: Mapper;
  logger: Logger;
  /** FHIR base URL of the default tenant (for contexts; links are not written into resources). */
  baseUrl: string;
  /** HL7V2_PLACER_SYSTEM: answers quoting an order number of ours find the order by id (own-orders.ts). */
  ownPlacerSystem?: string;
}

interface Prepared {
  separators: Separators;
  header: Partial<Header>;
  /** AR reason. */
  rejection?: V2Issue;
  /** AE reason found while mapping (nothing to write). */
  dataIssue?: V2Issue;
  plan?: Plan;
}

function describeLocation(issue: V2Issue): string {
  const l = issue.location;
  return l ? [l.segment, l.sequence, l.field, l.repetition, l.component].filter((x) => x !== undefined).join('^') : '';
}

function describe(issue: V2Issue): string {
  const where = describeLocation(issue);
  return `${where ? `${where} ` : ''}[${issue.code}] ${issue.text}`;
}

/** The charset of a message (MSH-18): ISO 8859-1 when it says so, UTF-8 otherwise (ASCII is both). */
function charsetOf(payload: Buffer): BufferEncoding {
  // The first line (up to CR or LF, within 2 KB) decoded alone: latin1 maps each byte to one character.
  const head = payload.subarray(0, Math.min(payload.length, 2048));
  const cr = head.indexOf(0x0d);
  const lf = head.indexOf(0x0a);
  const end = cr < 0 ? (lf < 0 ? head.length : lf) : lf < 0 ? cr : Math.min(cr, lf);
  const firstLine = head.toString('latin1', 0, end);
  return /\|8859\/1(\||$|\^)/.test(firstLine) ? 'latin1' : 'utf8';
}

/** A received message's identity in the log: MSH-3, MSH-4, MSH-10. */
const keyOf = (h: Partial<Header>) => ({ sendingApp: h.sendingApp ?? '', sendingFacility: h.sendingFacility ?? '', controlId: h.controlId || undefined });
/** The sender as the Provenance agent of what a message wrote: MSH-4 facility (MSH-3 application). */
const senderOf = (h: Partial<Header>) => `${h.sendingFacility || 'unknown facility'}${h.sendingApp ? ` (${h.sendingApp})` : ''}`;
const typeOf = (h: Partial<Header>) => [h.messageCode, h.triggerEvent].filter(Boolean).join('^');

/** Thrown inside the message's transaction to roll it back when an earlier copy was committed. */
class DuplicateMessage extends Error {
  constructor(readonly stored: StoredOutcome) {
    super('duplicate HL7 v2 message');
  }
}

export class InboundHandler {
  private readonly logs = new Map<string, MessageLog>();

  constructor(private readonly deps: InboundDeps) {}

  /** A framed payload in, the ACK payload out (same charset). */
  async message(payload: Buffer): Promise<Buffer> {
    const charset = charsetOf(payload);
    return Buffer.from(await this.handleText(payload.toString(charset)), charset);
  }

  /**
   * Several frames of one connection, in order (listener.ts). When all are plain — mapped, no
   * merge, distinct control ids — they are written in ONE transaction: identities resolved
   * together, new resources in one insert, the message rows in one statement, all ACKed after its
   * commit (a busy feed pays the per-transaction round trips once per batch). Otherwise, or when
   * the batch fails (a data error, an earlier copy of one of them, the database), each message is
   * processed on its own, in order, exactly as if it had come alone.
   */
  async messages(payloads: Buffer[]): Promise<Buffer[]> {
    const texts = payloads.map((payload) => {
      const charset = charsetOf(payload);
      return { charset, raw: payload.toString(charset) };
    });
    const acks = await this.batch(texts.map((t) => t.raw)).catch((error: unknown) => {
      this.deps.logger.debug({ err: error, messages: payloads.length }, 'HL7 v2 batch written one by one');
      return undefined;
    });
    if (acks) return acks.map((ack, i) => Buffer.from(ack, texts[i]!.charset));
    const out: Buffer[] = [];
    for (const payload of payloads) out.push(await this.message(payload));
    return out;
  }

  /** The batch in one transaction, or undefined when it is not all plain messages. */
  private async batch(raws: string[]): Promise<string[] | undefined> {
    const prepared = raws.map((raw) => this.prepare(raw));
    const seen = new Set<string>();
    for (const p of prepared) {
      if (p.rejection || p.dataIssue || !p.plan || p.plan.merges.length > 0) return undefined;
      const k = JSON.stringify(keyOf(p.header));
      if (seen.has(k)) return undefined;
      seen.add(k);
    }
    const store = await this.deps.tenants.store(DEFAULT_TENANT);
    const messageLog = this.logFor(store.schema);
    const senders = [...new Set(prepared.map((p) => senderOf(p.header)))].join(', ');
    const ctx: InteractionContext = { store, baseUrl: this.deps.baseUrl, actor: `HL7 v2 inbound from ${senders}` };
    const acks = await store.db.transaction(async (tx) => {
      for (const p of prepared) markInbound(p.plan!.entries.map((e) => e.resource), p.header);
      const written = await applyPlans(new Writer(ctx, tx), prepared.map((p) => p.plan!), { ownPlacerSystem: this.deps.ownPlacerSystem });
      const rows = prepared.map((p, i) => ({
        key: keyOf(p.header),
        messageType: typeOf(p.header),
        raw: raws[i]!,
        outcome: { status: 'processed' as const, ackCode: 'AA' as const, ack: buildAck({ separators: p.separators, header: p.header, code: 'AA' }), resources: written[i] },
      }));
      if ((await messageLog.recordMany(tx, rows)) < rows.length) throw new Error('an earlier copy of a message in the batch was recorded');
      return rows.map((r) => r.outcome.ack);
    });
    for (const p of prepared) this.deps.logger.debug({ controlId: p.header.controlId, type: typeOf(p.header), status: 'processed', ack: 'AA', batch: raws.length }, 'HL7 v2 message');
    return acks;
  }

  private logFor(schema: string): MessageLog {
    let log = this.logs.get(schema);
    if (!log) this.logs.set(schema, (log = new MessageLog(schema)));
    return log;
  }

  /** An AR for a frame that could not be taken (oversize or cut short); nothing is stored. */
  unreadable(head: Buffer, reason: string): Buffer {
    const charset = charsetOf(head);
    const { separators, header } = peekHeader(head.toString(charset));
    this.deps.logger.warn({ controlId: header.controlId, reason }, 'HL7 v2 frame rejected');
    return Buffer.from(buildAck({ separators, header, code: 'AR', issue: { code: '207', text: reason } }), charset);
  }

  async handleText(raw: string): Promise<string> {
    let prepared: Pick<Prepared, 'separators' | 'header'> = peekHeader(raw);
    try {
      const p = this.prepare(raw);
      prepared = p;
      return await this.commit(raw, p);
    } catch (error) {
      this.deps.logger.error({ err: error, controlId: prepared.header.controlId }, 'HL7 v2 message not processed (internal error)');
      return buildAck({ ...prepared, code: 'AE', issue: { code: '207', text: 'Application internal error; please resend' } });
    }
  }

  /** Parse, check and map: no database work. */
  private prepare(raw: string): Prepared {
    let msg: Message;
    try {
      msg = parseMessage(raw);
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      const { separators, header } = peekHeader(raw);
      const [segment, sequence, field] = error.location ?? ['MSH', 1];
      return { separators, header, rejection: { code: error.code, text: error.message, location: { segment, sequence, field } } };
    }
    const header = readHeader(msg);
    const prepared: Prepared = { separators: msg.separators, header };
    const mapper = this.deps.mapper;
    const at = (field: number) => ({ segment: 'MSH', sequence: 1, field });
    const structure = mapper.structureFor(header);
    if (!header.controlId) {
      prepared.rejection = { code: '101', text: 'MSH-10 (message control id) is required', location: at(10) };
    } else if (!mapper.config.versions.includes(header.version)) {
      prepared.rejection = { code: '203', text: `HL7 version '${header.version}' is not supported`, location: at(12) };
    } else if (!structure) {
      const knownCode = [...mapper.config.messages.keys()].some((k) => k.startsWith(`${header.messageCode}^`));
      const type = `${header.messageCode}^${header.triggerEvent}`;
      prepared.rejection = knownCode
        ? { code: '201', text: `Event ${type} is not supported`, location: at(9) }
        : { code: '200', text: `Message type ${type} is not supported`, location: at(9) };
    } else {
      try {
        prepared.plan = mapper.map(msg, header, structure);
      } catch (error) {
        if (!(error instanceof V2DataError)) throw error;
        prepared.dataIssue = error.issue;
      }
    }
    return prepared;
  }

  private async commit(raw: string, p: Prepared): Promise<string> {
    const store = await this.deps.tenants.store(DEFAULT_TENANT);
    const messageLog = this.logFor(store.schema);
    const h = p.header;
    const key = keyOf(h);
    const messageType = typeOf(h);
    const ack = (code: AckCode, issue?: V2Issue) => buildAck({ separators: p.separators, header: h, code, issue });
    const ctx: InteractionContext = { store, baseUrl: this.deps.baseUrl, actor: `HL7 v2 inbound from ${senderOf(h)}` };

    type Result = { ack: string; status: string; code: AckCode | null; issue?: V2Issue };
    const outcome = (status: 'processed' | 'error' | 'rejected', code: AckCode, issue?: V2Issue, resources?: unknown) => ({
      status,
      ackCode: code,
      ack: ack(code, issue),
      error: issue ? describe(issue) : undefined,
      resources,
    });
    const answer = (o: ReturnType<typeof outcome>, issue?: V2Issue): Result => ({ ack: o.ack, status: o.status, code: o.ackCode, issue });
    const resend = (d: StoredOutcome): Result => {
      if (!d.ack) throw new Error(`hl7_message ${d.id} has no ACK`);
      return { ack: refreshAck(d.ack), status: 'duplicate', code: d.ackCode };
    };
    // A message that writes nothing: its row alone (an earlier copy's row wins).
    const recordOnly = async (o: ReturnType<typeof outcome>, issue: V2Issue): Promise<Result> => {
      const r = await store.db.transaction((tx) => messageLog.record(tx, key, messageType, raw, o));
      return 'duplicate' in r ? resend(r.duplicate) : answer(o, issue);
    };

    let result: Result;
    if (p.rejection) result = await recordOnly(outcome('rejected', 'AR', p.rejection), p.rejection);
    else if (p.dataIssue) result = await recordOnly(outcome('error', 'AE', p.dataIssue), p.dataIssue);
    else {
      try {
        // The resources, then the message row with its outcome, in one transaction; a duplicate
        // (the row exists) rolls everything back.
        result = await store.db.transaction(async (tx) => {
          // HL7 v2 outbound: stamp meta.source so that these versions are not echoed back to the sender (source-marker.ts).
          markInbound(p.plan!.entries.map((e) => e.resource), h);
          const written = await applyPlan(new Writer(ctx, tx), p.plan!, { ownPlacerSystem: this.deps.ownPlacerSystem });
          const o = outcome('processed', 'AA', undefined, written);
          const r = await messageLog.record(tx, key, messageType, raw, o);
          if ('duplicate' in r) throw new DuplicateMessage(r.duplicate);
          return answer(o);
        });
      } catch (error) {
        if (error instanceof DuplicateMessage) result = resend(error.stored);
        else if (error instanceof V2DataError) result = await recordOnly(outcome('error', 'AE', error.issue), error.issue);
        else throw error;
      }
    }
    // Logged without the error text: it may quote patient data (the row keeps it).
    const level = result.code === 'AA' ? 'debug' : 'info';
    const issue = result.issue;
    this.deps.logger[level]({ controlId: h.controlId, type: messageType, status: result.status, ack: result.code, ...(issue ? { error: issue.code, at: describeLocation(issue) } : {}) }, 'HL7 v2 message');
    return result.ack;
  }
}
