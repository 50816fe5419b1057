import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Bundle, Resource } from 'fhir/r4.js';
import type { Issue } from '../../src/fhir/outcome.js';
import { elementInfo, fhirVersion, isResourceType, resourceTypes } from '../../src/fhir/definitions.js';
import { validateResource, warmUpValidators } from '../../src/fhir/validator.js';

const SYNTHEA = fileURLToPath(
  new URL('../../fixtures/synthea/Denny_Bins_bc0fbd67-bfe3-46c8-8ce9-ef20b0705b46.json', import.meta.url),
);

const expressions = (issues: Issue[]) => issues.flatMap((i) => i.expression ?? []);

function expectIssue(issues: Issue[], expression: string, code?: Issue['code'], text?: string | RegExp) {
  const hit = issues.find((i) => i.expression?.includes(expression));
  expect(hit, `no issue at ${expression}; got ${JSON.stringify(issues)}`).toBeDefined();
  expect(hit!.severity).toBe('error');
  if (code) expect(hit!.code).toBe(code);
  if (text) expect(hit!.diagnostics).toMatch(text);
}

const observation = (extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'test' },
  ...extra,
});

beforeAll(() => {
  warmUpValidators();
}, 30_000);

describe('definitions', () => {
  it('lists exactly the R4 resource types', () => {
    const types = resourceTypes();
    expect(types.length).toBe(146);
    expect([...types]).toEqual([...types].sort());
    for (const t of ['Patient', 'Observation', 'Bundle', 'Parameters', 'Binary', 'SubstanceSpecification', 'VisionPrescription']) {
      expect(isResourceType(t), t).toBe(true);
    }
    // Medplum-only, R4B-only and abstract types are not R4 resource types.
    for (const t of ['Project', 'Bot', 'User', 'Login', 'ClientApplication', 'AccessPolicy', 'SubscriptionStatus', 'Resource', 'DomainResource', 'HumanName']) {
      expect(isResourceType(t), t).toBe(false);
    }
    expect(fhirVersion()).toBe('4.0.1');
  });

  it('describes elements, following datatypes, backbones and choice types', () => {
    expect(elementInfo('Patient.name.given')).toMatchObject({ path: 'HumanName.given', types: ['string'], min: 0, max: '*' });
    expect(elementInfo('Observation.subject.reference')?.types).toEqual(['string']);
    expect(elementInfo('Observation.subject')?.targetTypes).toEqual(['Patient', 'Group', 'Device', 'Location']);
    expect(elementInfo('Observation.value[x]')?.types).toContain('Quantity');
    expect(elementInfo('Observation.valueQuantity')).toMatchObject({ path: 'Observation.value[x]', types: ['Quantity'] });
    expect(elementInfo('Observation.valueQuantity.unit')?.types).toEqual(['string']);
    expect(elementInfo('Observation.status')).toMatchObject({ types: ['code'], min: 1, max: '1' });
    expect(elementInfo('Patient.contact.name.family')?.types).toEqual(['string']);
    expect(elementInfo('Patient.contact.extension')?.types).toEqual(['Extension']);
    expect(elementInfo('Questionnaire.item.item.linkId')).toMatchObject({ types: ['string'], min: 1 });
    expect(elementInfo('Patient.meta.lastUpdated')?.types).toEqual(['instant']);
    expect(elementInfo('Patient.id')?.types).toEqual(['id']);
    expect(elementInfo('Patient.foo')).toBeUndefined();
    expect(elementInfo('Bogus.name')).toBeUndefined();
  });

  it('leaves out elements Medplum grafted onto the R4 definitions', () => {
    expect(elementInfo('Patient.meta.project')).toBeUndefined();
    expect(elementInfo('Patient.meta.compartment')).toBeUndefined();
    expect(elementInfo('Binary.url')).toBeUndefined();
    expect(elementInfo('ResearchStudy.studyDesign')).toBeUndefined();
    expect(elementInfo('ResearchStudy.status')?.types).toEqual(['code']);
    expect(elementInfo('Bundle.entry.response.outcome')?.types).toEqual(['Resource']);
  });
});

