/**
 * End to end with the HL7 v2 partners over real MLLP sockets: a prescription made from a template
 * and activated is sent to the pharmacy as RDE^O11 (HL7 v2 outbound); the pharmacy's RDS^O13,
 * quoting the ORC-2 placer number it received, completes it. A lab order sent as OML^O21 gets its
 * Task; the lab's ORU^R01 on that order completes the Task. Orders created over REST without any
 * identifier go out as `<id>^CAREBRIDGE`, and the answers on that number find them (no duplicate).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { until } from '../support/wait.js';
import { sendOne } from '../hl7v2/mllp-client.js';
import { destination, field, MllpReceiver, OUTBOUND_ENV } from '../hl7v2/outbound-support.js';
import { AMOXICILLIN, create, people, prescription, prescriptionEnv, V2_AUTHORITY } from './medication-support.js';

const LOINC = 'http://loinc.org';

/** ORU^R01 from the lab for the order in `oml`: ORC-2 as given, one OBR (OBR-2 = ORC-2) + OBX per report. */
function oruFor(oml: string, controlId: string, placer: string, reports: Array<{ filler: string; status: 'P' | 'F'; value: string }>): string {
  const segments = [
    `MSH|^~\\&|LIS|CITYLAB|CAREBRIDGE|CAREBRIDGE|20260105120000+0000||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    oml.split('\r').find((s) => s.startsWith('PID|'))!,
    `ORC|RE|${placer}`,
  ];
  reports.forEach((r, i) => {
    const obr = ['OBR', String(i + 1), placer, `${r.filler}^CITYLAB`, '2093-3^Cholesterol^LN'];
    while (obr.length < 26) obr.push('');
    obr[25] = r.status;
    segments.push(obr.join('|'), `OBX|1|NM|2093-3^Cholesterol^LN||${r.value}|mg/dL^^UCUM|<200|N|||${r.status}`);
  });
  return segments.join('\r');
}

describe.each(ENGINES)('prescriptions and lab orders with HL7 v2 partners on %s', (engine) => {
  const t = useTestServer(engine, prescriptionEnv({ MLLP_PORT: '0', ...OUTBOUND_ENV }));
  const partner = new MllpReceiver();
  beforeAll(() => partner.start());
  afterAll(() => partner.stop());
  const inbound = (message: string) => sendOne(t.server.mllpPort!, message);

  it('template → draft → active → RDE^O11 to the pharmacy → RDS^O13 back → completed', async () => {
    const who = await people(t.base);
    const pharmacy = await destination(t.base, partner.port, ['RDE'], { facility: 'CITYPHARM', name: 'City Pharmacy' });
    const template = await create(t.base, { resourceType: 'ActivityDefinition', status: 'active', kind: 'MedicationRequest', productCodeableConcept: AMOXICILLIN, dosage: [{ text: '1 capsule 3 times a day' }] });
    const draft = (await call(t.base, 'POST', `/ActivityDefinition/${template.id}/$apply?subject=Patient/${who.patient.id}&practitioner=Practitioner/${who.practitioner.id}`)).body;
    const activated = await call(t.base, 'PUT', `/MedicationRequest/${draft.id}`, { ...draft, status: 'active', dispenseRequest: { performer: { reference: `Organization/${pharmacy.organizationId}` } } });
    expect(activated.status, activated.text).toBe(200);

    const rde = await until(async () => partner.messages.find((m) => field(m, 'MSH', 9) === 'RDE^O11^RDE_O11' && field(m, 'ORC', 2, 1) === draft.id));
    expect(field(rde, 'ORC', 1)).toBe('NW');
    const rds = [
      'MSH|^~\\&|PHARMACY|CITYPHARM|CAREBRIDGE|CAREBRIDGE|20260105120000+0000||RDS^O13^RDS_O13|DISP-1|P|2.5.1',
      rde.split('\r').find((s) => s.startsWith('PID|'))!,
      `ORC|RE|${field(rde, 'ORC', 2)}|DISP-${draft.id.slice(0, 8)}^CITYPHARM`,
      'RXD|1|308182^Amoxicillin 250 MG Oral Capsule^RXNORM|20260105110000+0000|21|CAP^Capsule',
    ].join('\r');
    expect((await inbound(rds)).msa[1]).toBe('AA');
    const done = await until(async () => {
      const r = (await call(t.base, 'GET', `/MedicationRequest/${draft.id}`)).body;
      return r.status === 'completed' && r;
    });
    expect(done.identifier[0]).toMatchObject({ system: V2_AUTHORITY, value: draft.id });
  });

  it('lab order → OML^O21 to the lab, Task requested → ORU^R01 final on the placer number → Task completed', async () => {
    const who = await people(t.base);
    const lab = await destination(t.base, partner.port, ['OML'], { facility: 'CITYLAB', name: 'City Lab' });
    const placer = `LAB-LOOP-${Date.now()}`;
    const sr = await create(t.base, {
      resourceType: 'ServiceRequest',
      identifier: [{ system: V2_AUTHORITY, value: placer, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] } }],
      status: 'active',
      intent: 'order',
      code: { coding: [{ system: 'http://loinc.org', code: '2093-3', display: 'Cholesterol' }] },
      subject: { reference: `Patient/${who.patient.id}` },
      performer: [{ reference: `Organization/${lab.organizationId}` }],
    });
    const oml = await until(async () => partner.messages.find((m) => field(m, 'MSH', 9).startsWith('OML^O21') && field(m, 'ORC', 2, 1) === placer));
    const obr = ['OBR', '1', field(oml, 'ORC', 2), `F-${placer}^CITYLAB`, '2093-3^Cholesterol^LN'];
    while (obr.length < 26) obr.push('');
    obr[25] = 'F';
    const oru = [
      'MSH|^~\\&|LIS|CITYLAB|CAREBRIDGE|CAREBRIDGE|20260105120000+0000||ORU^R01^ORU_R01|RES-1|P|2.5.1',
      oml.split('\r').find((s) => s.startsWith('PID|'))!,
      `ORC|RE|${field(oml, 'ORC', 2)}`,
      obr.join('|'),
      'OBX|1|NM|2093-3^Cholesterol^LN||185|mg/dL^^UCUM|<200|N|||F',
    ].join('\r');
    expect((await inbound(oru)).msa[1]).toBe('AA');
    const task = await until(async () => (await call(t.base, 'GET', `/Task?focus=ServiceRequest/${sr.id}`)).body.entry?.[0]?.resource?.status === 'completed');
    expect(task).toBe(true);
  });

  // An order made over REST without any identifier goes out with ORC-2 = <id>^CAREBRIDGE; the
  // answers quote that number, and must find THAT order (src/hl7v2/own-orders.ts).
  it('REST ServiceRequest without identifier → OML^O21 <id>^CAREBRIDGE → ORU^R01 on that number → reports based on it, no duplicate order', async () => {
    const who = await people(t.base);
    const lab = await destination(t.base, partner.port, ['OML'], { facility: 'CITYLAB', name: 'City Lab' });
    const sr = await create(t.base, {
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      code: { coding: [{ system: LOINC, code: '2093-3', display: 'Cholesterol' }] },
      subject: { reference: `Patient/${who.patient.id}` },
      performer: [{ reference: `Organization/${lab.organizationId}` }],
    });
    expect(sr.identifier).toBeUndefined();
    const oml = await until(() => partner.messages.find((m) => field(m, 'MSH', 9).startsWith('OML^O21') && field(m, 'ORC', 2, 1) === sr.id), 'OML^O21');
    const placer = field(oml, 'ORC', 2);
    expect(placer).toBe(`${sr.id}^CAREBRIDGE`);
    const reportsOf = (id: string) => searchResources(t.base, `DiagnosticReport?based-on=ServiceRequest/${id}`);
    const taskOf = (status: string) => until(async () => (await searchResources(t.base, `Task?focus=ServiceRequest/${sr.id}`)).find((x) => x.status === status), `Task ${status}`);

    // One OBR: every identity is resolved up front (the batched path).
    expect((await inbound(oruFor(oml, `RES-P-${sr.id.slice(0, 8)}`, placer, [{ filler: `F1-${sr.id}`, status: 'P', value: '180' }]))).msa[1]).toBe('AA');
    expect(await reportsOf(sr.id)).toMatchObject([{ status: 'preliminary' }]);
    await taskOf('in-progress');
    // Two OBRs of the same order: their conditions overlap, so the entries go one by one (the sequential path).
    const final = oruFor(oml, `RES-F-${sr.id.slice(0, 8)}`, placer, [
      { filler: `F1-${sr.id}`, status: 'F', value: '185' },
      { filler: `F2-${sr.id}`, status: 'F', value: '190' },
    ]);
    expect((await inbound(final)).msa[1]).toBe('AA');
    const reports = await reportsOf(sr.id);
    expect(reports.map((r) => r.status)).toEqual(['final', 'final']);
    expect((await taskOf('completed')).focus.reference).toBe(`ServiceRequest/${sr.id}`);
    // No placeholder order beside the real one, and the real one was not rewritten by the answers.
    expect(await searchResources(t.base, `ServiceRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${sr.id}`)}`)).toEqual([]);
    expect((await searchResources(t.base, `ServiceRequest?subject=Patient/${who.patient.id}`)).map((r) => r.id)).toEqual([sr.id]);
    expect((await call(t.base, 'GET', `/ServiceRequest/${sr.id}`)).body.meta.versionId).toBe('1');

    // The same number in ANOTHER namespace is not ours: a placeholder order, not this one.
    const foreign = `${sr.id}^OTHERLAB`;
    expect((await inbound(oruFor(oml, `RES-X-${sr.id.slice(0, 8)}`, foreign, [{ filler: `F3-${sr.id}`, status: 'F', value: '200' }]))).msa[1]).toBe('AA');
    const [stub] = await searchResources(t.base, `ServiceRequest?identifier=${encodeURIComponent(`urn:carebridge:hl7v2:authority:OTHERLAB|${sr.id}`)}`);
    expect(stub).toMatchObject({ status: 'unknown' });
    expect(stub.id).not.toBe(sr.id);
    expect(await reportsOf(stub.id)).toHaveLength(1);
    expect(await reportsOf(sr.id)).toHaveLength(2);
  });

  it('REST MedicationRequest without identifier → RDE^O11 <id>^CAREBRIDGE → RDS^O13 on that number → dispense of it, completed, no duplicate', async () => {
    const who = await people(t.base);
    const pharmacy = await destination(t.base, partner.port, ['RDE'], { facility: 'CITYPHARM', name: 'City Pharmacy' });
    const mr = await create(t.base, prescription(who, { dispenseRequest: { performer: { reference: `Organization/${pharmacy.organizationId}` } } }));
    expect(mr.identifier).toBeUndefined();
    const rde = await until(() => partner.messages.find((m) => field(m, 'MSH', 9) === 'RDE^O11^RDE_O11' && field(m, 'ORC', 2, 1) === mr.id), 'RDE^O11');
    expect(field(rde, 'ORC', 2)).toBe(`${mr.id}^CAREBRIDGE`);
    const rds = [
      `MSH|^~\\&|PHARMACY|CITYPHARM|CAREBRIDGE|CAREBRIDGE|20260105120000+0000||RDS^O13^RDS_O13|DISP-${mr.id.slice(0, 8)}|P|2.5.1`,
      rde.split('\r').find((s) => s.startsWith('PID|'))!,
      `ORC|RE|${field(rde, 'ORC', 2)}|DISP-${mr.id}^CITYPHARM`,
      'RXD|1|308182^Amoxicillin 250 MG Oral Capsule^RXNORM|20260105110000+0000|21|CAP^Capsule',
    ].join('\r');
    expect((await inbound(rds)).msa[1]).toBe('AA');
    const [dispense] = await searchResources(t.base, `MedicationDispense?prescription=MedicationRequest/${mr.id}`);
    expect(dispense).toMatchObject({ authorizingPrescription: [{ reference: `MedicationRequest/${mr.id}` }] });
    await until(async () => (await call(t.base, 'GET', `/MedicationRequest/${mr.id}`)).body.status === 'completed', 'the request completed');
    expect(await searchResources(t.base, `MedicationRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${mr.id}`)}`)).toEqual([]);
    expect((await searchResources(t.base, `MedicationRequest?subject=Patient/${who.patient.id}`)).map((r) => r.id)).toEqual([mr.id]);
  });
});
