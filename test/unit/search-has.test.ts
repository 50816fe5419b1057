/**
 * Reverse chaining, _has (search.html#has), against PGlite. Expected ids are worked out by hand
 * from the fixtures below.
 */
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSearch } from '../../src/search/query.js';
import { badSearch, createSearchDb, pairs, searchIds, type Fixture } from '../support/search-db.js';

const loinc = 'http://loinc.org';
const obs = (id: string, subject: string, code: string, extra: Record<string, unknown> = {}): Fixture => ({
  r: { resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: loinc, code }] }, subject: { reference: subject }, ...extra },
});

const fixtures: Fixture[] = [
  { r: { resourceType: 'Patient', id: 'pa', gender: 'male' } },
  { r: { resourceType: 'Patient', id: 'pb', gender: 'female' } },
  { r: { resourceType: 'Patient', id: 'pc', gender: 'female' } },
  { r: { resourceType: 'Patient', id: 'pd', gender: 'male' }, deleted: true },
  { r: { resourceType: 'Group', id: 'g1', type: 'person', actual: true } },
  { r: { resourceType: 'Practitioner', id: 'u1', name: [{ family: 'Smith' }] } },
  { r: { resourceType: 'Practitioner', id: 'u2', name: [{ family: 'Jones' }] } },
  obs('ob1', 'Patient/pa', '1234-5', { effectiveDateTime: '2021-03-01', performer: [{ reference: 'Practitioner/u1' }] }),
  obs('ob2', 'Patient/pb', '9999-9', { effectiveDateTime: '2019-03-01', performer: [{ reference: 'Practitioner/u2' }] }),
  obs('ob3', 'Group/g1', '1234-5'),
  obs('ob4', 'Patient/pd', '1234-5'), // its patient is deleted
  { ...obs('ob5', 'Patient/pc', '1234-5'), deleted: true }, // deleted: no longer references pc
  {
    r: {
      resourceType: 'AuditEvent',
      id: 'ae1',
      type: { code: 'rest' },
      recorded: '2024-01-01T00:00:00Z',
      source: { observer: { reference: 'Device/d1' } },
      agent: [{ who: { reference: 'Practitioner/u1' }, requestor: true }],
      entity: [{ what: { reference: 'Observation/ob2' } }],
    },
  },
  {
    r: {
      resourceType: 'AuditEvent',
      id: 'ae2',
      type: { code: 'rest' },
      recorded: '2024-01-01T00:00:00Z',
      source: { observer: { reference: 'Device/d1' } },
      agent: [{ who: { reference: 'Practitioner/u2' }, requestor: true }],
      entity: [{ what: { reference: 'Observation/ob1' } }],
    },
  },
];

let db: PGlite;
beforeAll(async () => {
  db = await createSearchDb(fixtures);
});
afterAll(async () => {
  await db?.close();
});

describe('_has', () => {
  it('selects resources referenced by matching resources', async () => {
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:code=1234-5')).toEqual(['pa']);
    expect(await searchIds(db, 'Patient', '_has:Observation:subject:code=1234-5')).toEqual(['pa']); // ob3 is about a Group
    expect(await searchIds(db, 'Group', '_has:Observation:subject:code=1234-5')).toEqual(['g1']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:code=1234-5,9999-9')).toEqual(['pa', 'pb']);
    expect(await searchIds(db, 'Patient', `_has:Observation:patient:code=${loinc}|9999-9`)).toEqual(['pb']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:code=0000-0')).toEqual([]);
    expect(await searchIds(db, 'Practitioner', '_has:Observation:performer:code=9999-9')).toEqual(['u2']);
  });

  it('takes parameters of any type at the end', async () => {
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:date=ge2020')).toEqual(['pa']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:date=lt2020')).toEqual(['pb']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:status=final')).toEqual(['pa', 'pb']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:code:not=1234-5')).toEqual(['pb']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:performer=Practitioner/u1')).toEqual(['pa']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:_id=ob2')).toEqual(['pb']);
    // a chain inside _has
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:performer:Practitioner.name=jones')).toEqual(['pb']);
  });

  it('nests', async () => {
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/u1')).toEqual(['pb']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/u2')).toEqual(['pa']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/u3')).toEqual([]);
  });

  it('combines with other parameters and with itself (AND)', async () => {
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:status=final&gender=female')).toEqual(['pb']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:code=1234-5&_has:Observation:patient:code=9999-9')).toEqual([]);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:status=final&_has:Observation:patient:date=lt2020')).toEqual(['pb']);
  });

  it('rejects malformed _has naming _has', () => {
    for (const q of [
      '_has:Observation:patient=1', // too few parts
      '_has:Observation::code=1',
      '_has:Nothing:patient:code=1', // not a type
      '_has:Observation:code:status=final', // not a reference
      '_has:Observation:patient:date=never', // bad value
      '_has:Observation:nosuch:code=1', // unknown (strict)
      '_has:Observation:patient:nosuch=1',
    ]) {
      const e = badSearch('Patient', q);
      expect(e.status, q).toBe(400);
      expect(e.expression, q).toEqual(['_has']);
    }
    // Observation.patient cannot refer to a Practitioner
    expect(badSearch('Practitioner', '_has:Observation:patient:code=1').message).toMatch(/cannot refer to Practitioner/);
    const lenient = parseSearch('Patient', pairs('_has:Observation:nosuch:code=1&gender=male'), { strict: false });
    expect(lenient.unknown).toEqual(['_has']);
    expect(lenient.filters).toHaveLength(1);
  });
});
