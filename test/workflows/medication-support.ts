/** Shared set-up of the prescription and lab-order suites: people, a prescription, PDF text, Redis keys. */
import { randomBytes } from 'node:crypto';
import { redisEnv } from '../support/redis.js';
import { create } from './appointments-support.js';

export { create } from './appointments-support.js';

export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const AMOXICILLIN = { coding: [{ system: RXNORM, code: '308182', display: 'Amoxicillin 250 MG Oral Capsule' }], text: 'Amoxicillin 250 mg capsule' };
/** The Identifier.system HL7 v2 inbound gives an EI/CX with assigning authority CAREBRIDGE. */
export const V2_AUTHORITY = 'urn:carebridge:hl7v2:authority:CAREBRIDGE';

/** Server environment: with REDIS_URL the jobs run on BullMQ under a key prefix of this suite (deleted after it). */
export function prescriptionEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...redisEnv('cbrx'), ...extra };
}

export interface People {
  patient: any;
  practitioner: any;
}

/** A patient (MRN under the CAREBRIDGE authority, as HL7 v2 messages name it) and a prescriber. */
export async function people(base: string, mrn = `MRN-${randomBytes(3).toString('hex')}`): Promise<People> {
  const patient = await create(base, {
    resourceType: 'Patient',
    identifier: [{ system: V2_AUTHORITY, value: mrn, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
    name: [{ family: 'Lovelace', given: ['Ada'] }],
    birthDate: '1980-12-10',
  });
  const practitioner = await create(base, { resourceType: 'Practitioner', name: [{ family: 'Snow', given: ['John'], prefix: ['Dr'] }] });
  return { patient, practitioner };
}

/** A MedicationRequest body for the patient, prescribed by the practitioner. */
export function prescription(p: People, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: `Patient/${p.patient.id}` },
    requester: { reference: `Practitioner/${p.practitioner.id}` },
    medicationCodeableConcept: AMOXICILLIN,
    authoredOn: '2026-01-05T09:00:00Z',
    dosageInstruction: [{ text: '1 capsule 3 times a day for 7 days' }],
    ...extra,
  };
}

/** The text a pdfkit PDF shows (uncompressed content streams: hex strings in TJ arrays), one line per TJ. */
export function pdfText(pdf: Buffer): string {
  const ops = pdf.toString('latin1').match(/\[((?:<[0-9a-f]*>|[-\d.\s])*)\]\s*TJ/g) ?? [];
  return ops.map((op) => [...op.matchAll(/<([0-9a-f]*)>/g)].map((m) => Buffer.from(m[1]!, 'hex').toString('latin1')).join('')).join('\n');
}
