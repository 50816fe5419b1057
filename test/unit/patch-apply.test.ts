import { describe, expect, it } from 'vitest';
import type { Patient, Practitioner, Resource } from 'fhir/r4.js';
import { applyFhirPathPatch, applyJsonPatch } from '../../src/interactions/patch-apply.js';

const patient = (): Patient => ({
  resourceType: 'Patient',
  id: 'p1',
  identifier: [{ system: 'http://a', value: '1' }, { system: 'http://b', value: '2' }],
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  gender: 'male',
  active: true,
});

/** Assert that `fn` throws a FhirError with this status (and, optionally, a diagnostic matching `msg`). */
const fails = (fn: () => unknown, status: number, msg?: RegExp) =>
  expect(fn).toThrow(expect.objectContaining({ status, ...(msg ? { message: expect.stringMatching(msg) } : {}) }));

type Part = Record<string, unknown>;
const op = (type: string, ...parts: Part[]) => ({ name: 'operation', part: [{ name: 'type', valueCode: type }, ...parts] });
const params = (...ops: unknown[]) => ({ resourceType: 'Parameters', parameter: ops });
const path = (p: string): Part => ({ name: 'path', valueString: p });
const name = (n: string): Part => ({ name: 'name', valueString: n });
const value = (v: Part): Part => ({ name: 'value', ...v });
const int = (n: 'index' | 'source' | 'destination', i: number): Part => ({ name: n, valueInteger: i });
const fp = (r: Resource, ...ops: unknown[]) => applyFhirPathPatch(r, params(...ops)) as Patient;

describe('applyJsonPatch', () => {
  it('applies add, replace, remove, copy, move and test in sequence', () => {
    const out = applyJsonPatch(patient(), [
      { op: 'test', path: '/gender', value: 'male' },
      { op: 'add', path: '/birthDate', value: '1974-12-25' },
      { op: 'replace', path: '/gender', value: 'female' },
      { op: 'remove', path: '/identifier/0' },
      { op: 'add', path: '/name/0/given/0', value: 'Jim' },
      { op: 'move', from: '/name/0/given/2', path: '/name/0/given/0' },
      { op: 'copy', from: '/name/0/family', path: '/name/0/text' },
    ]);
    expect(out).toEqual({
      resourceType: 'Patient', id: 'p1', identifier: [{ system: 'http://b', value: '2' }],
      name: [{ family: 'Chalmers', given: ['James', 'Jim', 'Peter'], text: 'Chalmers' }],
      gender: 'female', active: true, birthDate: '1974-12-25',
    });
  });

  it('never mutates the input and does not alias the patch values', () => {
    const input = patient();
    const snapshot = structuredClone(input);
    const ops = [{ op: 'add', path: '/identifier/-', value: { system: 'http://c', value: '3' } }];
    const out = applyJsonPatch(input, ops) as Patient;
    expect(input).toEqual(snapshot);
    expect(out).not.toBe(input);
    out.identifier![2]!.value = 'changed';
    expect(ops[0]!.value.value).toBe('3');
  });

  it('rejects a malformed document with 400, naming the operation', () => {
    fails(() => applyJsonPatch(patient(), { op: 'add' }), 400, /array/);
    fails(() => applyJsonPatch(patient(), [{ op: 'test', path: '/gender', value: 'male' }, { op: 'upsert', path: '/x' }]), 400, /operation 1/);
    fails(() => applyJsonPatch(patient(), ['remove']), 400, /operation 0/);
    fails(() => applyJsonPatch(patient(), [{ op: 'remove' }]), 400, /'path' is required/);
    fails(() => applyJsonPatch(patient(), [{ op: 'replace', path: '/gender' }]), 400, /'value' is required/);
    fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: 'gender' }]), 400, /JSON Pointer/);
    fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: '/a~2b' }]), 400, /JSON Pointer/);
    fails(() => applyJsonPatch(patient(), [{ op: 'move', path: '/name' }]), 400, /'from'/);
    fails(() => applyJsonPatch(patient(), [{ op: 'move', from: '/name', path: '/name/0/x' }]), 400, /own child/);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/__proto__/x', value: 1 }]), 400);
  });

  it('rejects a patch that cannot apply with 422', () => {
    fails(() => applyJsonPatch(patient(), [{ op: 'test', path: '/gender', value: 'female' }]), 422, /operation 0.*test failed/);
    fails(() => applyJsonPatch(patient(), [{ op: 'test', path: '/birthDate', value: '1974-12-25' }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: '/birthDate' }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: '/identifier/5' }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'replace', path: '/maritalStatus', value: { text: 'M' } }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/identifier/5', value: { value: 'x' } }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/contact/0/name', value: { family: 'x' } }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'move', from: '/birthDate', path: '/deceasedDateTime' }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'add', path: '/name/first', value: {} }]), 422);
    fails(() => applyJsonPatch(patient(), [{ op: 'remove', path: '' }]), 422, /not a resource/);
  });
});

