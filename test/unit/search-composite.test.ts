/**
 * Composite parameters (search.html#composite) against PGlite: all parts of a value must match
 * the same element (the Observation, or one Observation.component, one useContext...). Expected
 * ids are worked out by hand from the fixtures below.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { Observation } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractIndexRows } from '../../src/search/extract.js';
import { badSearch, createSearchDb, searchIds, type Fixture } from '../support/search-db.js';

const loinc = 'http://loinc.org';
const ucum = 'http://unitsofmeasure.org';
const sct = 'http://snomed.info/sct';
const mmHg = (value: number) => ({ value, unit: 'mmHg', system: ucum, code: 'mm[Hg]' });
const bp = (id: string, systolic: number, diastolic: number): Fixture => ({
  r: {
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: loinc, code: '85354-9' }] },
    component: [
      { code: { coding: [{ system: loinc, code: '8480-6' }] }, valueQuantity: mmHg(systolic) },
      { code: { coding: [{ system: loinc, code: '8462-4' }] }, valueQuantity: mmHg(diastolic) },
    ],
  },
});
const obs = (id: string, code: string, value: Partial<Observation>): Fixture => ({
  r: { resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: loinc, code }] }, ...value },
});

const fixtures: Fixture[] = [
  bp('bp1', 120, 55), // systolic high, diastolic below 60: must not match "systolic < 60"
  bp('bp2', 50, 30),
  obs('wt', '29463-7', { valueQuantity: { value: 72.5, unit: 'kg', system: ucum, code: 'kg' } }),
  obs('abo', '883-9', { valueCodeableConcept: { coding: [{ system: sct, code: '112144000' }] } }),
  obs('dt', '21112-8', { valueDateTime: '2021-05-01' }),
  obs('per', '21112-8', { valuePeriod: { start: '2019-01-01', end: '2019-12-31' } }),
  obs('str', '5778-6', { valueString: 'Cloudy a$b' }),
  {
    r: {
      resourceType: 'ValueSet',
      id: 'vs1',
      status: 'active',
      useContext: [
        { code: { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'focus' }, valueCodeableConcept: { coding: [{ system: sct, code: '1' }] } },
        { code: { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'age' }, valueRange: { low: { value: 18, code: 'a', system: ucum } } },
      ],
    },
  },
  {
    r: {
      resourceType: 'MolecularSequence',
      id: 'seq1',
      type: 'dna',
      coordinateSystem: 0,
      referenceSeq: { chromosome: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/chromosome-human', code: '1' }] }, windowStart: 10000, windowEnd: 20000 },
      variant: [{ start: 12000, end: 12001 }],
    },
  },
  { r: { resourceType: 'Patient', id: 'pat' } },
  { ...bp('bp3', 55, 50), r: { ...bp('bp3', 55, 50).r, subject: { reference: 'Patient/pat' } } as Observation },
];

let db: PGlite;
beforeAll(async () => {
  db = await createSearchDb(fixtures);
});
afterAll(async () => {
  await db?.close();
});

const o = (q: string) => searchIds(db, 'Observation', q);

describe('composite parameters', () => {
  it('match code and value within one component, not across components', async () => {
    expect(await o(`component-code-value-quantity=${loinc}|8480-6$lt60`)).toEqual(['bp2', 'bp3']);
    expect(await o(`component-code-value-quantity=${loinc}|8462-4$lt60`)).toEqual(['bp1', 'bp2', 'bp3']);
    expect(await o('component-code-value-quantity=8480-6$gt100')).toEqual(['bp1']);
    expect(await o(`component-code-value-quantity=8480-6$120|${ucum}|mm[Hg]`)).toEqual(['bp1']);
    expect(await o('component-code-value-quantity=8480-6$55')).toEqual(['bp3']); // bp1's 55 is its diastolic
    // the panel code is on the Observation, the values on its components
    expect(await o(`code-value-quantity=${loinc}|85354-9$120`)).toEqual([]);
  });

  it('OR between values, AND between repeated parameters', async () => {
    expect(await o('component-code-value-quantity=8480-6$lt52,8462-4$gt54')).toEqual(['bp1', 'bp2']);
    expect(await o('component-code-value-quantity=8480-6$gt100&component-code-value-quantity=8462-4$lt60')).toEqual(['bp1']);
  });

  it('combo covers the Observation and its components', async () => {
    expect(await o('combo-code-value-quantity=29463-7$72.5')).toEqual(['wt']);
    expect(await o(`combo-code-value-quantity=${loinc}|8480-6$120`)).toEqual(['bp1']);
    expect(await o(`code-value-quantity=29463-7$72.5|${ucum}|kg`)).toEqual(['wt']);
    expect(await o(`code-value-quantity=29463-7$72.5|${ucum}|g`)).toEqual([]);
    expect(await o('code-value-quantity=29463-7$gt80')).toEqual([]);
  });

  it('concept, date and string values', async () => {
    expect(await o(`code-value-concept=${loinc}|883-9$${sct}|112144000`)).toEqual(['abo']);
    expect(await o(`code-value-concept=${loinc}|883-9$${sct}|999`)).toEqual([]);
    expect(await o('code-value-date=21112-8$ge2021-01-01')).toEqual(['dt']);
    expect(await o('code-value-date=21112-8$2019')).toEqual(['per']);
    expect(await o('code-value-date=21112-8$lt2020')).toEqual(['per']);
    expect(await o('code-value-date=883-9$2021-05-01')).toEqual([]);
    expect(await o('code-value-string=5778-6$cloudy')).toEqual(['str']);
    expect(await o('code-value-string=5778-6$cloudy a\\$b')).toEqual(['str']); // escaped $
    expect(await o('code-value-string=5778-6$clear')).toEqual([]);
  });

  it('other resource types: useContext, %resource components', async () => {
    const ctx = 'http://terminology.hl7.org/CodeSystem/usage-context-type';
    expect(await searchIds(db, 'ValueSet', `context-type-value=${ctx}|focus$${sct}|1`)).toEqual(['vs1']);
    expect(await searchIds(db, 'ValueSet', `context-type-value=${ctx}|age$${sct}|1`)).toEqual([]);
    expect(await searchIds(db, 'ValueSet', `context-type-quantity=${ctx}|age$ge18`)).toEqual(['vs1']);
    expect(await searchIds(db, 'ValueSet', `context-type-quantity=${ctx}|focus$ge18`)).toEqual([]);
    expect(await searchIds(db, 'MolecularSequence', 'chromosome-variant-coordinate=1$gt11000$lt13000')).toEqual(['seq1']);
    expect(await searchIds(db, 'MolecularSequence', 'chromosome-variant-coordinate=1$gt13000$lt14000')).toEqual([]);
    expect(await searchIds(db, 'MolecularSequence', 'chromosome-variant-coordinate=2$gt11000$lt13000')).toEqual([]);
    expect(await searchIds(db, 'MolecularSequence', 'chromosome-window-coordinate=1$10000$20000')).toEqual(['seq1']);
  });

  it(':missing, and composites inside chains', async () => {
    expect(await o('component-code-value-quantity:missing=false')).toEqual(['bp1', 'bp2', 'bp3']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:component-code-value-quantity=8480-6$lt60')).toEqual(['pat']);
    expect(await searchIds(db, 'Patient', '_has:Observation:patient:component-code-value-quantity=8480-6$gt60')).toEqual([]);
  });

  it('rejects malformed values naming the parameter', () => {
    for (const q of [
      'code-value-quantity=8480-6',
      'code-value-quantity=8480-6$1$2',
      'code-value-quantity=8480-6$abc',
      'code-value-quantity=$60',
      'code-value-date=x$notadate',
      'code-value-quantity:exact=8480-6$60',
    ]) {
      const e = badSearch('Observation', q);
      expect(e.status, q).toBe(400);
      expect(e.expression, q).toEqual([q.split(/[:=]/)[0]]);
    }
  });

  it('indexes one row per component value combination of each element', () => {
    // (rows in canonical UCUM units, if any, come on top: only the mm[Hg] ones are checked)
    const rows = extractIndexRows(bp('x', 120, 80).r).filter((r) => r.param === 'component-code-value-quantity' && r.values[6] === 'mm[Hg]');
    expect(rows.map((r) => [r.values[1], r.values[8], r.values[9]]).sort()).toEqual([
      ['8462-4', '79.5', '80.5'],
      ['8480-6', '119.5', '120.5'],
    ]);
  });
});
