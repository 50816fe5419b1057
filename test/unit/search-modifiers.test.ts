/**
 * Modifiers (search.html#modifiers) against PGlite: token :below / :above (code system
 * hierarchies of the core package), :in / :not-in (core and stored value sets), :of-type, :text,
 * reference :identifier / :below / :above. Expected ids are worked out by hand from the fixtures
 * and from the R4 definitions of the code systems and value sets used.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { Encounter } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badSearch, createSearchDb, searchIds, type Fixture } from '../support/search-db.js';

const actCode = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const v20203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';

const encounter = (id: string, cls?: { system?: string; code: string }): Fixture => ({
  r: { resourceType: 'Encounter', id, status: 'finished', ...(cls ? { class: cls } : {}) } as Encounter,
});

const fixtures: Fixture[] = [
  // v3-ActCode: _ActEncounterCode > { AMB, EMER, FLD, HH, IMP > { ACUTE, NONAC }, OBSENC, PRENC, SS, VR }
  encounter('e-amb', { system: actCode, code: 'AMB' }),
  encounter('e-imp', { system: actCode, code: 'IMP' }),
  encounter('e-acute', { system: actCode, code: 'ACUTE' }),
  encounter('e-abstract', { system: actCode, code: '_ActEncounterCode' }),
  encounter('e-cash', { system: actCode, code: 'CASH' }), // ActCode, but an account code
  encounter('e-other', { system: 'http://local', code: 'AMB' }),
  encounter('e-none'),
  { r: { resourceType: 'Patient', id: 'p-m', gender: 'male' } },
  { r: { resourceType: 'Patient', id: 'p-f', gender: 'female' } },
  { r: { resourceType: 'Patient', id: 'p-x', gender: 'other' } },
  {
    r: {
      resourceType: 'Patient',
      id: 'p-mr1',
      identifier: [{ type: { coding: [{ system: v20203, code: 'MR' }] }, system: 'http://mrn', value: '12345' }],
    },
  },
  {
    r: {
      resourceType: 'Patient',
      id: 'p-ss',
      identifier: [{ type: { coding: [{ system: v20203, code: 'SS' }], text: 'Social security' }, value: '12345' }],
    },
  },
  {
    r: {
      resourceType: 'Patient',
      id: 'p-mr2',
      identifier: [
        { type: { coding: [{ system: v20203, code: 'MR' }] }, value: '999' },
        { type: { coding: [{ system: v20203, code: 'SS' }] }, value: '12345' },
      ],
    },
  },
  { r: { resourceType: 'Observation', id: 'o-hb', status: 'final', code: { text: 'Hémoglobine glyquée' }, subject: { identifier: { system: 'http://mrn', value: '12345' } } } },
  { r: { resourceType: 'Observation', id: 'o-local', status: 'final', code: { coding: [{ system: 'http://local', code: 'abc', display: 'Ärztlicher Befund' }] } } },
  { r: { resourceType: 'Observation', id: 'o-x', status: 'final', code: { coding: [{ system: 'http://local', code: 'xyz' }] } } },
  {
    r: {
      resourceType: 'ValueSet',
      id: 'vs-local',
      url: 'http://example.org/fhir/ValueSet/local',
      status: 'active',
      compose: { include: [{ system: 'http://local', concept: [{ code: 'abc' }] }] },
    },
  },
  {
    r: {
      resourceType: 'ValueSet',
      id: 'vs-exp',
      url: 'http://example.org/fhir/ValueSet/expanded',
      version: '2',
      status: 'active',
      expansion: { timestamp: '2024-01-01', contains: [{ system: 'http://local', code: 'group', contains: [{ system: 'http://local', code: 'xyz' }] }] },
    },
  },
  ...['http://acme.org/fhir/Questionnaire/q1', 'http://acme.org/fhir/Questionnaire/q1/v2', 'http://acme.org/fhir/Questionnaire', 'http://other.org/q'].map(
    (q, i): Fixture => ({ r: { resourceType: 'QuestionnaireResponse', id: `qr${i + 1}`, status: 'completed', questionnaire: q } }),
  ),
];

let db: PGlite;
beforeAll(async () => {
  db = await createSearchDb(fixtures);
});
afterAll(async () => {
  await db?.close();
});

describe('token :below and :above', () => {
  it('follows the code system hierarchy', async () => {
    expect(await searchIds(db, 'Encounter', `class:below=${actCode}|IMP`)).toEqual(['e-acute', 'e-imp']);
    expect(await searchIds(db, 'Encounter', `class:below=${actCode}|_ActEncounterCode`)).toEqual(['e-abstract', 'e-acute', 'e-amb', 'e-imp']);
    expect(await searchIds(db, 'Encounter', `class:below=${actCode}|ACUTE`)).toEqual(['e-acute']);
    expect(await searchIds(db, 'Encounter', `class:above=${actCode}|ACUTE`)).toEqual(['e-abstract', 'e-acute', 'e-imp']);
    expect(await searchIds(db, 'Encounter', `class:above=${actCode}|AMB`)).toEqual(['e-abstract', 'e-amb']);
    expect(await searchIds(db, 'Encounter', `class:below=${actCode}|IMP,${actCode}|AMB`)).toEqual(['e-acute', 'e-amb', 'e-imp']);
  });

  it('matches exactly without a known hierarchy', async () => {
    expect(await searchIds(db, 'Encounter', 'class:below=http://local|AMB')).toEqual(['e-other']);
    expect(await searchIds(db, 'Encounter', 'class:below=AMB')).toEqual(['e-amb', 'e-other']); // no system: any system
    expect(await searchIds(db, 'Encounter', `class:below=${actCode}|NOT-A-CODE`)).toEqual([]);
    expect(await searchIds(db, 'Encounter', `class:below=${actCode}|`)).toEqual(['e-abstract', 'e-acute', 'e-amb', 'e-cash', 'e-imp']);
  });
});

describe('token :in and :not-in', () => {
  const encounterVs = 'http://terminology.hl7.org/ValueSet/v3-ActEncounterCode'; // is-a _ActEncounterCode, excluding it

  it('expands core value sets', async () => {
    expect(await searchIds(db, 'Encounter', `class:in=${encounterVs}`)).toEqual(['e-acute', 'e-amb', 'e-imp']);
    expect(await searchIds(db, 'Encounter', `class:not-in=${encounterVs}`)).toEqual(['e-abstract', 'e-cash', 'e-none', 'e-other']);
    // whole code system include; Patient.gender is a code, indexed without its (implied) system
    expect(await searchIds(db, 'Patient', 'gender:in=http://hl7.org/fhir/ValueSet/administrative-gender')).toEqual(['p-f', 'p-m', 'p-x']);
    expect(await searchIds(db, 'Patient', 'gender:in=http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1&gender=male')).toEqual(['p-m']);
  });

  it('uses value sets stored on the server', async () => {
    expect(await searchIds(db, 'Observation', 'code:in=http://example.org/fhir/ValueSet/local')).toEqual(['o-local']);
    expect(await searchIds(db, 'Observation', 'code:not-in=http://example.org/fhir/ValueSet/local')).toEqual(['o-hb', 'o-x']);
    expect(await searchIds(db, 'Observation', 'code:in=http://example.org/fhir/ValueSet/expanded')).toEqual(['o-x']); // nested contains
    expect(await searchIds(db, 'Observation', 'code:in=http://example.org/fhir/ValueSet/expanded|2')).toEqual(['o-x']);
    expect(await searchIds(db, 'Observation', 'code:in=http://example.org/fhir/ValueSet/expanded|1')).toEqual([]);
    expect(await searchIds(db, 'Observation', 'code:in=http://example.org/fhir/ValueSet/none')).toEqual([]);
  });

  it('rejects value sets it cannot expand', () => {
    const e = badSearch('Observation', 'code:in=http://hl7.org/fhir/ValueSet/observation-codes'); // all of LOINC
    expect(e.status).toBe(400);
    expect(e.expression).toEqual(['code']);
    expect(e.message).toMatch(/observation-codes.*cannot be expanded.*loinc/i);
    expect(badSearch('Observation', 'code:in=not a url').expression).toEqual(['code']);
  });
});

describe('identifier :of-type, reference :identifier', () => {
  it(':of-type matches type coding and value of the same identifier', async () => {
    expect(await searchIds(db, 'Patient', `identifier:of-type=${v20203}|MR|12345`)).toEqual(['p-mr1']);
    expect(await searchIds(db, 'Patient', `identifier:of-type=${v20203}|SS|12345`)).toEqual(['p-mr2', 'p-ss']);
    expect(await searchIds(db, 'Patient', `identifier:of-type=${v20203}|MR|999`)).toEqual(['p-mr2']);
    expect(await searchIds(db, 'Patient', `identifier:of-type=${v20203}|MR|12345,${v20203}|MR|999`)).toEqual(['p-mr1', 'p-mr2']);
    for (const v of [`${v20203}|MR`, `|MR|12345`, `${v20203}||12345`, 'a|b|c|d']) {
      expect(badSearch('Patient', `identifier:of-type=${v}`).expression, v).toEqual(['identifier']);
    }
  });

  it(':identifier matches Reference.identifier', async () => {
    expect(await searchIds(db, 'Observation', 'subject:identifier=http://mrn|12345')).toEqual(['o-hb']);
    expect(await searchIds(db, 'Observation', 'subject:identifier=12345')).toEqual(['o-hb']);
    expect(await searchIds(db, 'Observation', 'subject:identifier=http://other|12345')).toEqual([]);
  });
});

describe(':text and reference :below / :above', () => {
  it('token :text is case and accent insensitive', async () => {
    expect(await searchIds(db, 'Observation', 'code:text=hemoglobine')).toEqual(['o-hb']);
    expect(await searchIds(db, 'Observation', 'code:text=HÉMO')).toEqual(['o-hb']);
    expect(await searchIds(db, 'Observation', 'code:text=arztlich')).toEqual(['o-local']);
    expect(await searchIds(db, 'Observation', 'code:text=glyquee')).toEqual([]); // starts-with
  });

  it('reference :below / :above compare canonical URLs by path', async () => {
    // qr1 …/Questionnaire/q1, qr2 …/Questionnaire/q1/v2, qr3 …/Questionnaire, qr4 http://other.org/q
    expect(await searchIds(db, 'QuestionnaireResponse', 'questionnaire:below=http://acme.org/fhir/Questionnaire/q1')).toEqual(['qr1', 'qr2']);
    expect(await searchIds(db, 'QuestionnaireResponse', 'questionnaire:below=http://acme.org/fhir/')).toEqual(['qr1', 'qr2', 'qr3']);
    expect(await searchIds(db, 'QuestionnaireResponse', 'questionnaire:above=http://acme.org/fhir/Questionnaire/q1/v3')).toEqual(['qr1', 'qr3']);
    expect(await searchIds(db, 'QuestionnaireResponse', 'questionnaire=http://acme.org/fhir/Questionnaire/q1')).toEqual(['qr1']);
    expect(badSearch('QuestionnaireResponse', 'questionnaire:below=q1').expression).toEqual(['questionnaire']);
  });
});