describe('applyFhirPathPatch: add', () => {
  it('adds a single-valued element (spec example: birthDate)', () => {
    const out = fp(patient(), op('add', path('Patient'), name('birthDate'), value({ valueDate: '1930-01-01' })));
    expect(out.birthDate).toBe('1930-01-01');
  });

  it('appends to a repeating element', () => {
    const out = fp(patient(), op('add', path('Patient'), name('identifier'), value({ valueIdentifier: { system: 'http://c', value: '3' } })));
    expect(out.identifier).toEqual([...patient().identifier!, { system: 'http://c', value: '3' }]);
    const out2 = fp(patient(), op('add', path('Patient.name[0]'), name('given'), value({ valueString: 'Jim' })));
    expect(out2.name![0]!.given).toEqual(['Peter', 'James', 'Jim']);
  });

  it('builds complex and backbone values from parts', () => {
    const out = fp(patient(), op('add', path('Patient'), name('contact'), {
      name: 'value',
      part: [
        { name: 'name', valueHumanName: { family: 'Du Marché' } },
        { name: 'relationship', part: [{ name: 'coding', valueCoding: { system: 'http://s', code: 'N' } }] },
        { name: 'gender', valueCode: 'female' },
        { name: 'telecom', part: [{ name: 'system', valueCode: 'phone' }, { name: 'value', valueString: '555' }] },
      ],
    }));
    expect(out.contact).toEqual([{
      name: { family: 'Du Marché' },
      relationship: [{ coding: [{ system: 'http://s', code: 'N' }] }],
      gender: 'female',
      telecom: [{ system: 'phone', value: '555' }],
    }]);
    const out2 = fp(patient(), op('add', path('Patient'), name('name'), {
      name: 'value', part: [{ name: 'family', valueString: 'Windsor' }, { name: 'given', valueString: 'Jim' }],
    }));
    expect(out2.name![1]).toEqual({ family: 'Windsor', given: ['Jim'] });
  });

  it('uses the typed key for a choice element and checks the type', () => {
    expect(fp(patient(), op('add', path('Patient'), name('deceased'), value({ valueBoolean: false }))).deceasedBoolean).toBe(false);
    fails(() => fp(patient(), op('add', path('Patient'), name('deceased'), value({ valueString: 'no' }))), 422, /Boolean \| DateTime/);
  });

  it('adds an extension to a primitive via its _element sibling', () => {
    const p = { ...patient(), birthDate: '1974-12-25' };
    const out = fp(p, op('add', path('Patient.birthDate'), name('extension'), {
      name: 'value', part: [{ name: 'url', valueUri: 'http://ext' }, { name: 'value', valueDateTime: '1974-12-25T14:35:45-05:00' }],
    }));
    expect(out.birthDate).toBe('1974-12-25');
    expect(out._birthDate).toEqual({ extension: [{ url: 'http://ext', valueDateTime: '1974-12-25T14:35:45-05:00' }] });
  });

  it('follows elements defined elsewhere (Questionnaire.item.item is a Questionnaire.item)', () => {
    const q = { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'group' }] }] } as const;
    const out = applyFhirPathPatch(q as Resource, params(op('add', path("Questionnaire.item.item.where(linkId='1.1')"), name('item'), {
      name: 'value', part: [{ name: 'linkId', valueString: '1.1.1' }, { name: 'type', valueCode: 'display' }],
    })));
    expect(out).toMatchObject({ item: [{ item: [{ linkId: '1.1', item: [{ linkId: '1.1.1', type: 'display' }] }] }] });
  });

  it('fails with 422 when the element exists, is unknown, has the wrong type, or the path is not one element', () => {
    fails(() => fp(patient(), op('add', path('Patient'), name('gender'), value({ valueCode: 'other' }))), 422, /already has a value/);
    fails(() => fp(patient(), op('add', path('Patient'), name('foo'), value({ valueString: 'x' }))), 422, /no element 'foo'/);
    fails(() => fp(patient(), op('add', path('Patient'), name('birthDate'), value({ valueHumanName: { family: 'x' } }))), 422, /type date/);
    fails(() => fp(patient(), op('add', path('Patient.identifier'), name('use'), value({ valueCode: 'official' }))), 422, /matches 2/);
    fails(() => fp(patient(), op('add', path('Patient.contact'), name('gender'), value({ valueCode: 'male' }))), 422, /does not match/);
  });
});

