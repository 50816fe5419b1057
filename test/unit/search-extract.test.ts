import type { FhirResource as Resource, Observation, Patient } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { extractIndexRows, type IndexRow } from '../../src/search/extract.js';
import { searchParam, searchParamsFor, splitUnion, addCustomSearchParameter } from '../../src/search/parameters.js';
import { compileSimplePath } from '../../src/search/fastpath.js';
import { decimalRange, normalizeString, numberRange, parseDate } from '../../src/search/values.js';

type Row = [IndexRow['table'], string, ...(string | number | null)[]];
const flat = (rows: IndexRow[]): Row[] => rows.map((r) => [r.table, r.param, ...r.values] as Row);
const sorted = (rows: Row[]) => [...rows].map((r) => JSON.stringify(r)).sort();

describe('search parameter registry', () => {
  it('splits union expressions and keeps the branches of one base', () => {
    expect(splitUnion("A.b | (C.d.ofType(X)) | E.f.where(system='a|b')")).toEqual(['A.b', '(C.d.ofType(X))', "E.f.where(system='a|b')"]);
    expect(searchParam('Observation', 'patient')!.expression).toBe('Observation.subject.where(resolve() is Patient)');
    expect(searchParam('Patient', 'birthdate')!.expression).toBe('Patient.birthDate');
    expect(searchParam('InsurancePlan', 'name')!.expression).toBe('InsurancePlan.name | InsurancePlan.alias');
    expect(searchParam('Observation', 'subject')!.targets).toContain('Patient');
  });

  it('gives every type the Resource-level parameters', () => {
    for (const type of ['Patient', 'Binary', 'Bundle']) {
      const params = searchParamsFor(type);
      for (const code of ['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']) expect(params.has(code)).toBe(true);
    }
    expect(searchParam('Patient', '_tag')!.expression).toBe('Patient.meta.tag');
    expect(searchParam('Patient', '_text')!.type).toBe('string'); // DomainResource
    expect(searchParamsFor('Binary').has('_text')).toBe(false); // Binary is not a DomainResource
    expect(searchParamsFor('NotAType').size).toBe(0);
  });

  it('adds custom search parameters', () => {
    addCustomSearchParameter({
      resourceType: 'SearchParameter',
      url: 'http://example.org/SearchParameter/patient-nickname',
      name: 'nickname',
      status: 'active',
      description: 'nickname',
      code: 'nickname',
      base: ['Patient'],
      type: 'string',
      expression: "Patient.name.where(use='nickname').given",
    });
    const p: Patient = { resourceType: 'Patient', name: [{ use: 'nickname', given: ['Bob'] }, { given: ['Robert'] }] };
    expect(sorted(flat(extractIndexRows(p)).filter((r) => r[1] === 'nickname'))).toEqual(sorted([['sp_string', 'nickname', 'bob', 'Bob']]));
  });

  it('walks simple paths directly, with the types fhirpath.js gives', () => {
    const walk = compileSimplePath('(Observation.value.ofType(Quantity))', 'Observation')!;
    expect(walk({ resourceType: 'Observation', valueQuantity: { value: 1 } })).toEqual([{ value: { value: 1 }, type: 'Quantity' }]);
    expect(walk({ resourceType: 'Observation', valueString: 'x' })).toEqual([]);
    const phone = compileSimplePath("Patient.telecom.where(system='phone')", 'Patient')!;
    expect(phone({ resourceType: 'Patient', telecom: [{ system: 'phone', value: '1' }, { system: 'email', value: 'a@b' }] })).toEqual([
      { value: { system: 'phone', value: '1' }, type: 'ContactPoint' },
    ]);
    expect(compileSimplePath('Patient.deceased.exists() and Patient.deceased != false', 'Patient')).toBeUndefined();
    expect(compileSimplePath('Patient.nosuchelement', 'Patient')).toBeUndefined();
  });
});

