/**
 * Prescriptions over HTTP: the MedicationRequest status lifecycle on every write path (REST
 * update and patch, transaction, batch), templates applied with ActivityDefinition/$apply, and
 * renewal requests approved or rejected by the prescriber.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { expectOutcome } from '../support/outcome.js';
import { AMOXICILLIN, create, people, prescription, prescriptionEnv, type People } from './medication-support.js';

const RENEWAL = { coding: [{ system: 'https://carebridge.dev/fhir/CodeSystem/task-code', code: 'renewal-request' }] };

describe.each(ENGINES)('prescriptions: lifecycle, templates, renewals on %s', (engine) => {
  const t = useTestServer(engine, prescriptionEnv());
  let who: People;
  const setStatus = (mr: any, status: string) => call(t.base, 'PUT', `/MedicationRequest/${mr.id}`, { ...mr, status });

  it('allows draft → active → on-hold → active → completed → entered-in-error, refuses illegal moves with 422', async () => {
    who = await people(t.base);
    let mr = await create(t.base, prescription(who, { status: 'draft' }));
    for (const status of ['active', 'on-hold', 'active', 'completed']) {
      const r = await setStatus(mr, status);
      expect(r.status, r.text).toBe(200);
      mr = r.body;
    }
    const back = await setStatus(mr, 'active');
    expectOutcome(back, 422);
    expect(back.body.issue[0]).toMatchObject({ code: 'business-rule', expression: ['MedicationRequest.status'] });
    expect(back.body.issue[0].diagnostics).toContain("from 'completed' to 'active'");
    expect((await call(t.base, 'GET', `/MedicationRequest/${mr.id}`)).body.meta.versionId).toBe(mr.meta.versionId);
    expect((await setStatus(mr, 'entered-in-error')).status).toBe(200);

    const draft = await create(t.base, prescription(who, { status: 'draft' }));
    expectOutcome(await setStatus(draft, 'completed'), 422);
    expectOutcome(await setStatus(draft, 'on-hold'), 422);
    // Content edits keep the status and are always allowed.
    expect((await call(t.base, 'PUT', `/MedicationRequest/${draft.id}`, { ...draft, note: [{ text: 'check allergies' }] })).status).toBe(200);
  });

  it('refuses an illegal transition made by JSON Patch, in a transaction (nothing kept) and in a batch entry', async () => {
    const mr = await create(t.base, prescription(who, { status: 'stopped' }));
    const patched = await call(t.base, 'PATCH', `/MedicationRequest/${mr.id}`, JSON.stringify([{ op: 'replace', path: '/status', value: 'active' }]), { 'content-type': 'application/json-patch+json' });
    expectOutcome(patched, 422);

    const marker = `tx-${Date.now()}`;
    const tx = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:1b0c9a53-5a0e-4d5b-8d8b-6b3bd1c5f001', resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: marker }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { ...mr, status: 'active' }, request: { method: 'PUT', url: `MedicationRequest/${mr.id}` } },
      ],
    });
    expectOutcome(tx, 422);
    expect(tx.body.issue[0].diagnostics).toContain('Bundle.entry[1]');
    expect(await searchResources(t.base, `Patient?identifier=urn:test|${marker}`)).toHaveLength(0);

    const batch = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { ...mr, status: 'active' }, request: { method: 'PUT', url: `MedicationRequest/${mr.id}` } },
        { resource: { ...mr, status: 'entered-in-error' }, request: { method: 'PUT', url: `MedicationRequest/${mr.id}` } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.entry[0].response.status).toMatch(/^422/);
    expect(batch.body.entry[0].response.outcome.issue[0].code).toBe('business-rule');
    expect(batch.body.entry[1].response.status).toMatch(/^200/);
  });

  it('applies a prescription template: ActivityDefinition/$apply makes and stores a draft, which is then activated', async () => {
    const template = await create(t.base, {
      resourceType: 'ActivityDefinition',
      url: 'https://carebridge.example/templates/amoxicillin-adult',
      version: '1',
      status: 'active',
      kind: 'MedicationRequest',
      intent: 'order',
      productCodeableConcept: AMOXICILLIN,
      dosage: [{ text: '250 mg three times a day', timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd' } }, doseAndRate: [{ doseQuantity: { value: 250, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }] }],
      quantity: { value: 21, unit: 'capsule' },
    });
    const r = await call(t.base, 'POST', `/ActivityDefinition/${template.id}/$apply?subject=Patient/${who.patient.id}&practitioner=Practitioner/${who.practitioner.id}`);
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('location')).toMatch(new RegExp(`/MedicationRequest/${r.body.id}/_history/1$`));
    expect(r.body).toMatchObject({
      resourceType: 'MedicationRequest',
      status: 'draft',
      intent: 'order',
      subject: { reference: `Patient/${who.patient.id}` },
      requester: { reference: `Practitioner/${who.practitioner.id}` },
      medicationCodeableConcept: AMOXICILLIN,
      instantiatesCanonical: ['https://carebridge.example/templates/amoxicillin-adult|1'],
      dispenseRequest: { quantity: { value: 21, unit: 'capsule' } },
    });
    expect(r.body.dosageInstruction[0].timing.repeat.frequency).toBe(3);
    // A placer order number (HL7 v2 ORC-2 when sent to a pharmacy): the CareBridge placer system and the id.
    expect(r.body.identifier).toEqual([{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] }, system: 'urn:carebridge:hl7v2:authority:CAREBRIDGE', value: r.body.id }]);
    const stored = (await call(t.base, 'GET', `/MedicationRequest/${r.body.id}`)).body;
    expect(stored.status).toBe('draft');
    expect((await setStatus(stored, 'active')).body.status).toBe('active');

    // The same with a Parameters body.
    const viaBody = await call(t.base, 'POST', `/ActivityDefinition/${template.id}/$apply`, { resourceType: 'Parameters', parameter: [{ name: 'subject', valueReference: { reference: `Patient/${who.patient.id}` } }] });
    expect(viaBody.status, viaBody.text).toBe(201);
    expect(viaBody.body.requester).toBeUndefined();
  });

  it('answers bad $apply input with an OperationOutcome and stores nothing', async () => {
    const before = (await searchResources(t.base, `MedicationRequest?subject=Patient/${who.patient.id}&_count=100`)).length;
    const template = await create(t.base, { resourceType: 'ActivityDefinition', status: 'active', kind: 'MedicationRequest', productCodeableConcept: AMOXICILLIN });
    const noun = await create(t.base, { resourceType: 'ActivityDefinition', status: 'active', kind: 'Task' });
    const apply = (id: string, q: string, body?: unknown) => call(t.base, 'POST', `/ActivityDefinition/${id}/$apply${q}`, body);
    expectOutcome(await apply(template.id, ''), 400); // subject missing
    expectOutcome(await apply(template.id, '?subject=Practitioner/x'), 400);
    expectOutcome(await apply(template.id, '?subject=Patient/does-not-exist'), 422);
    expectOutcome(await apply(noun.id, `?subject=Patient/${who.patient.id}`), 422);
    expectOutcome(await apply('unknown-template', `?subject=Patient/${who.patient.id}`), 404);
    expectOutcome(await apply(template.id, '', { resourceType: 'Patient' }), 400);
    expectOutcome(await call(t.base, 'GET', `/ActivityDefinition/${template.id}/$apply?subject=Patient/${who.patient.id}`), 405);
    expect(await searchResources(t.base, `MedicationRequest?subject=Patient/${who.patient.id}&_count=100`)).toHaveLength(before);
  });

  it('approves a renewal request in one operation: a new active prescription with priorPrescription, the Task completed', async () => {
    const prior = await create(t.base, prescription(who, { status: 'completed', dispenseRequest: { numberOfRepeatsAllowed: 2, quantity: { value: 21, unit: 'capsule' } } }));
    const task = await create(t.base, { resourceType: 'Task', status: 'requested', intent: 'order', code: RENEWAL, focus: { reference: `MedicationRequest/${prior.id}` }, for: { reference: `Patient/${who.patient.id}` } });
    const r = await call(t.base, 'POST', `/Task/${task.id}/$approve-renewal`, { resourceType: 'Parameters', parameter: [{ name: 'practitioner', valueReference: { reference: `Practitioner/${who.practitioner.id}` } }] });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ resourceType: 'Task', status: 'completed', owner: { reference: `Practitioner/${who.practitioner.id}` } });
    const renewedRef = r.body.output[0].valueReference.reference;
    const renewed = (await call(t.base, 'GET', `/${renewedRef}`)).body;
    expect(renewed).toMatchObject({
      status: 'active',
      priorPrescription: { reference: `MedicationRequest/${prior.id}` },
      medicationCodeableConcept: AMOXICILLIN,
      dispenseRequest: { numberOfRepeatsAllowed: 2 },
      subject: { reference: `Patient/${who.patient.id}` },
    });
    expect(renewed.id).not.toBe(prior.id);
    expect(renewed.identifier).toEqual([expect.objectContaining({ value: renewed.id })]);
    // Answered once: a second approval is refused and writes nothing.
    expectOutcome(await call(t.base, 'POST', `/Task/${task.id}/$approve-renewal`), 422);
    expect(await searchResources(t.base, `MedicationRequest?_id=${prior.id},${renewed.id}`)).toHaveLength(2);
    expect((await searchResources(t.base, `MedicationRequest?subject=Patient/${who.patient.id}&_count=200`)).filter((m) => m.priorPrescription)).toHaveLength(1);
  });

  it('rejects a renewal request with a reason; bad renewal input → OperationOutcome, nothing written', async () => {
    const prior = await create(t.base, prescription(who, { status: 'completed' }));
    const task = await create(t.base, { resourceType: 'Task', status: 'requested', intent: 'order', code: RENEWAL, focus: { reference: `MedicationRequest/${prior.id}` } });
    expectOutcome(await call(t.base, 'POST', `/Task/${task.id}/$reject-renewal`), 400); // reason missing
    const r = await call(t.base, 'POST', `/Task/${task.id}/$reject-renewal?reason=${encodeURIComponent('Needs a review visit first')}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ status: 'rejected', statusReason: { text: 'Needs a review visit first' } });
    expect(r.body.meta.versionId).toBe('2');

    const notRenewal = await create(t.base, { resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: `MedicationRequest/${prior.id}` } });
    expectOutcome(await call(t.base, 'POST', `/Task/${notRenewal.id}/$approve-renewal`), 422);
    expectOutcome(await call(t.base, 'POST', `/Task/unknown-task/$approve-renewal`), 404);
    const wrong = await create(t.base, prescription(who, { status: 'entered-in-error' }));
    const bad = await create(t.base, { resourceType: 'Task', status: 'requested', intent: 'order', code: RENEWAL, focus: { reference: `MedicationRequest/${wrong.id}` } });
    expectOutcome(await call(t.base, 'POST', `/Task/${bad.id}/$approve-renewal`), 422);
    expect((await call(t.base, 'GET', `/Task/${bad.id}`)).body.status).toBe('requested');
    expectOutcome(await call(t.base, 'POST', `/Task/${bad.id}/$approve-renewal?practitioner=Patient/${who.patient.id}`), 400);
  });

  it('serves the OperationDefinitions and lists the operations in the CapabilityStatement', async () => {
    const def = await call(t.base, 'GET', '/OperationDefinition/Task-approve-renewal');
    expect(def.status).toBe(200);
    expect(def.body).toMatchObject({ resourceType: 'OperationDefinition', code: 'approve-renewal', instance: true, url: `${t.base}/OperationDefinition/Task-approve-renewal` });
    const meta = (await call(t.base, 'GET', '/metadata')).body;
    const task = meta.rest[0].resource.find((r: any) => r.type === 'Task');
    expect(task.operation).toContainEqual(expect.objectContaining({ name: 'approve-renewal' }));
  });
});
