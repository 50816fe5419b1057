/**
 * What an access token allows on one resource type for one action, from its SMART scopes:
 * nothing, everything, or only the resources of one patient's compartment and/or only those that
 * match a v2 granular query.
 *
 * Which patient a scope is bound to:
 * - patient/ scopes: the launch context patient (no patient in the token = the scope gives nothing);
 * - user/ scopes: the user's own reach. A Practitioner user is not limited by patient; a Patient or
 *   RelatedPerson user is limited to their patient (the token's patient, set at sign-in);
 * - system/ scopes: not limited by patient.
 *
 * With a patient restriction, types in the R4 Patient compartment are limited to that compartment
 * (src/interactions/compartment.ts supplies the CompartmentDefinition); types outside it that hold
 * no patient's data (REFERENCE_TYPES: practitioners, organizations, medications, terminology…)
 * may be read and searched but not written; any other type is refused.
 */
import { compartmentMembers } from '../interactions/compartment.js';
import type { Access } from './access.js';
import { grantsFor, resourceScopes, type Action } from './scopes.js';

export interface TypeAccess {
  allowed: boolean;
  /** Only resources in this patient's compartment (member types) — absent: no patient limit. */
  patient?: string;
  /** Only resources matching one of these searches (v2 granular scopes) — absent: no query limit. */
  queries?: Array<Array<[string, string]>>;
}

/** Types outside the patient compartment that carry no patient's data: readable under patient limits. */
export const REFERENCE_TYPES: ReadonlySet<string> = new Set([
  'Practitioner', 'PractitionerRole', 'Organization', 'Location', 'HealthcareService', 'Endpoint',
  'Medication', 'Substance', 'Questionnaire', 'ValueSet', 'CodeSystem', 'ConceptMap', 'StructureDefinition',
  'SearchParameter', 'CapabilityStatement', 'OperationDefinition', 'ActivityDefinition', 'PlanDefinition',
  'ObservationDefinition', 'SpecimenDefinition', 'NamingSystem',
  // Free/busy availability (no patient named): what a patient app needs to find an appointment.
  'Slot',
]);

export const PATIENT_COMPARTMENT = 'Patient';

/**
 * Records about who did what (written by the server for every request and write): one may name
 * several patients (a practitioner's search, a transaction), so a patient-limited token never
 * reads them, although R4 puts them in the patient compartment.
 */
export const SECURITY_RECORDS: ReadonlySet<string> = new Set(['AuditEvent', 'Provenance']);

export function compartmentParams(type: string): readonly string[] | undefined {
  return compartmentMembers(PATIENT_COMPARTMENT)?.get(type);
}

/** The patient a user/ scope is limited to: none for practitioners, the user's patient otherwise. */
function userPatient(access: Access): string | undefined | null {
  if (!access.fhirUser || access.fhirUser.startsWith('Practitioner/') || access.fhirUser.startsWith('PractitionerRole/')) return undefined;
  return access.patient ?? (access.fhirUser.startsWith('Patient/') ? access.fhirUser.slice('Patient/'.length) : null);
}

export function typeAccess(access: Access, type: string, action: Action): TypeAccess {
  const alternatives: Array<{ patient?: string; query?: Array<[string, string]> }> = [];
  for (const g of grantsFor(resourceScopes(access.scopes), type, action)) {
    const patient = g.context === 'system' ? undefined : g.context === 'user' ? userPatient(access) : (access.patient ?? null);
    if (patient === null) continue; // a patient-bound scope without a patient gives nothing
    alternatives.push({ patient, query: g.query });
  }
  if (alternatives.length === 0) return { allowed: false };
  if (alternatives.some((a) => a.patient === undefined && a.query === undefined)) return { allowed: true };
  // Mixed alternatives are narrowed to the patient-bound ones: never more than some scope allows.
  const patient = alternatives.find((a) => a.patient !== undefined)?.patient;
  const chosen = patient !== undefined ? alternatives.filter((a) => a.patient !== undefined) : alternatives;
  let result: TypeAccess = chosen.some((a) => a.query === undefined) ? { allowed: true, patient } : { allowed: true, patient, queries: chosen.map((a) => a.query!) };
  if (result.patient !== undefined && SECURITY_RECORDS.has(type)) return { allowed: false };
  if (result.patient !== undefined && !compartmentParams(type)) {
    // Not a compartment type: reference data may be read, nothing else is reachable.
    result = REFERENCE_TYPES.has(type) && (action === 'r' || action === 's') ? { allowed: true, queries: result.queries } : { allowed: false };
  }
  return result;
}

/** Whether the token's scopes mention `type` for `action` at all (the coarse per-route check). */
export function hasAnyGrant(access: Access, type: string | undefined, actions: readonly Action[]): boolean {
  const scopes = resourceScopes(access.scopes);
  return actions.some((a) => (type ? grantsFor(scopes, type, a).length > 0 : scopes.some((s) => s.actions.has(a))));
}

export function isUnrestricted(t: TypeAccess): boolean {
  return t.allowed && t.patient === undefined && t.queries === undefined;
}