describe('values', () => {
  it('normalises strings', () => {
    expect(normalizeString('  Jürgen   MÜLLER\tSr ')).toBe('jurgen muller sr');
    expect(normalizeString('Åsa Öberg-Ñúñez')).toBe('asa oberg-nunez');
  });

  it('gives date ranges by precision (no time zone = UTC)', () => {
    const r = (s: string) => {
      const d = parseDate(s);
      return d && [d.lo, d.hi];
    };
    expect(r('2020')).toEqual(['2020-01-01T00:00:00.000Z', '2020-12-31T23:59:59.999Z']);
    expect(r('2020-02')).toEqual(['2020-02-01T00:00:00.000Z', '2020-02-29T23:59:59.999Z']);
    expect(r('2021-02')).toEqual(['2021-02-01T00:00:00.000Z', '2021-02-28T23:59:59.999Z']);
    expect(r('2020-12-31')).toEqual(['2020-12-31T00:00:00.000Z', '2020-12-31T23:59:59.999Z']);
    expect(r('2020-06-15T10:30Z')).toEqual(['2020-06-15T10:30:00.000Z', '2020-06-15T10:30:59.999Z']);
    expect(r('2020-06-15T10:30:00Z')).toEqual(['2020-06-15T10:30:00.000Z', '2020-06-15T10:30:00.999Z']);
    expect(r('2020-06-15T10:30:00')).toEqual(['2020-06-15T10:30:00.000Z', '2020-06-15T10:30:00.999Z']);
    expect(r('2020-06-15T10:30:00.5Z')).toEqual(['2020-06-15T10:30:00.500Z', '2020-06-15T10:30:00.599Z']);
    expect(r('2020-06-15T10:30:00.123+01:00')).toEqual(['2020-06-15T09:30:00.123Z', '2020-06-15T09:30:00.123Z']);
    expect(r('2021-01-01T01:00:00+02:00')).toEqual(['2020-12-31T23:00:00.000Z', '2020-12-31T23:00:00.999Z']);
    expect(r('0050')).toEqual(['0050-01-01T00:00:00.000Z', '0050-12-31T23:59:59.999Z']);
    for (const bad of ['2020-13', '2020-02-30', '2021-02-29', '20201', '2020-06-15T25:00:00Z', '2020-1-1', 'abc', '']) expect(r(bad)).toBeUndefined();
  });

  it('gives number ranges by precision', () => {
    const r = (s: string) => {
      const d = decimalRange(s);
      return d && [d.lo, d.hi];
    };
    expect(r('100')).toEqual(['99.5', '100.5']);
    expect(r('1.5')).toEqual(['1.45', '1.55']);
    expect(r('100.00')).toEqual(['99.995', '100.005']);
    expect(r('0')).toEqual(['-0.5', '0.5']);
    expect(r('-2.5')).toEqual(['-2.55', '-2.45']);
    expect(r('1e2')).toEqual(['50', '150']);
    expect(r('1.5e-3')).toEqual(['0.00145', '0.00155']);
    expect(r('0.1')).toEqual(['0.05', '0.15']);
    expect(numberRange(72.5)).toEqual({ value: '72.5', lo: '72.45', hi: '72.55' });
    expect(r('1.2.3')).toBeUndefined();
    expect(r('abc')).toBeUndefined();
  });
});