describe('validateResource', () => {
  it('accepts a valid Patient', () => {
    const patient = {
      resourceType: 'Patient',
      id: 'example-1',
      meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00Z', profile: ['http://example.org/p'] },
      identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345' }],
      active: true,
      name: [{ use: 'official', family: 'Chalmers', given: ['Peter', 'James'] }],
      telecom: [{ system: 'phone', value: '(03) 5555 6473', use: 'work', rank: 1 }],
      gender: 'male',
      birthDate: '1974-12-25',
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1974-12-25T14:35:45-05:00' }] },
      deceasedBoolean: false,
      multipleBirthInteger: 2,
      managingOrganization: { reference: 'Organization/1' },
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Peter</div>' },
    };
    expect(validateResource(patient)).toEqual([]);
    expect(validateResource(patient, 'Patient')).toEqual([]);
  });

  it('accepts every resource of a Synthea patient bundle, and the bundle itself', () => {
    const bundle = JSON.parse(readFileSync(SYNTHEA, 'utf8')) as Bundle;
    expect(bundle.entry?.length).toBeGreaterThan(50);
    for (const entry of bundle.entry ?? []) {
      const resource = entry.resource as Resource;
      const issues = validateResource(resource, resource.resourceType);
      expect(issues, `${resource.resourceType}/${resource.id}: ${JSON.stringify(issues)}`).toEqual([]);
    }
    expect(validateResource(bundle)).toEqual([]);
  });

  it('rejects non-objects and missing resourceType', () => {
    expect(validateResource('Patient')[0].code).toBe('invalid');
    expect(validateResource(null)[0].code).toBe('invalid');
    expect(validateResource([])[0].code).toBe('invalid');
    expect(validateResource({ id: 'x' })[0]).toMatchObject({ code: 'invalid', diagnostics: expect.stringMatching(/resourceType/) });
  });

  it('rejects unknown and Medplum-only resource types as not supported', () => {
    for (const type of ['Bogus', 'Project', 'User', 'Bot', 'SubscriptionStatus']) {
      const issues = validateResource({ resourceType: type });
      expect(issues).toHaveLength(1);
      expect(issues[0].code).toBe('not-supported');
      expect(issues[0].diagnostics).toContain(`'${type}'`);
    }
  });

  it('rejects a resourceType other than the expected one', () => {
    const issues = validateResource({ resourceType: 'Patient' }, 'Observation');
    expect(issues).toHaveLength(1);
    expect(issues[0].code).toBe('invalid');
    expect(issues[0].diagnostics).toMatch(/Observation.*Patient/);
  });

  it('flags unknown elements with their path', () => {
    const issues = validateResource({ resourceType: 'Patient', foo: 1, name: [{ family: 'x' }, { given: ['a'], bar: true }] });
    expect(issues).toHaveLength(2);
    expectIssue(issues, 'Patient.foo', 'structure', "Unknown element 'foo'");
    expectIssue(issues, 'Patient.name[1].bar', 'structure', "Unknown element 'bar'");
  });

  it('flags a choice element without its type suffix, and elements Medplum added', () => {
    expectIssue(validateResource(observation({ value: 5 })), 'Observation.value', 'structure', /valueQuantity/);
    expectIssue(validateResource({ resourceType: 'Patient', meta: { project: 'p' } }), 'Patient.meta.project', 'structure');
    expectIssue(validateResource(observation({ subject: { reference: 'Patient/1', resource: {} } })), 'Observation.subject.resource', 'structure');
  });

  it('flags primitives of the wrong JSON type or format', () => {
    const issues = validateResource({ resourceType: 'Patient', birthDate: 19741225, active: 'yes', name: [{ given: 'Peter' }] });
    expectIssue(issues, 'Patient.birthDate', 'value', /date/);
    expectIssue(issues, 'Patient.active', 'value', /boolean/);
    expectIssue(issues, 'Patient.name[0].given', 'structure', /array/);
    expectIssue(validateResource({ resourceType: 'Patient', birthDate: '1974-13-01' }), 'Patient.birthDate', 'value', /date/);
    expectIssue(validateResource({ resourceType: 'Patient', multipleBirthInteger: 1.5 }), 'Patient.multipleBirthInteger', 'value');
    expectIssue(validateResource({ resourceType: 'Patient', name: { family: 'x' } }), 'Patient.name', 'structure', /array/);
    expectIssue(validateResource({ resourceType: 'Patient', name: [] }), 'Patient.name', 'structure', /empty/);
  });

  it('flags a code outside the required value set, listing the allowed ones', () => {
    const issues = validateResource({ resourceType: 'Patient', gender: 'M' });
    expect(issues).toHaveLength(1);
    expectIssue(issues, 'Patient.gender', 'value', /male \| female \| other \| unknown/);
  });

  it('flags missing required elements, including primitives and nested ones', () => {
    expectIssue(validateResource({ resourceType: 'Observation', code: { text: 'x' } }), 'Observation.status', 'required');
    expectIssue(validateResource(observation({ component: [{ valueString: 'x' }] })), 'Observation.component[0].code', 'required');
    // A primitive's extension alone satisfies the requirement.
    expect(validateResource({ resourceType: 'Observation', _status: { extension: [{ url: 'http://x', valueCode: 'unknown' }] }, code: { text: 'x' } })).toEqual([]);
  });

  it('accepts nulls in primitive arrays paired with _ arrays', () => {
    const patient = { resourceType: 'Patient', name: [{ given: ['A', null], _given: [null, { extension: [{ url: 'http://x', valueString: 'y' }] }] }] };
    expect(validateResource(patient)).toEqual([]);
  });

  it('flags malformed ids', () => {
    for (const id of ['a b', 'x'.repeat(65), '', 'a/b', 'é']) {
      expectIssue(validateResource({ resourceType: 'Patient', id }), 'Patient.id', 'value', /id/);
    }
    expect(validateResource({ resourceType: 'Patient', id: 'A-z.09' })).toEqual([]);
    expect(validateResource({ resourceType: 'Patient', id: 'x'.repeat(64) })).toEqual([]);
  });

  it('flags malformed references with the path of the reference', () => {
    const bad = ['Patient', 'Bogus/1', 'Patient/a b', 'Patient/', '/Patient/1', 'Patient/1/_history/', 'urn:uuid:nope', 'urn:oid:abc', 'ftp://x/Patient/1', '#a b', 'Bogus?name=x', 'Patient?'];
    const issues = validateResource(observation({ performer: bad.map((reference) => ({ reference })) }));
    bad.forEach((ref, i) => expectIssue(issues, `Observation.performer[${i}].reference`, 'value', `'${ref}'`));
    expect(issues).toHaveLength(bad.length);
    expectIssue(validateResource(observation({ subject: { reference: 'Patient' } })), 'Observation.subject.reference', 'value');
  });

  it('accepts each allowed reference form', () => {
    const good = [
      'Patient/123',
      'Patient/a-b.c',
      'Patient/123/_history/2',
      'http://example.org/fhir/Patient/123',
      'https://example.org/fhir/Patient/123/_history/1',
      'urn:uuid:6a7d8f9e-1234-4abc-8def-0123456789ab',
      'urn:oid:1.2.840.113619.6.197',
      '#c1',
      'Patient?identifier=http://example.org/mrn|12345',
    ];
    for (const reference of good) {
      const resource = observation({ contained: [{ resourceType: 'Patient', id: 'c1' }], subject: { reference } });
      expect(validateResource(resource), reference).toEqual([]);
    }
  });

  it('checks reference targets against the element definition', () => {
    expectIssue(validateResource(observation({ encounter: { reference: 'Patient/1' } })), 'Observation.encounter.reference', 'value', /Encounter/);
    expectIssue(
      validateResource(observation({ contained: [{ resourceType: 'Organization', id: 'o' }], subject: { reference: '#o' } })),
      'Observation.subject.reference',
      'value',
    );
    expectIssue(validateResource(observation({ subject: { reference: '#missing' } })), 'Observation.subject.reference', 'value', /contained/);
  });

  it('finds references inside datatypes, backbones and extensions', () => {
    const resource = {
      resourceType: 'Patient',
      identifier: [{ value: '1', assigner: { reference: 'Bogus/1' } }],
      contact: [{ organization: { reference: 'Organization/a b' } }],
      extension: [{ url: 'http://x', valueReference: { reference: 'not a ref' } }],
      _birthDate: { extension: [{ url: 'http://y', valueReference: { reference: 'Bad/1' } }] },
    };
    const issues = validateResource(resource);
    expect(expressions(issues).sort()).toEqual([
      'Patient._birthDate.extension[0].valueReference.reference',
      'Patient.contact[0].organization.reference',
      'Patient.extension[0].valueReference.reference',
      'Patient.identifier[0].assigner.reference',
    ]);
  });

  it('checks contained resources recursively', () => {
    const resource = {
      resourceType: 'Patient',
      contained: [
        { resourceType: 'Project', id: 'p' },
        { resourceType: 'Organization', id: 'o1', name: 7, partOf: { reference: 'Bogus/2' } },
        { resourceType: 'Practitioner', id: 'bad id' },
        { resourceType: 'Basic', id: 'b', contained: [{ resourceType: 'Basic', code: { text: 'x' } }], code: { text: 'y' } },
      ],
      managingOrganization: { reference: '#o1' },
    };
    const issues = validateResource(resource);
    expectIssue(issues, 'Patient.contained[0].resourceType', 'not-supported', /Project/);
    expectIssue(issues, 'Patient.contained[1].name', 'value');
    expectIssue(issues, 'Patient.contained[1].partOf.reference', 'value', /Bogus/);
    expectIssue(issues, 'Patient.contained[2].id', 'value');
    expectIssue(issues, 'Patient.contained[3].contained', 'invalid', /dom-2/);
  });

  it('checks resources inside Bundle entries and Parameters', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', gender: 'x' } }, { resource: { resourceType: 'User' } }],
    };
    const issues = validateResource(bundle);
    expectIssue(issues, 'Bundle.entry[0].resource.gender', 'value');
    expectIssue(issues, 'Bundle.entry[1].resource.resourceType', 'not-supported');
    const params = { resourceType: 'Parameters', parameter: [{ name: 'p', resource: { resourceType: 'Patient', foo: 1 } }] };
    expectIssue(validateResource(params), 'Parameters.parameter[0].resource.foo', 'structure');
  });

  it('caps the number of issues', () => {
    const issues = validateResource({ resourceType: 'Patient', name: Array.from({ length: 80 }, () => ({ foo: 1 })) });
    expect(issues.length).toBeLessThanOrEqual(51);
    expect(issues.filter((i) => i.severity === 'error')).toHaveLength(50);
  });
});
