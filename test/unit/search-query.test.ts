/**
 * Search against a real PostgreSQL (PGlite, in-process). Expected id sets are worked out by hand
 * from the spec rules documented in src/search/query.ts, not taken from the engine's output.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { FhirResource as Resource } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCountSql, buildSearchSql, DEFAULT_COUNT, MAX_COUNT, parseSearch, type SearchOptions } from '../../src/search/query.js';
import { createSearchDb, fhirErrorOf, pairs, SCHEMA, type Fixture } from '../support/search-db.js';

let db: PGlite;

const ucum = 'http://unitsofmeasure.org';
const loinc = 'http://loinc.org';
const mrn = 'http://hospital.example/mrn';

const resources: Fixture[] = [
  {
    lastUpdated: '2024-01-01T00:00:00Z',
    r: {
      resourceType: 'Patient',
      id: 'p1',
      identifier: [{ system: mrn, value: '1001' }],
      active: true,
      name: [{ family: 'Smith', given: ['John'] }],
      gender: 'male',
      birthDate: '1980-05-15',
      address: [{ city: 'Boston' }],
      telecom: [{ system: 'phone', value: '555-0100' }],
    },
  },
  {
    lastUpdated: '2024-01-02T00:00:00Z',
    r: {
      resourceType: 'Patient',
      id: 'p2',
      identifier: [
        { system: mrn, value: '1002' },
        { system: 'http://ssn', value: '999' },
      ],
      name: [{ family: 'Smithson', given: ['Jane'] }],
      gender: 'female',
      birthDate: '1980',
      address: [{ city: 'Bostonia' }],
    },
  },
  {
    lastUpdated: '2024-01-03T00:00:00Z',
    r: { resourceType: 'Patient', id: 'p3', name: [{ family: 'Müller', given: ['Jürgen'] }], gender: 'male', birthDate: '1975-12-31' },
  },
  {
    lastUpdated: '2024-01-04T00:00:00Z',
    r: { resourceType: 'Patient', id: 'p4', identifier: [{ value: '1001' }], name: [{ given: ['Ana'], text: 'Ana de la Cruz' }], birthDate: '1980-05' },
  },
  {
    lastUpdated: '2024-01-05T00:00:00Z',
    deleted: true,
    r: { resourceType: 'Patient', id: 'p5', name: [{ family: 'Smith' }], gender: 'male', birthDate: '1980-05-15' },
  },
  { lastUpdated: '2024-01-01T00:00:00Z', r: { resourceType: 'Practitioner', id: 'pr1', name: [{ family: 'Smith' }], gender: 'male' } },
  {
    lastUpdated: '2024-02-01T00:00:00Z',
    r: {
      resourceType: 'Observation',
      id: 'o1',
      status: 'final',
      code: { coding: [{ system: loinc, code: '8302-2', display: 'Body height' }] },
      subject: { reference: 'Patient/p1' },
      effectiveDateTime: '2021-01-01T10:00:00Z',
      valueQuantity: { value: 180, unit: 'cm', system: ucum, code: 'cm' },
    },
  },
  {
    lastUpdated: '2024-02-02T00:00:00Z',
    r: {
      resourceType: 'Observation',
      id: 'o2',
      status: 'final',
      code: { coding: [{ system: loinc, code: '29463-7', display: 'Body weight' }], text: 'Weight' },
      subject: { reference: 'Patient/p1' },
      effectivePeriod: { start: '2021-01-01', end: '2021-01-31' },
      valueQuantity: { value: 72.5, unit: 'kg', system: ucum, code: 'kg' },
    },
  },
  {
    lastUpdated: '2024-02-03T00:00:00Z',
    r: {
      resourceType: 'Observation',
      id: 'o3',
      status: 'preliminary',
      code: { coding: [{ system: loinc, code: '29463-7', display: 'Body weight' }] },
      subject: { reference: 'Patient/p2' },
      performer: [{ identifier: { system: 'http://npi', value: '123' } }],
      effectiveDateTime: '2021-02-15',
      valueQuantity: { value: 60, unit: 'kg', system: ucum, code: 'kg' },
    },
  },
  {
    lastUpdated: '2024-02-04T00:00:00Z',
    r: {
      resourceType: 'Observation',
      id: 'o4',
      status: 'final',
      code: { coding: [{ system: 'http://local', code: 'abc' }] },
      subject: { reference: 'http://other.example/fhir/Patient/p9' },
      effectiveDateTime: '2020',
      valueQuantity: { value: 5.4, unit: 'mg', system: ucum, code: 'mg' },
    },
  },
  {
    lastUpdated: '2024-02-05T00:00:00Z',
    r: { resourceType: 'Observation', id: 'o5', status: 'amended', code: { text: 'free text' }, subject: { reference: 'Group/g1' }, valueString: 'x' },
  },
  {
    lastUpdated: '2024-03-01T00:00:00Z',
    r: { resourceType: 'RiskAssessment', id: 'ra1', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityDecimal: 0.25 }] },
  },
  {
    lastUpdated: '2024-03-02T00:00:00Z',
    r: { resourceType: 'RiskAssessment', id: 'ra2', status: 'final', subject: { reference: 'Patient/p2' }, prediction: [{ probabilityDecimal: 0.7 }] },
  },
  ...['http://acme.org/fhir/ValueSet/123', 'http://acme.org/fhir/ValueSet/124', 'http://other.org/vs', 'http://acme.org/fhir'].map((url, i) => ({
    lastUpdated: `2024-04-0${i + 1}T00:00:00Z`,
    r: { resourceType: 'ValueSet', id: `vs${i + 1}`, url, status: 'active' } as Resource,
  })),
];

beforeAll(async () => {
  db = await createSearchDb(resources);
});

afterAll(async () => {
  await db?.close();
});

const NOW = new Date('2000-01-01T00:00:00Z');

async function ids(type: string, query: string, options: Partial<SearchOptions> = {}, page = { limit: 100, offset: 0 }): Promise<string[]> {
  const parsed = parseSearch(type, pairs(query), { strict: true, now: NOW, ...options });
  const { sql, params } = buildSearchSql(SCHEMA, parsed, page);
  const res = await db.query<{ id: string }>(sql, params);
  return res.rows.map((r) => r.id);
}
const set = async (type: string, query: string, options: Partial<SearchOptions> = {}) => (await ids(type, query, options)).sort();

describe('token', () => {
  it('matches code, system|code, |code and system|', async () => {
    expect(await set('Patient', 'gender=male')).toEqual(['p1', 'p3']);
    expect(await set('Patient', `identifier=${mrn}|1001`)).toEqual(['p1']);
    expect(await set('Patient', 'identifier=1001')).toEqual(['p1', 'p4']);
    expect(await set('Patient', 'identifier=|1001')).toEqual(['p4']);
    expect(await set('Patient', `identifier=${mrn}|`)).toEqual(['p1', 'p2']);
    expect(await set('Observation', 'status=final')).toEqual(['o1', 'o2', 'o4']);
    expect(await set('Observation', `code=${loinc}|29463-7`)).toEqual(['o2', 'o3']);
    expect(await set('Patient', 'active=true')).toEqual(['p1']);
    expect(await set('Patient', 'phone=555-0100')).toEqual(['p1']);
  });

  it('supports :not, :text and :missing', async () => {
    expect(await set('Patient', 'gender:not=male')).toEqual(['p2', 'p4']);
    expect(await set('Patient', 'gender:not=male,female')).toEqual(['p4']);
    expect(await set('Patient', 'gender:missing=true')).toEqual(['p4']);
    expect(await set('Patient', 'gender:missing=false')).toEqual(['p1', 'p2', 'p3']);
    expect(await set('Observation', 'code:text=weight')).toEqual(['o2']);
    expect(await set('Observation', 'code:text=BODY')).toEqual(['o1', 'o2', 'o3']);
    expect(await set('Observation', 'code:text=free')).toEqual(['o5']);
  });

  it('matches _id', async () => {
    expect(await set('Patient', '_id=p2,p3,p5')).toEqual(['p2', 'p3']);
    expect(await set('Patient', '_id:not=p1')).toEqual(['p2', 'p3', 'p4']);
  });
});

describe('string', () => {
  it('matches starts-with, case and accent insensitively', async () => {
    expect(await set('Patient', 'name=smi')).toEqual(['p1', 'p2']);
    expect(await set('Patient', 'family=Smith')).toEqual(['p1', 'p2']);
    expect(await set('Patient', 'family=muller')).toEqual(['p3']);
    expect(await set('Patient', 'family=MÜL')).toEqual(['p3']);
    expect(await set('Patient', 'given=j')).toEqual(['p1', 'p2', 'p3']);
    expect(await set('Patient', 'address-city=bost')).toEqual(['p1', 'p2']);
    expect(await set('Patient', 'name=de la')).toEqual([]);
    expect(await set('Practitioner', 'name=smith')).toEqual(['pr1']);
  });

  it('supports :exact, :contains and :missing', async () => {
    expect(await set('Patient', 'family:exact=Smith')).toEqual(['p1']);
    expect(await set('Patient', 'family:exact=smith')).toEqual([]);
    expect(await set('Patient', 'family:exact=Müller')).toEqual(['p3']);
    expect(await set('Patient', 'family:contains=mit')).toEqual(['p1', 'p2']);
    expect(await set('Patient', 'name:contains=de la')).toEqual(['p4']);
    expect(await set('Patient', 'name:contains=100%')).toEqual([]); // % is literal
    expect(await set('Patient', 'family:missing=true')).toEqual(['p4']);
  });
});

describe('date', () => {
  // p1 1980-05-15, p2 1980, p3 1975-12-31, p4 1980-05 (p5 deleted)
  it('eq and ne compare ranges', async () => {
    expect(await set('Patient', 'birthdate=1980')).toEqual(['p1', 'p2', 'p4']);
    expect(await set('Patient', 'birthdate=1980-05')).toEqual(['p1', 'p4']);
    expect(await set('Patient', 'birthdate=eq1980-05-15')).toEqual(['p1']);
    expect(await set('Patient', 'birthdate=ne1980-05')).toEqual(['p2', 'p3']);
  });

  it('gt lt ge le', async () => {
    expect(await set('Patient', 'birthdate=gt1980-05')).toEqual(['p2']);
    expect(await set('Patient', 'birthdate=lt1980-05')).toEqual(['p2', 'p3']);
    expect(await set('Patient', 'birthdate=ge1980-05')).toEqual(['p1', 'p2', 'p4']);
    expect(await set('Patient', 'birthdate=le1980-05')).toEqual(['p1', 'p2', 'p3', 'p4']);
    expect(await set('Patient', 'birthdate=ge1980-05&birthdate=le1980-05')).toEqual(['p1', 'p2', 'p4']);
  });

  it('sa and eb need the whole target range after / before', async () => {
    expect(await set('Patient', 'birthdate=sa1979')).toEqual(['p1', 'p2', 'p4']);
    expect(await set('Patient', 'birthdate=sa1980-05-14')).toEqual(['p1']);
    expect(await set('Patient', 'birthdate=sa1980-05')).toEqual([]);
    expect(await set('Patient', 'birthdate=eb1980-05-15')).toEqual(['p3']);
    expect(await set('Patient', 'birthdate=eb1980')).toEqual(['p3']);
  });

  it('ap widens by 10% of the distance to now', async () => {
    // now 2000-01-01: ap1981-01-01 → gap 693.9 days → [1979-02-07T02:24, ~1982-11-25]
    expect(await set('Patient', 'birthdate=ap1981-01-01')).toEqual(['p1', 'p2', 'p4']);
    // ap1977-01-01 → gap 840 days → [~1974-09-19, ~1979-04-21]
    expect(await set('Patient', 'birthdate=ap1977-01-01')).toEqual(['p3']);
  });

  it('handles periods, times and time zones', async () => {
    // o1 2021-01-01T10:00:00Z, o2 2021-01-01..2021-01-31, o3 2021-02-15, o4 2020, o5 none
    expect(await set('Observation', 'date=2021-01')).toEqual(['o1', 'o2']);
    expect(await set('Observation', 'date=2021-01-01')).toEqual(['o1']);
    expect(await set('Observation', 'date=gt2021-01-01')).toEqual(['o2', 'o3']);
    expect(await set('Observation', 'date=sa2020')).toEqual(['o1', 'o2', 'o3']);
    expect(await set('Observation', 'date=eb2021-01-15')).toEqual(['o1', 'o4']);
    expect(await set('Observation', 'date=ge2021-01-01T10:00:00Z')).toEqual(['o1', 'o2', 'o3']);
    expect(await set('Observation', 'date=lt2021-01-01T10:00Z')).toEqual(['o2', 'o4']);
    expect(await set('Observation', 'date=2021-01-01T12:00:00+02:00')).toEqual(['o1']);
    expect(await set('Observation', 'date:missing=true')).toEqual(['o5']);
  });

  it('_lastUpdated uses the resource column', async () => {
    expect(await set('Patient', '_lastUpdated=ge2024-01-03')).toEqual(['p3', 'p4']);
    expect(await set('Patient', '_lastUpdated=lt2024-01-02')).toEqual(['p1']);
    expect(await set('Patient', '_lastUpdated=2024-01-02')).toEqual(['p2']);
  });
});

describe('reference', () => {
  it('matches Type/id, id, absolute URLs and :Type', async () => {
    expect(await set('Observation', 'subject=Patient/p1')).toEqual(['o1', 'o2']);
    expect(await set('Observation', 'subject=p1')).toEqual(['o1', 'o2']);
    expect(await set('Observation', 'subject:Patient=p2')).toEqual(['o3']);
    expect(await set('Observation', 'subject:Group=g1')).toEqual(['o5']);
    expect(await set('Observation', 'subject=Group/g1')).toEqual(['o5']);
    expect(await set('Observation', 'subject=http://other.example/fhir/Patient/p9')).toEqual(['o4']);
    expect(await set('Observation', 'subject=Patient/p9')).toEqual(['o4']); // type/id parsed from the absolute URL
    expect(await set('Observation', 'patient=Patient/p1,Patient/p2')).toEqual(['o1', 'o2', 'o3']);
    expect(await set('Observation', 'patient=Group/g1')).toEqual([]);
    expect(await set('RiskAssessment', 'subject=Patient/p2')).toEqual(['ra2']);
  });

  it('supports :identifier and :missing', async () => {
    expect(await set('Observation', 'performer:identifier=http://npi|123')).toEqual(['o3']);
    expect(await set('Observation', 'performer:missing=true')).toEqual(['o1', 'o2', 'o4', 'o5']); // o3's performer is given by identifier only
    expect(await set('Observation', 'subject:missing=false')).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
    expect(await set('Observation', 'encounter:missing=true')).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
  });
});

describe('number and quantity', () => {
  // o1 180 cm [179.5,180.5], o2 72.5 kg [72.45,72.55], o3 60 kg [59.5,60.5], o4 5.4 mg [5.35,5.45]
  it('eq is containment in the implied range, ne its negation', async () => {
    expect(await set('Observation', 'value-quantity=72.5')).toEqual(['o2']);
    expect(await set('Observation', 'value-quantity=72')).toEqual([]);
    expect(await set('Observation', 'value-quantity=6e1')).toEqual(['o3']); // [55, 65]
    expect(await set('Observation', 'value-quantity=ne72.5')).toEqual(['o1', 'o3', 'o4']);
  });

  it('gt lt ge le compare the value exactly; sa eb ap', async () => {
    expect(await set('Observation', 'value-quantity=gt60')).toEqual(['o1', 'o2']);
    expect(await set('Observation', 'value-quantity=ge60')).toEqual(['o1', 'o2', 'o3']);
    expect(await set('Observation', 'value-quantity=lt60')).toEqual(['o4']);
    expect(await set('Observation', 'value-quantity=le5.4')).toEqual(['o4']);
    expect(await set('Observation', 'value-quantity=sa72.5')).toEqual(['o1']);
    expect(await set('Observation', 'value-quantity=eb60')).toEqual(['o4']);
    expect(await set('Observation', 'value-quantity=ap66')).toEqual(['o2', 'o3']); // [59.4, 72.6]
  });

  it('matches units', async () => {
    expect(await set('Observation', 'value-quantity=gt60||kg')).toEqual(['o2']);
    expect(await set('Observation', `value-quantity=60|${ucum}|kg`)).toEqual(['o3']);
    expect(await set('Observation', `value-quantity=5.4|${ucum}|g`)).toEqual([]);
    expect(await set('Observation', 'value-quantity=le1000||cm,le1000||mg')).toEqual(['o1', 'o4']);
  });

  it('number parameters', async () => {
    // ra1 0.25 [0.245,0.255], ra2 0.7 [0.65,0.75]
    expect(await set('RiskAssessment', 'probability=0.25')).toEqual(['ra1']);
    expect(await set('RiskAssessment', 'probability=0.2')).toEqual([]);
    expect(await set('RiskAssessment', 'probability=gt0.5')).toEqual(['ra2']);
    expect(await set('RiskAssessment', 'probability=lt0.7')).toEqual(['ra1']);
  });
});

describe('uri', () => {
  // vs1 …/ValueSet/123, vs2 …/ValueSet/124, vs3 http://other.org/vs, vs4 http://acme.org/fhir
  it('matches exact, :below and :above', async () => {
    expect(await set('ValueSet', 'url=http://acme.org/fhir/ValueSet/123')).toEqual(['vs1']);
    expect(await set('ValueSet', 'url:below=http://acme.org/fhir')).toEqual(['vs1', 'vs2', 'vs4']);
    expect(await set('ValueSet', 'url:below=http://acme.org/fhir/ValueSet/')).toEqual(['vs1', 'vs2']);
    expect(await set('ValueSet', 'url:below=http://acme.org/fh')).toEqual([]);
    expect(await set('ValueSet', 'url:above=http://acme.org/fhir/ValueSet/123/_history/5')).toEqual(['vs1', 'vs4']);
    expect(await set('ValueSet', 'url:above=http://acme.org/fhir/ValueSet/999')).toEqual(['vs4']);
  });
});

describe('combining, sorting and paging', () => {
  it('OR within a parameter, AND across parameters', async () => {
    expect(await set('Patient', 'gender=male,female')).toEqual(['p1', 'p2', 'p3']);
    expect(await set('Patient', 'gender=male&birthdate=1980')).toEqual(['p1']);
    expect(await set('Patient', 'given=j&given=ju')).toEqual(['p3']);
    expect(await set('Patient', 'name=smith,ana')).toEqual(['p1', 'p2', 'p4']);
    expect(await set('Patient', '')).toEqual(['p1', 'p2', 'p3', 'p4']);
  });

  it('sorts (missing values last in both directions)', async () => {
    expect(await ids('Patient', '_sort=birthdate')).toEqual(['p3', 'p2', 'p4', 'p1']);
    expect(await ids('Patient', '_sort=-birthdate')).toEqual(['p2', 'p4', 'p1', 'p3']);
    expect(await ids('Patient', '_sort=family')).toEqual(['p3', 'p1', 'p2', 'p4']);
    expect(await ids('Patient', '_sort=-family')).toEqual(['p2', 'p1', 'p3', 'p4']);
    expect(await ids('Patient', '_sort=gender,-_lastUpdated')).toEqual(['p2', 'p3', 'p1', 'p4']);
    expect(await ids('Patient', '_sort=-_id')).toEqual(['p4', 'p3', 'p2', 'p1']);
    expect(await ids('Observation', '_sort=date')).toEqual(['o4', 'o2', 'o1', 'o3', 'o5']);
    expect(await ids('Observation', '_sort=-date')).toEqual(['o3', 'o2', 'o1', 'o4', 'o5']);
    expect(await ids('Patient', '')).toEqual(['p1', 'p2', 'p3', 'p4']); // default: last_updated
  });

  it('pages and counts', async () => {
    expect(await ids('Patient', '_sort=_id', {}, { limit: 2, offset: 1 })).toEqual(['p2', 'p3']);
    expect(parseSearch('Patient', pairs('_count=2'), { strict: true }).count).toBe(2);
    expect(parseSearch('Patient', pairs('_count=5000'), { strict: true }).count).toBe(MAX_COUNT);
    expect(parseSearch('Patient', [], { strict: true }).count).toBeUndefined();
    expect(DEFAULT_COUNT).toBe(20);
    const { sql, params } = buildCountSql(SCHEMA, parseSearch('Patient', pairs('gender=male'), { strict: true }));
    expect(Number((await db.query<{ count: number }>(sql, params)).rows[0]!.count)).toBe(2);
  });

  it('binds every value as a parameter', () => {
    const { sql, params } = buildSearchSql(SCHEMA, parseSearch('Patient', pairs("family=O'Brien&gender=male"), { strict: true }), { limit: 10, offset: 0 });
    expect(sql).not.toContain('Brien');
    expect(sql).toContain('"t_test".resource');
    expect(params).toContain("o'brien%");
  });
});

describe('errors and unknown parameters', () => {
  const parse = (q: string, strict = true) => parseSearch('Patient', pairs(q), { strict });

  it('rejects malformed values naming the parameter', () => {
    for (const [q, param] of [
      ['birthdate=1980-13', 'birthdate'],
      ['birthdate=xx1980', 'birthdate'],
      ['birthdate=gt', 'birthdate'],
      ['_lastUpdated=yesterday', '_lastUpdated'],
      ['_count=-1', '_count'],
      ['_count=ten', '_count'],
      ['gender:missing=maybe', 'gender'],
      ['family:foo=x', 'family'],
      ['identifier=a|b|c', 'identifier'],
      ['general-practitioner=Practitioner/', 'general-practitioner'],
      ['_sort=nosuchparam', '_sort'],
      ['_total=all', '_total'],
    ] as const) {
      const e = fhirErrorOf(() => parse(q));
      expect(e.status, q).toBe(400);
      expect(e.issues[0]!.expression, q).toEqual([param]);
    }
    const e = fhirErrorOf(() => parseSearch('Observation', pairs('value-quantity=abc'), { strict: false }));
    expect(e.issues[0]!.expression).toEqual(['value-quantity']);
    // a core value set over LOINC, which is not in the package (search-modifiers.test.ts has the rest)
    expect(fhirErrorOf(() => parseSearch('Observation', pairs('code:in=http://hl7.org/fhir/ValueSet/observation-codes'), { strict: false })).message).toMatch(
      /cannot be expanded/,
    );
    expect(fhirErrorOf(() => parseSearch('Observation', pairs('patient:Group=g1'), { strict: false })).status).toBe(400);
  });

  it('unknown parameters: 400 when strict, reported otherwise', async () => {
    const e = fhirErrorOf(() => parse('foo=bar'));
    expect(e.status).toBe(400);
    expect(e.issues[0]!.expression).toEqual(['foo']);
    const lenient = parse('foo=bar&foo:exact=x&gender=male', false);
    expect(lenient.unknown).toEqual(['foo']);
    expect(await set('Patient', 'foo=bar&gender=male', { strict: false })).toEqual(['p1', 'p3']);
  });

  it('recognises result parameters and lists the unsupported ones', () => {
    const p = parse(
      '_count=5&_total=accurate&_summary=count&_elements=id,name&_format=json&_pretty=true&_include=Patient:organization&_revinclude=Observation:subject&general-practitioner:Practitioner._text=x&_has:Observation:subject:_text=1&_text=x',
      false,
    );
    expect(p.unknown).toEqual([]);
    expect(p.count).toBe(5);
    expect(p.total).toBe('accurate');
    expect(p.summary).toBe('count');
    expect(p.elements).toEqual(['id', 'name']);
    expect(p.include).toEqual(['Patient:organization']);
    expect(p.revinclude).toEqual(['Observation:subject']);
    // _include / _revinclude are applied (and validated) by the search interaction: src/search/include.ts.
    expect(p.unsupported).toEqual(['general-practitioner:Practitioner._text', '_has:Observation:subject:_text', '_text']);
    // strict: nothing may be silently ignored
    for (const [q, param] of [
      ['general-practitioner:Practitioner._text=x', 'general-practitioner'],
      ['_has:Observation:subject:_text=1', '_has'],
      ['_text=x', '_text'],
    ] as const) {
      expect(fhirErrorOf(() => parse(q)).issues[0]!.expression, q).toEqual([param]);
    }
    expect(parse('_count=5&_total=accurate&_summary=count&_format=json&_pretty=true').unsupported).toEqual([]);
    expect(fhirErrorOf(() => parseSearch('Observation', pairs('code-value-quantity=x'), { strict: true })).status).toBe(400); // composite
  });
});
