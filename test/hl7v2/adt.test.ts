/**
 * ADT over MLLP against the real server: the ACK, then the resources written, read back with FHIR
 * searches over HTTP. Expected values are worked out by hand from the fixtures.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { fixture, sendOne, setField, withControlId } from './mllp-client.js';

const GHH_MRN = 'http://goodhealth.example.org/fhir/sid/mrn';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

const search = searchResources;

describe.each(ENGINES)('HL7 v2 ADT on %s', (engine) => {
  const t = useTestServer(engine, { MLLP_PORT: '0' });
  const send = (message: string) => sendOne(t.server.mllpPort!, message);

  it('A01 (2.5.1): AA with MSA-2 = MSH-10; Patient, Encounter, attending Practitioner and next of kin written', async () => {
    const a01 = setField(withControlId(fixture('msfc_ADT01-28.hl7'), 'ADT-A01-1'), 'PV1', 44, '200708181123');
    const ack = await send(a01);
    expect(ack.msa).toEqual(['MSA', 'AA', 'ADT-A01-1']);
    expect(ack.msh[8]).toBe('ACK^A01^ACK');

    const [patient, ...others] = await search(t.base, `Patient?identifier=${encodeURIComponent(`${GHH_MRN}|PATID1234`)}`);
    expect(others).toEqual([]);
    expect(patient.identifier).toEqual([
      { type: { coding: [{ system: V2_0203, code: 'MR' }] }, system: GHH_MRN, value: 'PATID1234' },
      { type: { coding: [{ system: V2_0203, code: 'SS' }] }, system: 'http://hl7.org/fhir/sid/us-ssn', value: '123456789' },
      { type: { coding: [{ system: V2_0203, code: 'SS' }] }, system: 'http://hl7.org/fhir/sid/us-ssn', value: '444333333' },
    ]);
    expect(patient.name).toEqual([{ family: 'EVERYMAN', given: ['ADAM', 'A'], suffix: ['III'] }]);
    expect(patient.birthDate).toBe('1961-06-15');
    expect(patient.gender).toBe('male');
    expect(patient.address).toEqual([{ line: ['2222 HOME STREET'], city: 'GREENSBORO', state: 'NC', postalCode: '27401-1020' }]);
    expect(patient.telecom).toEqual([
      { system: 'phone', value: '(555) 555-2004', use: 'home' },
      { system: 'phone', value: '(555)555-2004', use: 'work' },
    ]);
    expect(patient.maritalStatus.coding[0]).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'S', display: 'Never Married' });

    const [encounter, ...moreEncounters] = await search(t.base, `Encounter?subject=Patient/${patient.id}`);
    expect(moreEncounters).toEqual([]);
    expect(encounter.status).toBe('in-progress');
    expect(encounter.class).toEqual({ system: ACT_CODE, code: 'IMP', display: 'inpatient encounter' });
    expect(encounter.location).toEqual([{ location: { display: '2000, 2012, 01' }, status: 'active' }]);
    // PV1-44 without offset: GOOD HEALTH HOSPITAL's zone (mappings/facilities.json), EDT in August.
    expect(encounter.period).toEqual({ start: '2007-08-18T11:23:00-04:00' });
    const attending = encounter.participant[0];
    expect(attending.type[0].coding[0].code).toBe('ATND');
    expect(attending.individual.display).toBe('AARON A ATTEND');
    const practitioner = (await call(t.base, 'GET', `/${attending.individual.reference}`)).body;
    expect(practitioner.identifier).toEqual([{ system: 'urn:carebridge:hl7v2:sender:GOOD%20HEALTH%20HOSPITAL', value: '004777' }]);
    expect(practitioner.name).toEqual([{ family: 'ATTEND', given: ['AARON', 'A'] }]);

    const [kin] = await search(t.base, `RelatedPerson?patient=Patient/${patient.id}`);
    expect(kin.name).toEqual([{ family: 'NUCLEAR', given: ['NELDA', 'W'] }]);
    expect(kin.relationship[0].coding[0]).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'SPS', display: 'spouse' });
  });

  it('A08 for the same PID-3 updates the one Patient (a new version, no second patient)', async () => {
    let a08 = withControlId(fixture('msfc_ADT01-28.hl7'), 'ADT-A08-1');
    a08 = setField(a08, 'MSH', 9, 'ADT^A08^ADT_A01');
    a08 = setField(a08, 'PID', 5, 'EVERYMAN^ADAM^B^III');
    a08 = setField(a08, 'PID', 11, '3333 NEW STREET^^GREENSBORO^NC^27402');
    expect((await send(a08)).msa).toEqual(['MSA', 'AA', 'ADT-A08-1']);
    const patients = await search(t.base, `Patient?identifier=${encodeURIComponent(`${GHH_MRN}|PATID1234`)}`);
    expect(patients.length).toBe(1);
    expect(patients[0].meta.versionId).toBe('2');
    expect(patients[0].name[0].given).toEqual(['ADAM', 'B']);
    expect(patients[0].address[0].line).toEqual(['3333 NEW STREET']);
    // A08 without a visit number leaves visits alone.
    expect((await search(t.base, `Encounter?subject=Patient/${patients[0].id}`)).length).toBe(1);
  });

  it('assigning authorities and senders named as what a JavaScript object inherits are looked up as any unknown one', async () => {
    let a01 = withControlId(fixture('msfc_ADT01-28.hl7'), 'ADT-PROTO-1');
    a01 = setField(a01, 'MSH', 4, 'constructor');
    a01 = setField(a01, 'PID', 3, 'PROTO1^^^toString^MR~PROTO2^^^constructor^MR');
    a01 = setField(a01, 'PV1', 19, '');
    expect((await send(a01)).msa).toEqual(['MSA', 'AA', 'ADT-PROTO-1']);
    const [patient, ...others] = await search(t.base, `Patient?identifier=${encodeURIComponent('urn:carebridge:hl7v2:authority:toString|PROTO1')}`);
    expect(others).toEqual([]);
    expect(patient.identifier.map((i: { system: string }) => i.system)).toEqual(['urn:carebridge:hl7v2:authority:toString', 'urn:carebridge:hl7v2:authority:constructor', 'http://hl7.org/fhir/sid/us-ssn']);
    expect(patient.meta.source).toBe('urn:carebridge:hl7v2:in:constructor:ADT1#ADT-PROTO-1');
  });

  it('A01 then A03 (2.3): the visit found by PV1-19 becomes finished; diagnoses and insurance written', async () => {
    const a01 = withControlId(fixture('msfc_ADT01-23.hl7'), 'ADT23-A01');
    expect((await send(a01)).msa[1]).toBe('AA');
    const visit = `Encounter?identifier=${encodeURIComponent('urn:carebridge:hl7v2:authority:AccMgr|40007716')}`;
    const [admitted] = await search(t.base, visit);
    expect(admitted.status).toBe('in-progress');
    expect(admitted.identifier[0]).toMatchObject({ system: 'urn:carebridge:hl7v2:authority:AccMgr', value: '40007716' });
    expect(admitted.period).toEqual({ start: '2005-01-10T04:55:02+07:00' });

    let a03 = setField(withControlId(a01, 'ADT23-A03'), 'MSH', 9, 'ADT^A03');
    a03 = setField(a03, 'PV1', 45, '20050112100000+0700');
    expect((await send(a03)).msa).toEqual(['MSA', 'AA', 'ADT23-A03']);
    const [discharged, ...none] = await search(t.base, visit);
    expect(none).toEqual([]);
    expect(discharged.id).toBe(admitted.id);
    expect(discharged.status).toBe('finished');
    expect(discharged.period).toEqual({ start: '2005-01-10T04:55:02+07:00', end: '2005-01-12T10:00:00+07:00' });

    const patientRef = discharged.subject.reference;
    const [condition, ...moreConditions] = await search(t.base, `Condition?subject=${patientRef}`);
    expect(moreConditions).toEqual([]); // the A03 repeated the DG1: same Condition
    expect(condition.code).toEqual({ coding: [{ system: 'http://hl7.org/fhir/sid/icd-9-cm', code: '71596', display: 'OSTEOARTHROS NOS-L/LEG' }], text: 'OSTEOARTHROS NOS-L/LEG' });
    const coverages = await search(t.base, `Coverage?beneficiary=${patientRef}`);
    expect(coverages.map((c) => c.payor[0].display).sort()).toEqual(['MEDICAL MUTUAL CALIF.', 'MEDICARE', 'SELF PAY']);
  });

  it('A04 (2.3) registers a planned emergency visit; A11 cancels an admit', async () => {
    expect((await send(withControlId(fixture('msfc_ADT04-251.hl7'), 'A04-1'))).msa[1]).toBe('AA');
    const [jane] = await search(t.base, `Patient?identifier=${encodeURIComponent('urn:carebridge:hl7v2:sender:RDX|MRN12345')}`);
    expect(jane).toMatchObject({ name: [{ family: 'Doe', given: ['Jane'] }], birthDate: '1978-01-01', gender: 'female' });
    const [visit] = await search(t.base, `Encounter?subject=Patient/${jane.id}`);
    expect(visit).toMatchObject({ status: 'planned', class: { system: ACT_CODE, code: 'EMER' }, period: { start: '2019-05-04T18:12:05+07:00' } });

    let a01 = setField(withControlId(fixture('msfc_ADT01-23.hl7'), 'A11-admit'), 'PV1', 19, '555^^^AccMgr^VN');
    expect((await send(a01)).msa[1]).toBe('AA');
    a01 = setField(setField(a01, 'MSH', 10, 'A11-cancel'), 'MSH', 9, 'ADT^A11');
    expect((await send(a01)).msa[1]).toBe('AA');
    const [cancelled] = await search(t.base, `Encounter?identifier=${encodeURIComponent('urn:carebridge:hl7v2:authority:AccMgr|555')}`);
    expect(cancelled.status).toBe('cancelled');
  });

  it('A28 adds and A31 updates a person without writing a visit', async () => {
    expect((await send(withControlId(fixture('msfc_ADT-A28-01.hl7'), 'A28-1'))).msa[1]).toBe('AA');
    const a31 = setField(withControlId(fixture('msfc_ADT-A31-01.hl7'), 'A31-1'), 'PID', 5, 'EVERYWOMAN^EVE');
    expect((await send(a31)).msa[1]).toBe('AA');
    const query = `Patient?identifier=${encodeURIComponent('http://ghh.example.org/fhir/sid/patient-id|PATID1234')}`;
    const [person, ...others] = await search(t.base, query);
    expect(others).toEqual([]);
    expect(person.meta.versionId).toBe('2');
    expect(person.name).toEqual([{ family: 'EVERYWOMAN', given: ['EVE'] }, { family: 'elbert', given: ['Son'] }]); // PID-9 alias
    expect(person.birthDate).toBe('1988-08-18');
    expect(person._birthDate.extension[0]).toEqual({ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1988-08-18T11:26:00+02:15' });
    expect(await search(t.base, `Encounter?subject=Patient/${person.id}`)).toEqual([]);
    expect((await search(t.base, `AllergyIntolerance?patient=Patient/${person.id}`)).length).toBe(1);
  });

  it('A40 merges: the prior patient is replaced-by the survivor and its visits move to the survivor', async () => {
    let prior = withControlId(fixture('msfc_ADT01-28.hl7'), 'A40-prior');
    prior = setField(prior, 'PID', 3, '56789^^^BCBS^MR');
    prior = setField(prior, 'PV1', 19, 'V-56789^^^BCBS^VN');
    expect((await send(prior)).msa[1]).toBe('AA');
    const [old] = await search(t.base, `Patient?identifier=${encodeURIComponent('urn:carebridge:hl7v2:authority:BCBS|56789')}`);
    expect((await search(t.base, `Encounter?subject=Patient/${old.id}`)).length).toBe(1);

    const ack = await send(withControlId(fixture('msfc_ADT-A40-01.hl7'), 'A40-merge'));
    expect(ack.msa).toEqual(['MSA', 'AA', 'A40-merge']);
    const [survivor] = await search(t.base, `Patient?identifier=${encodeURIComponent('urn:carebridge:hl7v2:authority:BCBS|12345')}`);
    expect(survivor.name).toEqual([{ family: 'Test', given: ['Test', 'A'] }]);
    expect(survivor.link).toEqual([{ other: { reference: `Patient/${old.id}` }, type: 'replaces' }]);
    const merged = (await call(t.base, 'GET', `/Patient/${old.id}`)).body;
    expect(merged.active).toBe(false);
    expect(merged.link).toEqual([{ other: { reference: `Patient/${survivor.id}` }, type: 'replaced-by' }]);
    expect(await search(t.base, `Encounter?subject=Patient/${old.id}`)).toEqual([]);
    expect((await search(t.base, `Encounter?subject=Patient/${survivor.id}`)).length).toBe(1);
    expect((await search(t.base, `RelatedPerson?patient=Patient/${survivor.id}`)).length).toBe(1);

    // The survivor's next update keeps the merge link.
    const a08 = setField(withControlId(fixture('msfc_ADT-A40-01.hl7'), 'A40-after'), 'MSH', 9, 'ADT^A08');
    expect((await send(a08.split('\r').filter((s) => !s.startsWith('MRG')).join('\r'))).msa[1]).toBe('AA');
    expect((await call(t.base, 'GET', `/Patient/${survivor.id}`)).body.link).toEqual(survivor.link);
  });
});
