/**
 * Audit and provenance of writes, inside the write's own database transaction: whoever opened
 * the transaction calls Writer.recordRequest() just before commit, and one Provenance (all the
 * versions written) plus one AuditEvent (naming them and the Provenance) go in with the data —
 * both commit or neither does. A failed write rolls them back with everything else; the HTTP
 * layer then records the failure on its own (record.ts recordFailure).
 *
 * Also here: the write rule that keeps AuditEvents server-written (no create, update, patch or
 * delete through the API, in transactions and batches too).
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from 'fhir/r4.js';
import { FhirError } from '../fhir/outcome.js';
import type { Writer } from '../interactions/writer.js';
import { registerWriteRule } from '../interactions/write-rules.js';
import { patientOf, restAuditEvent } from './audit-event.js';
import { requestProvenance, serverProvenance, type ProvenanceTarget } from './provenance.js';
import { insertServerRecords, SERVER_RECORD_TYPES } from './record.js';
import type { AuditEntity } from './types.js';

/** A version written through a Writer (Writer.written). */
export interface WrittenVersion extends ProvenanceTarget {
  /** The version's content (absent for a delete). */
  resource?: Resource;
}

export function auditEventWriteRefused(): FhirError {
  return new FhirError(
    405,
    { severity: 'error', code: 'not-supported', diagnostics: 'AuditEvent resources are written by the server only; they cannot be created, updated, patched or deleted through the API' },
    { Allow: 'GET, HEAD' },
  );
}

registerWriteRule({
  name: 'audit-events-are-server-written',
  types: ['AuditEvent'],
  apply() {
    throw auditEventWriteRefused();
  },
});

/** Whether server-internal writes (HL7 v2 inbound, jobs, workflows) get a Provenance: AUDIT, set at start. */
let serverWriteProvenance = false;

export function setServerWriteProvenance(on: boolean): void {
  serverWriteProvenance = on;
}

/**
 * Record the request's Provenance and AuditEvent in the writer's transaction (Writer runs this
 * just before commit). Server-internal work (no request) gets a Provenance naming ctx.actor;
 * nothing when AUDIT is off. `extra` names resources the request read or matched without
 * writing (a conditional create that found its resource).
 */
export async function recordWriteAudit(w: Writer, extra: AuditEntity[] = []): Promise<void> {
  const request = w.ctx.audit;
  if (!request) return recordServerWrite(w);
  const written = w.written;
  const targets = written.filter((v) => !SERVER_RECORD_TYPES.has(v.resourceType));
  const records: Resource[] = [];
  const entities: AuditEntity[] = written.map((v) => ({ resourceType: v.resourceType, id: v.id, versionId: v.versionId }));
  for (const v of written) {
    const patient = patientOf(v.resource);
    if (patient) entities.push({ resourceType: 'Patient', id: patient, patient: true });
  }
  entities.push(...extra);
  if (entities.length === 0 && request.target?.type && request.target.id) entities.push({ resourceType: request.target.type, id: request.target.id });
  if (targets.length > 0) {
    const provenance = { ...requestProvenance(targets, w.now, w.ctx.access, request.ip), id: randomUUID() };
    records.push(provenance);
    entities.push({ resourceType: 'Provenance', id: provenance.id, versionId: 1 });
  }
  records.push(restAuditEvent({ request, access: w.ctx.access, status: 200, entities, recorded: w.now }));
  await insertServerRecords(w.tx, w.ctx.store, records, w.now);
  request.recorded = true;
}

async function recordServerWrite(w: Writer): Promise<void> {
  if (!serverWriteProvenance) return;
  const targets = w.written.filter((v) => !SERVER_RECORD_TYPES.has(v.resourceType));
  if (targets.length === 0) return;
  const provenance = { ...serverProvenance(targets, w.now, w.ctx.actor ?? 'CareBridge (server)'), id: randomUUID() };
  await insertServerRecords(w.tx, w.ctx.store, [provenance], w.now);
}

/**
 * What a write request was about when it wrote nothing: the resource a conditional create found
 * (kind 'existing'), or the resource its url names (a delete of nothing). Empty otherwise.
 */
export function unwrittenEntities(
  outcome: { kind: string; version?: { resourceType: string; id: string; versionId: number } },
  target?: { resourceType?: string; id?: string },
): AuditEntity[] {
  if (outcome.kind === 'existing' && outcome.version) return [{ resourceType: outcome.version.resourceType, id: outcome.version.id, versionId: outcome.version.versionId }];
  if (outcome.kind === 'unchanged' && target?.resourceType && target.id) return [{ resourceType: target.resourceType, id: target.id }];
  return [];
}
