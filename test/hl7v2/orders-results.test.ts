/** ORM^O01, ORU^R01 and OML^O21 over MLLP: orders, reports based on them, observation value types. */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { fixture, sendOne, setField, withControlId } from './mllp-client.js';

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SENDER = 'urn:carebridge:hl7v2:sender:SomeSystem';

const search = searchResources;

const byIdentifier = (type: string, system: string, value: string) => `${type}?identifier=${encodeURIComponent(`${system}|${value}`)}`;

/** LAB-ORU-1 with OBX segments of more value types added to its second order. */
const EXTRA_OBX = [
  'OBX|6|ST|8251-1^Service comment^LN||hemolysed \\T\\ lipemic||||||F',
  'OBX|7|CWE|5778-6^Color of Urine^LN||260385009^Negative^SCT||||||F',
  'OBX|8|DT|8665-2^Last menstrual period^LN||20141001||||||F',
  'OBX|9|SN|2345-7^Glucose^LN||<^3.5|mmol/L^^UCUM|||||F',
  'OBX|10|TX|48767-8^Annotation^LN||line one~line two||||||F',
  'OBX|11|SN|5196-1^Titer^LN||^1^:^128||||||F',
];

describe.each(ENGINES)('HL7 v2 orders and results on %s', (engine) => {
  const t = useTestServer(engine, { MLLP_PORT: '0' });
  const send = (message: string) => sendOne(t.server.mllpPort!, message);
  let order: any;

  it('ORM^O01 (2.3) writes the order as a ServiceRequest for the patient and visit', async () => {
    expect((await send(withControlId(fixture('msfc_LAB-ORM-1.hl7'), 'ORM-1'))).msa).toEqual(['MSA', 'AA', 'ORM-1']);
    [order] = await search(t.base, byIdentifier('ServiceRequest', SENDER, '88502218'));
    expect(order).toMatchObject({ status: 'active', intent: 'order' });
    expect(order.identifier.map((i: any) => [i.type.coding[0].code, i.system, i.value])).toEqual([
      ['PLAC', SENDER, '88502218'],
      ['FILL', SENDER, '82503246'],
    ]);
    expect(order.code.coding[0]).toEqual({ system: LOINC, code: '24317-0', display: 'Hemogram and platelet count, automated' });
    // ORC-12 is empty (MOUSE is ORC-10, entered by): OBR-16, without an id, as a logical reference.
    expect(order.requester).toEqual({ type: 'Practitioner', display: 'DR URO' });
    const patient = (await call(t.base, 'GET', `/${order.subject.reference}`)).body;
    expect(patient.name[0]).toEqual({ family: 'DUCK', given: ['DONALD', 'D'] });
    const visit = (await call(t.base, 'GET', `/${order.encounter.reference}`)).body;
    expect(visit.identifier[0].value).toBe('40007716');
  });

  it('ORU^R01 (2.5): one DiagnosticReport per OBR, based on the order found by its placer/filler number, with its Observations', async () => {
    // The fixture has its report time in OBR-23; put one in OBR-22 (issued) of the first OBR.
    const oru = setField(`${withControlId(fixture('msfc_LAB-ORU-1.hl7'), 'ORU-1')}\r${EXTRA_OBX.join('\r')}`, 'OBR', 22, '201410060929+0700');
    expect((await send(oru)).msa).toEqual(['MSA', 'AA', 'ORU-1']);

    const [report] = await search(t.base, byIdentifier('DiagnosticReport', SENDER, '82503246'));
    expect(report.status).toBe('final');
    expect(report.basedOn).toEqual([{ reference: `ServiceRequest/${order.id}` }]);
    expect(report.subject).toEqual(order.subject);
    expect(report.issued).toBe('2014-10-06T09:29:00+07:00');
    expect(report.result.length).toBe(5);
    // The order is referenced, not rewritten by the result.
    expect((await call(t.base, 'GET', `/ServiceRequest/${order.id}`)).body.meta.versionId).toBe('1');

    const [hematocrit] = await search(t.base, `Observation?code=${encodeURIComponent(`${LOINC}|20570-8`)}`);
    expect(hematocrit.valueQuantity).toEqual({ value: 40.1, unit: '%', system: UCUM, code: '%' });
    expect(hematocrit.status).toBe('preliminary');
    expect(hematocrit.interpretation[0].coding[0]).toMatchObject({ code: 'N', display: 'Normal' });
    expect(hematocrit.effectiveDateTime).toBe('2014-10-06T08:30:00+07:00');
    expect(report.result).toContainEqual({ reference: `Observation/${hematocrit.id}` });
    const [erythrocytes] = await search(t.base, `Observation?code=${encodeURIComponent(`${LOINC}|11273-0`)}`);
    expect(erythrocytes.valueQuantity).toEqual({ value: 4.06, unit: 'tera.l-1' }); // not UCUM: no system, no code
    const [leukocytes] = await search(t.base, `Observation?code=${encodeURIComponent(`${LOINC}|11156-7`)}`);
    expect(leukocytes.status).toBe('registered');
    expect(Object.keys(leukocytes).filter((k) => k.startsWith('value'))).toEqual([]);

    const [second] = await search(t.base, byIdentifier('DiagnosticReport', SENDER, '890775544'));
    expect(second.result.length).toBe(11);
    const [newOrder] = await search(t.base, byIdentifier('ServiceRequest', SENDER, '855238581'));
    expect(second.basedOn).toEqual([{ reference: `ServiceRequest/${newOrder.id}` }]);
    expect(await search(t.base, `Observation?subject=${order.subject.reference}&_count=100`)).toHaveLength(16);
  });

  it('maps OBX value types: ST, CWE, DT, SN (comparator and ratio), TX', async () => {
    const value = async (code: string) => (await search(t.base, `Observation?code=${encodeURIComponent(`${LOINC}|${code}`)}`))[0];
    expect((await value('8251-1')).valueString).toBe('hemolysed & lipemic');
    expect((await value('5778-6')).valueCodeableConcept).toEqual({ coding: [{ system: 'http://snomed.info/sct', code: '260385009', display: 'Negative' }] });
    expect((await value('8665-2')).valueDateTime).toBe('2014-10-01');
    expect((await value('2345-7')).valueQuantity).toEqual({ comparator: '<', value: 3.5, unit: 'mmol/L', system: UCUM, code: 'mmol/L' });
    expect((await value('48767-8')).valueString).toBe('line one\nline two');
    expect((await value('5196-1')).valueRatio).toEqual({ numerator: { value: 1 }, denominator: { value: 128 } });
  });

  it('a corrected report sent again (new MSH-10) updates the same report and observations', async () => {
    const oru = `${withControlId(fixture('msfc_LAB-ORU-1.hl7'), 'ORU-2')}\r${EXTRA_OBX.join('\r')}`.replace('|4.06|', '|4.10|');
    expect((await send(oru)).msa).toEqual(['MSA', 'AA', 'ORU-2']);
    expect(await search(t.base, `Observation?subject=${order.subject.reference}&_count=100`)).toHaveLength(16);
    const [report] = await search(t.base, byIdentifier('DiagnosticReport', SENDER, '82503246'));
    expect(report.meta.versionId).toBe('2');
    const [erythrocytes] = await search(t.base, `Observation?code=${encodeURIComponent(`${LOINC}|11273-0`)}`);
    expect(erythrocytes.valueQuantity.value).toBe(4.1);
    expect(erythrocytes.meta.versionId).toBe('2');
  });

  it('coding system names that a JavaScript object inherits are unknown names, as any other', async () => {
    let oru = [
      'MSH|^~\\&|SomeSystem||TransformationAgent||20141006064500+0700||ORU^R01|ORU-PROTO|T|2.5',
      'PID|1||PROTO-1^^^1^MR||DUCK^DAISY',
      'OBR|1|PL-PROTO|FI-PROTO|24317-0^Hemogram^LN|||20141006092900+0700||||||||||||||||F',
      'OBX|1|NM|99999-1^Local test^toString||4.5|mg^milligram^constructor||N|||F',
    ].join('\r');
    oru = withControlId(oru, 'ORU-PROTO');
    expect((await send(oru)).msa).toEqual(['MSA', 'AA', 'ORU-PROTO']);
    const [obs] = await search(t.base, 'Observation?code=99999-1');
    // Unknown names: the coding without a system; the unit recognised as UCUM by its syntax.
    expect(obs.code.coding).toEqual([{ code: '99999-1', display: 'Local test' }]);
    expect(obs.valueQuantity).toEqual({ value: 4.5, unit: 'milligram', system: UCUM, code: 'mg' });
  });

  it('OML^O21 (2.5.1): the order with its requester and supporting observation', async () => {
    expect((await send(withControlId(fixture('hapi_example_oml_o21_msg1.hl7'), 'OML-1'))).msa[1]).toBe('AA');
    const [lab] = await search(t.base, byIdentifier('ServiceRequest', 'urn:carebridge:hl7v2:authority:gastric', '12345678'));
    expect(lab.status).toBe('active');
    expect(lab.code.coding[0]).toEqual({ system: 'http://www.ama-assn.org/go/cpt', code: '82951', display: 'Glucose Tolerance Test' });
    expect(lab.requester.display).toBe('DR PHYSICIAN'); // OBR-16 (ORC-12 is empty)
    const requester = (await call(t.base, 'GET', `/${lab.requester.reference}`)).body;
    expect(requester.identifier).toEqual([{ system: 'urn:carebridge:hl7v2:sender:Entero-gastric', value: '222222' }]);
    expect(requester.name).toEqual([{ family: 'PHYSICIAN', prefix: ['DR'] }]);
    const glucose = (await call(t.base, 'GET', `/${lab.supportingInfo[0].reference}`)).body;
    expect(glucose.valueQuantity).toEqual({ value: 75, unit: 'g', system: UCUM, code: 'g' });
  });
});