describe('applyFhirPathPatch: insert', () => {
  it('inserts into a list at the index (given name at 0, identifier at the end)', () => {
    const out = fp(patient(), op('insert', path('Patient.name[0].given'), int('index', 0), value({ valueString: 'Jim' })));
    expect(out.name![0]!.given).toEqual(['Jim', 'Peter', 'James']);
    const out2 = fp(patient(), op('insert', path('Patient.identifier'), int('index', 2), value({ valueIdentifier: { value: '3' } })));
    expect(out2.identifier!.map((i) => i.value)).toEqual(['1', '2', '3']);
  });

  it('keeps the _given extension list aligned', () => {
    const p = patient();
    p.name![0]!._given = [null as never, { id: 'j' }];
    const out = fp(p, op('insert', path('Patient.name.given'), int('index', 1), value({ valueString: 'Jim' })));
    expect(out.name![0]!.given).toEqual(['Peter', 'Jim', 'James']);
    expect(out.name![0]!._given).toEqual([null, null, { id: 'j' }]);
  });

  it('fails with 422 for an index out of range, a non-list, part of a list, or no match', () => {
    fails(() => fp(patient(), op('insert', path('Patient.identifier'), int('index', 3), value({ valueIdentifier: { value: 'x' } }))), 422, /out of range/);
    fails(() => fp(patient(), op('insert', path('Patient.gender'), int('index', 0), value({ valueCode: 'male' }))), 422, /single list/);
    fails(() => fp(patient(), op('insert', path("Patient.identifier.where(system='http://b')"), int('index', 0), value({ valueIdentifier: {} }))), 422, /whole list/);
    fails(() => fp(patient(), op('insert', path('Patient.telecom'), int('index', 0), value({ valueContactPoint: { value: '1' } }))), 422);
    fails(() => fp(patient(), op('insert', path('Patient.identifier'), int('index', 0), value({ valueString: 'x' }))), 422, /type Identifier/);
  });
});

describe('applyFhirPathPatch: delete', () => {
  it('deletes the element selected with where() (spec example)', () => {
    const out = fp(patient(), op('delete', path("Patient.identifier.where(system='http://a')")));
    expect(out.identifier).toEqual([{ system: 'http://b', value: '2' }]);
  });

  it('deletes a primitive together with its _element sibling, and a list item keeping _given aligned', () => {
    const p = { ...patient(), birthDate: '1974-12-25', _birthDate: { id: 'b' } };
    p.name![0]!._given = [{ id: 'p' }, null as never];
    let out = fp(p, op('delete', path('Patient.birthDate')));
    expect(out).not.toHaveProperty('birthDate');
    expect(out).not.toHaveProperty('_birthDate');
    out = fp(p, op('delete', path('Patient.name.given[0]')));
    expect(out.name![0]!.given).toEqual(['James']);
    expect(out.name![0]).not.toHaveProperty('_given');
  });

  it('removes lists and elements left empty', () => {
    const p: Patient = { resourceType: 'Patient', name: [{ given: ['Peter'] }], active: true };
    expect(fp(p, op('delete', path('Patient.name.given')))).toEqual({ resourceType: 'Patient', active: true });
  });

  it('is a no-op when nothing matches ("if found")', () => {
    expect(fp(patient(), op('delete', path('Patient.birthDate')))).toEqual(patient());
  });

  it('fails with 422 when more than one element matches, or for the resource itself', () => {
    fails(() => fp(patient(), op('delete', path('Patient.identifier'))), 422, /matches 2/);
    fails(() => fp(patient(), op('delete', path('Patient'))), 422);
  });
});

