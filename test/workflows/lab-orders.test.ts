/**
 * Lab orders and referrals: a ServiceRequest to a lab Organization (or a referral to a
 * Practitioner) gets exactly one fulfilment Task; ORU^R01 results over a real MLLP socket move it
 * (preliminary → in-progress, final → completed with the DiagnosticReport as output), the final
 * result being a new version of the same DiagnosticReport and Observations. A result for an order
 * not known yet is stored, linked, and completes the order's Task once the order arrives.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { expectOutcome } from '../support/outcome.js';
import { until } from '../support/wait.js';
import { sendOne } from '../hl7v2/mllp-client.js';
import { create, people, prescriptionEnv, V2_AUTHORITY, type People } from './medication-support.js';

const LOINC = 'http://loinc.org';
const REFERRAL = { coding: [{ system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' }] };

function oru(o: { controlId: string; mrn: string; placer: string; status: 'P' | 'F'; cholesterol: string }): string {
  const obr = ['OBR', '1', `${o.placer}^CAREBRIDGE`, `F-${o.placer}^CITYLAB`, `24331-1^Lipid panel^LN`, '', '', '20260105080000+0000'];
  while (obr.length < 26) obr.push('');
  obr[22] = '20260105100000+0000';
  obr[24] = 'CH';
  obr[25] = o.status;
  return [
    `MSH|^~\\&|LIS|CITYLAB|CAREBRIDGE|HOSPITAL|20260105120000+0000||ORU^R01^ORU_R01|${o.controlId}|P|2.5.1`,
    `PID|1||${o.mrn}^^^CAREBRIDGE^MR||LOVELACE^ADA||19801210|F`,
    `ORC|RE|${o.placer}^CAREBRIDGE|F-${o.placer}^CITYLAB`,
    obr.join('|'),
    `OBX|1|NM|2093-3^Cholesterol^LN||${o.cholesterol}|mg/dL^^UCUM|<200|N|||${o.status}|||20260105090000+0000`,
    `OBX|2|NM|2085-9^HDL Cholesterol^LN||55|mg/dL^^UCUM|>40|N|||${o.status}|||20260105090000+0000`,
  ].join('\r');
}

describe.each(ENGINES)('lab orders and referrals on %s', (engine) => {
  const t = useTestServer(engine, prescriptionEnv({ MLLP_PORT: '0' }));
  const send = (message: string) => sendOne(t.server.mllpPort!, message);
  let who: People;
  let lab: any;
  const tasksOf = (sr: any) => searchResources(t.base, `Task?focus=ServiceRequest/${sr.id}`);
  const taskOf = (sr: any, status?: string) => until(async () => (await tasksOf(sr)).find((x) => !status || x.status === status));
  const order = (placer: string, extra: Record<string, unknown> = {}) => ({
    resourceType: 'ServiceRequest',
    identifier: [{ system: V2_AUTHORITY, value: placer, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] } }],
    status: 'active',
    intent: 'order',
    code: { coding: [{ system: LOINC, code: '24331-1', display: 'Lipid panel' }] },
    subject: { reference: `Patient/${who.patient.id}` },
    requester: { reference: `Practitioner/${who.practitioner.id}` },
    performer: [{ reference: `Organization/${lab.id}` }],
    ...extra,
  });

  it('a lab order gets exactly one Task (requested, owned by the lab), however often the order changes', async () => {
    who = await people(t.base);
    lab = await create(t.base, { resourceType: 'Organization', name: 'City Lab' });
    const sr = await create(t.base, order(`LAB-${Date.now()}`));
    const task = await taskOf(sr);
    expect(task).toMatchObject({
      status: 'requested',
      intent: 'order',
      code: { coding: [{ code: 'fulfill' }] },
      focus: { reference: `ServiceRequest/${sr.id}` },
      for: { reference: `Patient/${who.patient.id}` },
      owner: { reference: `Organization/${lab.id}` },
      requester: { reference: `Practitioner/${who.practitioner.id}` },
    });
    // Several versions at once: their change jobs run concurrently, still one Task.
    const puts = await Promise.all(['fasting', 'fasting 12 h', 'morning', 'no coffee'].map((text) => call(t.base, 'PUT', `/ServiceRequest/${sr.id}`, { ...sr, note: [{ text }] })));
    expect(puts.map((p) => p.status)).toEqual([200, 200, 200, 200]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await tasksOf(sr)).toHaveLength(1);
  });

  it('ORU^R01 preliminary then final: one DiagnosticReport in two versions, same Observations, Task in-progress then completed', async () => {
    const placer = `LAB-${Date.now()}`;
    const sr = await create(t.base, order(placer));
    await taskOf(sr, 'requested');
    const mrn = who.patient.identifier[0].value;

    expect((await send(oru({ controlId: `${placer}-P`, mrn, placer, status: 'P', cholesterol: '180' }))).msa[1]).toBe('AA');
    const [prelim] = await searchResources(t.base, `DiagnosticReport?based-on=ServiceRequest/${sr.id}`);
    expect(prelim).toMatchObject({ status: 'preliminary', subject: { reference: `Patient/${who.patient.id}` } });
    expect(prelim.result).toHaveLength(2);
    await taskOf(sr, 'in-progress');

    expect((await send(oru({ controlId: `${placer}-F`, mrn, placer, status: 'F', cholesterol: '190' }))).msa[1]).toBe('AA');
    const reports = await searchResources(t.base, `DiagnosticReport?based-on=ServiceRequest/${sr.id}`);
    expect(reports).toHaveLength(1);
    const final = reports[0];
    expect(final).toMatchObject({ id: prelim.id, status: 'final', meta: { versionId: '2' } });
    expect(final.result).toEqual(prelim.result);
    const history = (await call(t.base, 'GET', `/DiagnosticReport/${final.id}/_history`)).body;
    expect(history.entry.map((e: any) => e.resource.status)).toEqual(['final', 'preliminary']);
    const cholesterol = (await call(t.base, 'GET', `/${final.result[0].reference}`)).body;
    expect(cholesterol).toMatchObject({ status: 'final', valueQuantity: { value: 190 }, meta: { versionId: '2' }, basedOn: [{ reference: `ServiceRequest/${sr.id}` }] });
    expect((await call(t.base, 'GET', `/${final.result[0].reference}/_history/1`)).body).toMatchObject({ status: 'preliminary', valueQuantity: { value: 180 } });

    const done = await taskOf(sr, 'completed');
    expect(done.output).toEqual([{ type: { text: 'Result' }, valueReference: { reference: `DiagnosticReport/${final.id}` } }]);
    expect(await tasksOf(sr)).toHaveLength(1);
  });

  it('a result for an unknown order is accepted (AA), stored and linked; the order arriving later finds it and its Task completes', async () => {
    const placer = `LAB-EARLY-${Date.now()}`;
    const mrn = who.patient.identifier[0].value;
    expect((await send(oru({ controlId: `${placer}-F`, mrn, placer, status: 'F', cholesterol: '210' }))).msa[1]).toBe('AA');
    const byPlacer = `ServiceRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${placer}`)}`;
    const [stub] = await searchResources(t.base, byPlacer);
    expect(stub).toMatchObject({ status: 'unknown', intent: 'order', subject: { reference: `Patient/${who.patient.id}` } });
    const [report] = await searchResources(t.base, `DiagnosticReport?based-on=ServiceRequest/${stub.id}`);
    expect(report.status).toBe('final');
    expect(await tasksOf(stub)).toHaveLength(0); // no performer yet: nobody to give a Task to

    // The order arrives (a conditional update on its placer number): the same ServiceRequest.
    const placed = await call(t.base, 'PUT', `/${byPlacer}`, order(placer));
    expect(placed.status, placed.text).toBe(200);
    expect(placed.body.id).toBe(stub.id);
    const task = await taskOf(stub, 'completed');
    expect(task.output[0].valueReference.reference).toBe(`DiagnosticReport/${report.id}`);
  });

  it('a revoked order cancels its Task; requests that need no Task get none', async () => {
    const sr = await create(t.base, order(`LAB-REVOKE-${Date.now()}`));
    await taskOf(sr, 'requested');
    await call(t.base, 'PUT', `/ServiceRequest/${sr.id}`, { ...sr, status: 'revoked' });
    const cancelled = await taskOf(sr, 'cancelled');
    expect(cancelled.statusReason.text).toContain('revoked');

    const noPerformer = await create(t.base, order(`LAB-NP-${Date.now()}`, { performer: undefined }));
    const plan = await create(t.base, order(`LAB-PLAN-${Date.now()}`, { intent: 'plan' }));
    const draft = await create(t.base, order(`LAB-DRAFT-${Date.now()}`, { status: 'draft' }));
    const witness = await create(t.base, order(`LAB-W-${Date.now()}`));
    await taskOf(witness);
    await new Promise((r) => setTimeout(r, 1000));
    for (const sr2 of [noPerformer, plan, draft]) expect(await tasksOf(sr2)).toHaveLength(0);
  });

  it('a Task made over REST for an order that gets none of its own is moved by results too', async () => {
    const placer = `LAB-${Date.now()}-manual`;
    // No performer: the consumer makes no Task for it (requests that need no Task get none).
    const sr = await create(t.base, order(placer, { performer: undefined }));
    const manual = await create(t.base, {
      resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
      focus: { reference: `ServiceRequest/${sr.id}` },
    });
    const mrn = who.patient.identifier[0].value;
    expect((await send(oru({ controlId: `${placer}-F`, mrn, placer, status: 'F', cholesterol: '190' }))).msa[1]).toBe('AA');
    const done = await taskOf(sr, 'completed');
    expect(done.id).toBe(manual.id);
    expect(done.output[0].valueReference.reference).toMatch(/^DiagnosticReport\//);
    expect(await tasksOf(sr)).toHaveLength(1);
  });

  it('a referral to a practitioner gets a Task for them, answered with $accept or $reject', async () => {
    const colleague = await create(t.base, { resourceType: 'Practitioner', name: [{ family: 'Hopper', given: ['Grace'] }] });
    const referral = (note: string) => create(t.base, {
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      category: [REFERRAL],
      code: { text: 'Cardiology consultation' },
      subject: { reference: `Patient/${who.patient.id}` },
      requester: { reference: `Practitioner/${who.practitioner.id}` },
      performer: [{ reference: `Practitioner/${colleague.id}` }],
      note: [{ text: note }],
    });
    const first = await referral('chest pain on exertion');
    const task = await taskOf(first);
    expect(task).toMatchObject({ status: 'requested', owner: { reference: `Practitioner/${colleague.id}` }, description: 'Referral' });
    const accepted = await call(t.base, 'POST', `/Task/${task.id}/$accept`);
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body.status).toBe('accepted');
    expectOutcome(await call(t.base, 'POST', `/Task/${task.id}/$accept`), 422);

    const second = await referral('palpitations');
    const other = await taskOf(second);
    expectOutcome(await call(t.base, 'POST', `/Task/${other.id}/$reject`), 400);
    const rejected = await call(t.base, 'POST', `/Task/${other.id}/$reject`, { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: 'Not my speciality' }] });
    expect(rejected.body).toMatchObject({ status: 'rejected', statusReason: { text: 'Not my speciality' } });
    expectOutcome(await call(t.base, 'POST', `/Task/${other.id}/$accept`), 422);
    expectOutcome(await call(t.base, 'POST', '/Task/no-such-task/$accept'), 404);
    expect((await call(t.base, 'GET', `/Task/${other.id}`)).body.meta.versionId).toBe('2');
  });
});
