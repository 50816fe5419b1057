/**
 * What a request that wrote nothing was about, for its AuditEvent: the version a read returned,
 * the resource its url names, and the patient(s) concerned — the resource's patient, a
 * compartment's patient, or patient / subject search parameters.
 */
import type { Resource } from 'fhir/r4.js';
import type { InteractionResult } from '../interactions/context.js';
import { patientOf } from './audit-event.js';
import type { AuditEntity, AuditRequest } from './types.js';

const PATIENT_PARAMS = new Set(['patient', 'subject', 'beneficiary']);

/** Patients named by search parameters: patient=123, subject=Patient/123, subject:Patient=123, Patient?_id=123. */
function searchedPatients(request: AuditRequest): string[] {
  const out: string[] = [];
  for (const [key, raw] of new URLSearchParams(request.query)) {
    const [name, modifier] = key.split(':');
    const isPatientParam = PATIENT_PARAMS.has(name!) && (modifier === undefined || modifier === 'Patient');
    const isPatientId = name === '_id' && request.target?.type === 'Patient' && !request.target.id;
    if (!isPatientParam && !isPatientId) continue;
    for (const value of raw.split(',')) {
      const m = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(value) ?? ((name === 'patient' || modifier === 'Patient' || isPatientId) ? /^([A-Za-z0-9\-.]{1,64})$/.exec(value) : null);
      if (m) out.push(m[1]!);
    }
  }
  return out;
}

function bodyOf(result: InteractionResult | undefined): Resource | undefined {
  const body = result?.body;
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body) as Resource;
  } catch {
    return undefined;
  }
}

export function readEntities(request: AuditRequest, result?: InteractionResult): AuditEntity[] {
  const entities: AuditEntity[] = [];
  const v = result?.version;
  const single = request.interaction === 'read' || request.interaction === 'vread';
  if (v) entities.push({ resourceType: v.resourceType, id: v.id, versionId: v.versionId });
  // The resource the url names, unless it is the version just read.
  if (request.target?.type && request.target.id && !(v && single)) entities.push({ resourceType: request.target.type, id: request.target.id, versionId: request.target.vid });
  const patients = new Set<string>(searchedPatients(request));
  if (request.target?.type === 'Patient' && request.target.id) patients.add(request.target.id);
  if (single) {
    const patient = patientOf(bodyOf(result));
    if (patient) patients.add(patient);
  }
  for (const id of patients) entities.push({ resourceType: 'Patient', id, patient: true });
  return entities;
}