describe('applyFhirPathPatch: replace', () => {
  it('replaces a primitive (spec example: gender), a list item and a complex element', () => {
    expect(fp(patient(), op('replace', path('Patient.gender'), value({ valueCode: 'female' }))).gender).toBe('female');
    expect(fp(patient(), op('replace', path('Patient.name.given[1]'), value({ valueString: 'Jim' }))).name![0]!.given).toEqual(['Peter', 'Jim']);
    const out = fp(patient(), op('replace', path("Patient.identifier.where(value='1')"), value({ valueIdentifier: { system: 'http://z', value: '9' } })));
    expect(out.identifier).toEqual([{ system: 'http://z', value: '9' }, { system: 'http://b', value: '2' }]);
    const out2 = fp(patient(), op('replace', path('Patient.name[0]'), { name: 'value', part: [{ name: 'text', valueString: 'P C' }] }));
    expect(out2.name).toEqual([{ text: 'P C' }]);
  });

  it('carries a primitive value\'s extension (_valueCode) into the _element sibling', () => {
    const ext = { extension: [{ url: 'http://x', valueString: 'y' }] };
    const out = fp(patient(), op('replace', path('Patient.gender'), value({ valueCode: 'female', _valueCode: ext })));
    expect(out).toMatchObject({ gender: 'female', _gender: ext });
  });

  it('switches the key of a choice element to the new type', () => {
    const p: Patient = { ...patient(), deceasedBoolean: true };
    const out = fp(p, op('replace', path('Patient.deceased'), value({ valueDateTime: '2020-01-01' })));
    expect(out.deceasedDateTime).toBe('2020-01-01');
    expect(out).not.toHaveProperty('deceasedBoolean');
  });

  it('replaces inside a contained resource', () => {
    const pr: Practitioner = { resourceType: 'Practitioner', id: 'pr', active: false };
    const p: Patient = { ...patient(), contained: [pr] };
    const out = fp(p, op('replace', path("Patient.contained.where(id='pr').active"), value({ valueBoolean: true })));
    expect(out.contained).toEqual([{ resourceType: 'Practitioner', id: 'pr', active: true }]);
  });

  it('fails with 422 when nothing or several elements match, or the type is wrong', () => {
    fails(() => fp(patient(), op('replace', path('Patient.birthDate'), value({ valueDate: '2000-01-01' }))), 422, /does not match/);
    fails(() => fp(patient(), op('replace', path('Patient.identifier'), value({ valueIdentifier: {} }))), 422, /matches 2/);
    fails(() => fp(patient(), op('replace', path('Patient.active'), value({ valueString: 'yes' }))), 422, /type boolean/);
  });
});

