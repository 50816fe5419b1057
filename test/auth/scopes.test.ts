/** SMART scope parsing (v1, v2, granular), narrowing to registered scopes, and what a token reaches per type. */
import { describe, expect, it } from 'vitest';
import type { Access } from '../../src/auth/access.js';
import { allowedScopes, parseResourceScope } from '../../src/auth/scopes.js';
import { typeAccess } from '../../src/auth/type-access.js';

const access = (scopes: string, extra: Partial<Access> = {}): Access => ({ tenant: 'default', clientId: 'c', scopes: scopes.split(' '), ...extra });

describe('SMART scopes', () => {
  it('parses v1 and v2 permissions and granular queries; rejects malformed ones', () => {
    expect([...parseResourceScope('patient/*.read')!.actions].sort()).toEqual(['r', 's']);
    expect([...parseResourceScope('user/Observation.write')!.actions].sort()).toEqual(['c', 'd', 'u']);
    expect([...parseResourceScope('system/Patient.cruds')!.actions]).toEqual(['c', 'r', 'u', 'd', 's']);
    expect(parseResourceScope('patient/Observation.rs?category=x|lab')!.query).toEqual([['category', 'x|lab']]);
    for (const bad of ['patient/Observation.sr', 'patient/Observation.', 'doctor/Patient.read', 'patient/Observation.read?category=x', 'openid']) {
      expect(parseResourceScope(bad), bad).toBeUndefined();
    }
  });

  it('narrows requested scopes to the registered ones', () => {
    const registered = ['launch/patient', 'openid', 'user/*.rs', 'patient/Observation.rs?category=lab'];
    expect(allowedScopes(['patient/Observation.rs', 'user/Patient.read', 'user/Patient.cruds', 'launch', 'openid', 'system/*.rs'], registered)).toEqual([
      'patient/Observation.rs',
      'user/Patient.read',
      'openid',
    ]);
    expect(allowedScopes(['patient/Observation.rs?category=lab'], ['patient/Observation.rs?category=lab'])).toEqual(['patient/Observation.rs?category=lab']);
    expect(allowedScopes(['patient/Observation.rs'], ['patient/Observation.rs?category=lab'])).toEqual([]);
  });

  it('decides the reach per type: patient limit, reference data, security records, granular', () => {
    const patient = access('patient/*.rs', { patient: 'p1' });
    expect(typeAccess(patient, 'Observation', 'r')).toEqual({ allowed: true, patient: 'p1' });
    expect(typeAccess(patient, 'Practitioner', 's')).toEqual({ allowed: true });
    expect(typeAccess(patient, 'Practitioner', 'c').allowed).toBe(false);
    expect(typeAccess(patient, 'AuditEvent', 'r').allowed).toBe(false);
    expect(typeAccess(patient, 'Observation', 'c').allowed).toBe(false);
    expect(typeAccess(access('patient/*.rs'), 'Observation', 'r').allowed).toBe(false); // no patient in the token
    expect(typeAccess(access('user/*.rs', { fhirUser: 'Practitioner/d' }), 'Observation', 'r')).toEqual({ allowed: true });
    expect(typeAccess(access('user/*.rs', { fhirUser: 'Patient/p2' }), 'Observation', 'r')).toEqual({ allowed: true, patient: 'p2' });
    expect(typeAccess(access('patient/Observation.rs?category=lab', { patient: 'p1' }), 'Observation', 's')).toEqual({ allowed: true, patient: 'p1', queries: [[['category', 'lab']]] });
    // Mixed: never more than one scope allows (the patient-bound ones win).
    expect(typeAccess(access('system/Observation.rs?category=lab patient/Observation.rs', { patient: 'p1' }), 'Observation', 's')).toEqual({ allowed: true, patient: 'p1' });
  });
});