describe('extractIndexRows', () => {
  it('indexes a Patient', () => {
    const patient: Patient = {
      resourceType: 'Patient',
      id: 'p1',
      meta: { tag: [{ system: 'http://t', code: 'x' }], profile: ['http://example.org/StructureDefinition/p|1.0'] },
      identifier: [{ system: 'http://hospital.example/mrn', value: 'MRN-001', type: { text: 'Medical record number' } }],
      active: true,
      name: [{ use: 'official', family: 'Müller', given: ['Anna', 'Maria'], prefix: ['Dr.'] }, { text: 'Anna  Müller' }],
      telecom: [
        { system: 'phone', value: '+49 30 1234', use: 'home' },
        { system: 'email', value: 'anna@example.org' },
      ],
      gender: 'female',
      birthDate: '1980-02-29',
      address: [{ line: ['Hauptstraße 5'], city: 'Berlin', postalCode: '10115', country: 'DE' }],
      generalPractitioner: [{ reference: 'Practitioner/dr1' }, { reference: '#contained' }, { reference: 'urn:uuid:0f6f0b2c-6b8f-4d6e-9e37-8c1b3f1f1a11' }],
      managingOrganization: { reference: 'http://other.example/fhir/Organization/o9/_history/3' },
    };
    const nameRows: Row[] = [
      ['sp_string', 'name', 'muller', 'Müller'],
      ['sp_string', 'name', 'anna', 'Anna'],
      ['sp_string', 'name', 'maria', 'Maria'],
      ['sp_string', 'name', 'dr.', 'Dr.'],
      ['sp_string', 'name', 'anna muller', 'Anna  Müller'],
    ];
    const expected: Row[] = [
      ['sp_token', '_tag', 'http://t', 'x', null],
      ['sp_uri', '_profile', 'http://example.org/StructureDefinition/p'],
      ['sp_uri', '_profile', 'http://example.org/StructureDefinition/p|1.0'],
      ['sp_token', 'identifier', 'http://hospital.example/mrn', 'MRN-001', 'Medical record number'],
      ['sp_token', 'active', null, 'true', null],
      ['sp_token', 'gender', null, 'female', null],
      // deceased: `Patient.deceased.exists() and Patient.deceased != false` is false when absent
      ['sp_token', 'deceased', null, 'false', null],
      ['sp_token', 'telecom', null, '+49 30 1234', null],
      ['sp_token', 'telecom', null, 'anna@example.org', null],
      ['sp_token', 'phone', null, '+49 30 1234', null],
      ['sp_token', 'email', null, 'anna@example.org', null],
      // phonetic has name's expression (Patient.name): its values are name's rows (registry.ts indexParamsOf)
      ...nameRows,
      ['sp_string', 'family', 'muller', 'Müller'],
      ['sp_string', 'given', 'anna', 'Anna'],
      ['sp_string', 'given', 'maria', 'Maria'],
      ['sp_string', 'address', 'hauptstraße 5', 'Hauptstraße 5'],
      ['sp_string', 'address', 'berlin', 'Berlin'],
      ['sp_string', 'address', '10115', '10115'],
      ['sp_string', 'address', 'de', 'DE'],
      ['sp_string', 'address-city', 'berlin', 'Berlin'],
      ['sp_string', 'address-postalcode', '10115', '10115'],
      ['sp_string', 'address-country', 'de', 'DE'],
      ['sp_date', 'birthdate', '1980-02-29T00:00:00.000Z', '1980-02-29T23:59:59.999Z'],
      ['sp_reference', 'general-practitioner', 'Practitioner', 'dr1', null, null],
      ['sp_reference', 'organization', 'Organization', 'o9', '3', 'http://other.example/fhir/Organization/o9'],
    ];
    expect(sorted(flat(extractIndexRows(patient)))).toEqual(sorted(expected));
  });

  it('indexes an Observation', () => {
    const obs: Observation = {
      resourceType: 'Observation',
      id: 'o1',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body Weight' }], text: 'Weight' },
      subject: { reference: 'Patient/p1', display: 'Anna' },
      encounter: { reference: '#enc' },
      performer: [{ identifier: { system: 'http://npi', value: '123' }, type: 'Practitioner' }],
      effectiveDateTime: '2021-03-04T10:15:00+02:00',
      valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    };
    const quantity = ['http://unitsofmeasure.org', 'kg', 'kg', '72.45', '72.55'];
    const codeRows = [
      ['http://loinc.org', '29463-7', 'Body Weight'],
      [null, null, 'Weight'],
    ];
    const expected: Row[] = [
      ['sp_token', 'status', null, 'final', null],
      ['sp_token', 'category', 'http://terminology.hl7.org/CodeSystem/observation-category', 'vital-signs', null],
      // combo-code, combo-value-quantity and combo-code-value-quantity are unions of the plain and
      // component parameters: read through their rows, none of their own (registry.ts indexParamsOf)
      ...codeRows.map((v): Row => ['sp_token', 'code', ...v]),
      ['sp_reference', 'subject', 'Patient', 'p1', null, null],
      ['sp_reference', 'patient', 'Patient', 'p1', null, null],
      ['sp_token', 'performer:identifier', 'http://npi', '123', null],
      ['sp_date', 'date', '2021-03-04T08:15:00.000Z', '2021-03-04T08:15:00.999Z'],
      ['sp_quantity', 'value-quantity', ...quantity],
      // composites (composite-extract.ts): code and value of the same element; CodeableConcept.text gives no row
      ['sp_composite', 'code-value-quantity', 'http://loinc.org', '29463-7', 'Body Weight', null, null, ...quantity, null, null, null, null, null],
    ];
    expect(sorted(flat(extractIndexRows(obs)))).toEqual(sorted(expected));
  });

  it('indexes periods, timings, comparators, ranges and references by type', () => {
    const rows = (r: Resource, param: string) => sorted(flat(extractIndexRows(r)).filter((x) => x[1] === param));
    expect(rows({ resourceType: 'Observation', status: 'final', code: {}, effectivePeriod: { start: '2021-01' } }, 'date')).toEqual(
      sorted([['sp_date', 'date', '2021-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']]),
    );
    expect(rows({ resourceType: 'Observation', status: 'final', code: {}, effectivePeriod: { end: '2021' } }, 'date')).toEqual(
      sorted([['sp_date', 'date', '0001-01-01T00:00:00.000Z', '2021-12-31T23:59:59.999Z']]),
    );
    expect(
      rows({ resourceType: 'Observation', status: 'final', code: {}, effectiveTiming: { event: ['2021-01-01', '2021-01-02T10:00:00Z'] } }, 'date'),
    ).toEqual(
      sorted([
        ['sp_date', 'date', '2021-01-01T00:00:00.000Z', '2021-01-01T23:59:59.999Z'],
        ['sp_date', 'date', '2021-01-02T10:00:00.000Z', '2021-01-02T10:00:00.999Z'],
      ]),
    );
    expect(rows({ resourceType: 'Observation', status: 'final', code: {}, valueQuantity: { value: 5, comparator: '<', code: 'mg' } }, 'value-quantity')).toEqual(
      sorted([['sp_quantity', 'value-quantity', null, 'mg', null, '-Infinity', '5.5']]),
    );
    expect(rows({ resourceType: 'RiskAssessment', status: 'final', subject: {}, prediction: [{ probabilityDecimal: 0.25 }] }, 'probability')).toEqual(
      sorted([['sp_number', 'probability', '0.245', '0.255']]),
    );
    // resolve() is Patient keeps only references to a Patient
    const obs: Resource = { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Group/g1' } };
    expect(rows(obs, 'patient')).toEqual([]);
    expect(rows(obs, 'subject')).toEqual(sorted([['sp_reference', 'subject', 'Group', 'g1', null, null]]));
    // canonical: url and |version
    const carePlan: Resource = {
      resourceType: 'CarePlan',
      status: 'active',
      intent: 'plan',
      subject: { reference: 'Patient/p1' },
      instantiatesCanonical: ['http://x.org/PlanDefinition/q|2.0'],
    };
    expect(rows(carePlan, 'instantiates-canonical')).toEqual(
      sorted([['sp_reference', 'instantiates-canonical', null, null, '2.0', 'http://x.org/PlanDefinition/q']]),
    );
  });
});