describe('applyFhirPathPatch: move', () => {
  const three = (): Patient => ({ ...patient(), identifier: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
  const ids = (p: Patient) => p.identifier!.map((i) => i.value);

  it('moves an item within a list (source removed first, then inserted at destination)', () => {
    expect(ids(fp(three(), op('move', path('Patient.identifier'), int('source', 0), int('destination', 2))))).toEqual(['b', 'c', 'a']);
    expect(ids(fp(three(), op('move', path('Patient.identifier'), int('source', 2), int('destination', 0))))).toEqual(['c', 'a', 'b']);
    expect(ids(fp(three(), op('move', path('Patient.identifier'), int('source', 1), int('destination', 1))))).toEqual(['a', 'b', 'c']);
  });

  it('moves the _given extension with its value', () => {
    const p = patient();
    p.name![0]!._given = [{ id: 'p' }, null as never];
    const out = fp(p, op('move', path('Patient.name.given'), int('source', 0), int('destination', 1)));
    expect(out.name![0]!.given).toEqual(['James', 'Peter']);
    expect(out.name![0]!._given).toEqual([null, { id: 'p' }]);
  });

  it('fails with 422 for an index out of range or a non-list', () => {
    fails(() => fp(three(), op('move', path('Patient.identifier'), int('source', 3), int('destination', 0))), 422, /source 3/);
    fails(() => fp(three(), op('move', path('Patient.identifier'), int('source', 0), int('destination', 3))), 422, /destination 3/);
    fails(() => fp(three(), op('move', path('Patient.gender'), int('source', 0), int('destination', 0))), 422);
  });
});

describe('applyFhirPathPatch: document', () => {
  it('applies operations in order, each seeing the previous result', () => {
    const out = fp(patient(),
      op('add', path('Patient'), name('birthDate'), value({ valueDate: '1930-01-01' })),
      op('replace', path('Patient.birthDate'), value({ valueDate: '1931-01-01' })),
      op('delete', path('Patient.active')));
    expect(out.birthDate).toBe('1931-01-01');
    expect(out).not.toHaveProperty('active');
    expect(applyFhirPathPatch(patient(), { resourceType: 'Parameters' })).toEqual(patient());
  });

  it('never mutates the input and does not alias the patch values', () => {
    const input = patient();
    const snapshot = structuredClone(input);
    const doc = params(op('add', path('Patient'), name('identifier'), value({ valueIdentifier: { value: '3' } })), op('delete', path('Patient.name')));
    const docSnapshot = structuredClone(doc);
    const out = applyFhirPathPatch(input, doc) as Patient;
    expect(input).toEqual(snapshot);
    out.identifier![2]!.value = 'changed';
    expect(doc).toEqual(docSnapshot);
  });

  it('rejects a malformed document with 400, naming the operation', () => {
    fails(() => applyFhirPathPatch(patient(), [op('delete', path('Patient.active'))]), 400, /Parameters/);
    fails(() => applyFhirPathPatch(patient(), params({ name: 'op', part: [] })), 400, /'operation'/);
    fails(() => fp(patient(), op('delete', path('Patient.active')), op('upsert', path('Patient'))), 400, /operation 1.*unknown operation type 'upsert'/);
    fails(() => fp(patient(), { name: 'operation', part: [path('Patient.active')] }), 400, /'type' is required/);
    fails(() => fp(patient(), op('delete')), 400, /'path' is required/);
    fails(() => fp(patient(), op('add', path('Patient'), value({ valueDate: '1930-01-01' }))), 400, /'name' is required/);
    fails(() => fp(patient(), op('replace', path('Patient.gender'))), 400, /'value' is required/);
    fails(() => fp(patient(), op('replace', path('Patient.gender'), { name: 'value' })), 400, /no value/);
    fails(() => fp(patient(), op('replace', path('Patient.gender'), value({ valueCode: 'x', valueString: 'y' }))), 400, /more than one value/);
    fails(() => fp(patient(), op('replace', path('Patient.active'), value({ valueBoolean: 'yes' }))), 400, /JSON shape/);
    fails(() => fp(patient(), op('insert', path('Patient.identifier'), value({ valueIdentifier: {} }))), 400, /'index' is required/);
    fails(() => fp(patient(), op('insert', path('Patient.identifier'), int('index', -1), value({ valueIdentifier: {} }))), 400, /non-negative/);
    fails(() => fp(patient(), op('move', path('Patient.identifier'), int('source', 0))), 400, /'destination' is required/);
    fails(() => fp(patient(), op('delete', path('Patient.active'), { name: 'colour', valueString: 'x' })), 400, /unknown part 'colour'/);
    fails(() => fp(patient(), op('delete', path('Patient.name.('))), 400, /invalid FHIRPath/);
    fails(() => fp(patient(), op('delete', path('Patient.name.exists()'))), 400, /computed values/);
  });

  it('reports the failing operation index and location in the OperationOutcome', () => {
    try {
      fp(patient(), op('delete', path('Patient.active')), op('replace', path('Patient.birthDate'), value({ valueDate: '2000-01-01' })));
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ status: 422, issues: [{ code: 'processing', expression: ['Parameters.parameter[1]'] }] });
      expect((e as Error).message).toMatch(/^FHIRPath Patch operation 1 \(replace 'Patient.birthDate'\)/);
    }
  });
});
