/**
 * Chained parameters (search.html#chaining) against PGlite. Expected ids are worked out by hand
 * from the fixtures below.
 */
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSearchSql, parseSearch } from '../../src/search/query.js';
import { badSearch, createSearchDb, pairs, SCHEMA, searchIds, type Fixture } from '../support/search-db.js';

const loinc = 'http://loinc.org';
const fixtures: Fixture[] = [
  { r: { resourceType: 'Organization', id: 'org1', name: 'Acme Health' } },
  { r: { resourceType: 'Organization', id: 'org2', name: 'Beta Clinic' } },
  {
    r: {
      resourceType: 'Patient',
      id: 'pa',
      identifier: [{ system: 'http://mrn', value: 'M1' }],
      name: [{ family: 'Parker', given: ['Peter'] }],
      gender: 'male',
      birthDate: '1970-01-01',
      managingOrganization: { reference: 'Organization/org1' },
    },
  },
  {
    r: {
      resourceType: 'Patient',
      id: 'pb',
      name: [{ family: 'Smith', given: ['Petra'] }],
      gender: 'female',
      birthDate: '1990-06-01',
      managingOrganization: { reference: 'Organization/org2' },
    },
  },
  { r: { resourceType: 'Patient', id: 'pc', name: [{ family: 'Jones', given: ['Paul'] }], gender: 'male', birthDate: '1985' } },
  { r: { resourceType: 'Patient', id: 'pd', name: [{ given: ['Peter'] }], gender: 'male' }, deleted: true },
  { r: { resourceType: 'Group', id: 'g1', type: 'person', actual: true, name: 'Peter group', identifier: [{ system: 'http://groups', value: 'G1' }] } },
  { r: { resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'Doc', given: ['Peter'] }] } },
  {
    r: {
      resourceType: 'Encounter',
      id: 'e1',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: 'Patient/pa' },
      serviceProvider: { reference: 'Organization/org2' },
    },
  },
  ...[
    ['o1', 'Patient/pa'],
    ['o2', 'Patient/pb'],
    ['o3', 'Patient/pc'],
    ['o4', 'Group/g1'],
    ['o5', 'Patient/pd'], // a deleted patient
    ['o6', 'Patient/zz'], // no such patient
  ].map(([id, ref]): Fixture => ({ r: { resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: loinc, code: '1234-5' }] }, subject: { reference: ref } } })),
  {
    r: {
      resourceType: 'Observation',
      id: 'o7',
      status: 'final',
      code: { coding: [{ system: loinc, code: '9999-9' }] },
      subject: { reference: 'Patient/pb' },
      encounter: { reference: 'Encounter/e1' },
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

const obs = (q: string) => searchIds(db, 'Observation', q);

describe('chained parameters', () => {
  it('follows a reference with a type modifier', async () => {
    expect(await obs('subject:Patient.name=peter')).toEqual(['o1']); // pd is deleted, zz does not exist
    expect(await obs('subject:Patient.name=petra,paul')).toEqual(['o2', 'o3', 'o7']);
    expect(await obs('subject:Group.identifier=G1')).toEqual(['o4']);
    expect(await obs('subject:Group.identifier=M1')).toEqual([]);
    expect(await obs('subject:Patient.name=nobody')).toEqual([]);
  });

  it('infers the type when the parameter has a single target', async () => {
    expect(await obs('patient.name=peter')).toEqual(['o1']);
    expect(await obs('patient.family=smith')).toEqual(['o2', 'o7']);
  });

  it('searches every target type when all of them have the chained parameter', async () => {
    // subject: Group | Device | Patient | Location, all with `identifier`
    expect(await obs('subject.identifier=G1')).toEqual(['o4']);
    expect(await obs('subject.identifier=http://mrn|M1')).toEqual(['o1']);
  });

  it('chains parameters of any type and their modifiers', async () => {
    expect(await obs('subject:Patient.gender=male')).toEqual(['o1', 'o3']);
    expect(await obs('subject:Patient.birthdate=lt1980')).toEqual(['o1']);
    expect(await obs('subject:Patient.birthdate=ge1985')).toEqual(['o2', 'o3', 'o7']);
    expect(await obs('subject:Patient.gender:not=male')).toEqual(['o2', 'o7']);
    expect(await obs('subject:Patient.name:exact=Peter')).toEqual(['o1']);
    expect(await obs('subject:Patient._id=pa,pc')).toEqual(['o1', 'o3']);
    expect(await obs('subject:Patient.organization:missing=true')).toEqual(['o3']);
    expect(await obs('subject:Patient.organization=Organization/org2')).toEqual(['o2', 'o7']);
  });

  it('follows two levels', async () => {
    expect(await obs('subject:Patient.organization.name=acme')).toEqual(['o1']);
    expect(await obs('patient.organization.name=beta')).toEqual(['o2', 'o7']);
    expect(await obs('subject:Patient.organization:Organization.name=beta')).toEqual(['o2', 'o7']);
    // encounter: Encounter | EpisodeOfCare; only Encounter has service-provider
    expect(await obs('encounter:Encounter.service-provider.name=beta')).toEqual(['o7']);
    expect(await obs('encounter:Encounter.subject:Patient.name=peter')).toEqual(['o7']);
  });

  it('ANDs chains with each other and with other parameters', async () => {
    expect(await obs('subject:Patient.name=p&subject:Patient.gender=female')).toEqual(['o2', 'o7']);
    expect(await obs('subject:Patient.gender=female&code=1234-5')).toEqual(['o2']);
  });

  it('rejects ambiguous, invalid and unknown chains naming the parameter', () => {
    // Device (a target of subject) has no `name` parameter: a type is needed
    const ambiguous = badSearch('Observation', 'subject.name=peter');
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.expression).toEqual(['subject']);
    expect(ambiguous.message).toMatch(/subject:Patient\.name|subject:Group\.name/);
    expect(badSearch('Observation', 'encounter.service-provider.name=x').expression).toEqual(['encounter']);
    expect(badSearch('Observation', 'code.name=x').expression).toEqual(['code']); // not a reference
    expect(badSearch('Observation', 'patient:Group.name=x').expression).toEqual(['patient']); // not a target
    expect(badSearch('Observation', 'subject:Nothing.name=x').expression).toEqual(['subject']);
    expect(badSearch('Observation', 'subject:Patient.birthdate=soon').expression).toEqual(['subject']); // bad value
    expect(badSearch('Observation', 'subject:Patient.family:foo=x').expression).toEqual(['subject']); // bad modifier
    expect(badSearch('Observation', 'subject:Patient.nosuch=x').expression).toEqual(['subject']); // unknown (strict)
    const lenient = parseSearch('Observation', pairs('subject:Patient.nosuch=x&status=final'), { strict: false });
    expect(lenient.unknown).toEqual(['subject']);
    expect(lenient.filters).toHaveLength(1);
  });
});

describe('chained parameter plans', () => {
  let big: PGlite;
  const N = 3000;

  beforeAll(async () => {
    big = await createSearchDb([]);
    const s = SCHEMA;
    // N organizations, N patients (patient i managed by organization i), 2N observations (two per patient)
    await big.exec(`
      INSERT INTO ${s}.resource (resource_type, id, version_id, last_updated, content)
        SELECT 'Organization', 'org' || g, 1, now(), '{}' FROM generate_series(1, ${N}) g;
      INSERT INTO ${s}.resource (resource_type, id, version_id, last_updated, content)
        SELECT 'Patient', 'p' || g, 1, now(), '{}' FROM generate_series(1, ${N}) g;
      INSERT INTO ${s}.resource (resource_type, id, version_id, last_updated, content)
        SELECT 'Observation', 'o' || g, 1, now(), '{}' FROM generate_series(1, ${2 * N}) g;
      INSERT INTO ${s}.sp_string (rid, resource_type, param, norm, exact)
        SELECT rid, resource_type, 'name', 'name' || substr(id, 4), 'Name' FROM ${s}.resource WHERE resource_type = 'Organization';
      INSERT INTO ${s}.sp_string (rid, resource_type, param, norm, exact)
        SELECT rid, resource_type, 'name', 'family' || substr(id, 2), 'Family' FROM ${s}.resource WHERE resource_type = 'Patient';
      INSERT INTO ${s}.sp_reference (rid, resource_type, param, target_type, target_id)
        SELECT rid, resource_type, 'organization', 'Organization', 'org' || substr(id, 2) FROM ${s}.resource WHERE resource_type = 'Patient';
      INSERT INTO ${s}.sp_reference (rid, resource_type, param, target_type, target_id)
        SELECT rid, resource_type, p, 'Patient', 'p' || (1 + substr(id, 2)::int % ${N}) FROM ${s}.resource, unnest(ARRAY['subject', 'patient']) p
        WHERE resource_type = 'Observation';
      INSERT INTO ${s}.sp_token (rid, resource_type, param, system, code)
        SELECT rid, resource_type, 'code', 'http://loinc.org', 'c' || (substr(id, 2)::int % 500) FROM ${s}.resource WHERE resource_type = 'Observation';
      ANALYZE;
    `);
  });
  afterAll(async () => {
    await big?.close();
  });

  async function plan(type: string, query: string): Promise<string> {
    const parsed = parseSearch(type, pairs(query), { strict: true });
    const { sql, params } = buildSearchSql(SCHEMA, parsed, { limit: 20, offset: 0 });
    const res = await big.query<{ 'QUERY PLAN': string }>(`EXPLAIN ANALYZE ${sql}`, params);
    const text = res.rows.map((r) => r['QUERY PLAN']).join('\n');
    if (process.env.SHOW_PLANS) console.log(`${type}?${query}\n${text}`);
    return text;
  }

  it('drives a chain from the chained value through the reference indexes', async () => {
    const p = await plan('Observation', 'subject:Patient.name=family2999');
    expect(p).not.toMatch(/Seq Scan on sp_reference/);
    expect(p).not.toMatch(/Seq Scan on sp_string/);
    expect(p).toMatch(/Index (Only )?Scan using sp_reference_(target|reverse)_idx/);
    expect(p).toMatch(/sp_string_norm_idx/);
    // only p2999 has a name starting with family2999; o2998 and o5998 reference it
    const parsed = parseSearch('Observation', pairs('subject:Patient.name=family2999'), { strict: true });
    const { sql, params } = buildSearchSql(SCHEMA, parsed, { limit: 20, offset: 0 });
    expect((await big.query<{ id: string }>(sql, params)).rows.map((r) => r.id).sort()).toEqual(['o2998', 'o5998']);
  });

  it('uses indexes for two-level chains and _has', async () => {
    const two = await plan('Observation', 'patient.organization.name=name7');
    expect(two).not.toMatch(/Seq Scan on sp_reference/);
    expect(two).toMatch(/sp_reference_(target|reverse)_idx/);
    const has = await plan('Patient', '_has:Observation:subject:code=c7');
    expect(has).not.toMatch(/Seq Scan on sp_reference/);
    expect(has).not.toMatch(/Seq Scan on sp_token/);
  });
});
