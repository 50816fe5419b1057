/**
 * Dispense news back to the prescription: RDS^O13 over a real MLLP socket (and MedicationDispense
 * over REST) → MedicationDispense with authorizingPrescription → the request completed once fully
 * dispensed. Also the lifecycle rule on the HL7 v2 path (RDE^O11 with an illegal status move → AE).
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { expectOutcome } from '../support/outcome.js';
import { until } from '../support/wait.js';
import { sendOne } from '../hl7v2/mllp-client.js';
import { create, people, prescription, prescriptionEnv, V2_AUTHORITY, type People } from './medication-support.js';

interface Dispense {
  controlId: string;
  mrn: string;
  placer: string;
  subId: string;
  quantity: string;
  when?: string;
  giveCode?: string;
}

function rds(d: Dispense): string {
  return [
    `MSH|^~\\&|PHARMACY|CITYPHARM|CAREBRIDGE|HOSPITAL|20260105120000+0000||RDS^O13^RDS_O13|${d.controlId}|P|2.5.1`,
    `PID|1||${d.mrn}^^^CAREBRIDGE^MR||LOVELACE^ADA||19801210|F`,
    `ORC|RE|${d.placer}^CAREBRIDGE|F-${d.placer}^CITYPHARM`,
    `RXD|${d.subId}|${d.giveCode ?? '308182^Amoxicillin 250 MG Oral Capsule^RXNORM'}|${d.when ?? `2026010${d.subId}1000+0000`}|${d.quantity}|CAP^Capsule|||||`,
  ].join('\r');
}

function rde(controlId: string, mrn: string, placer: string, orderControl: string): string {
  return [
    `MSH|^~\\&|EHR|HOSPITAL|PHARMACY|CITYPHARM|20260105120000+0000||RDE^O11^RDE_O11|${controlId}|P|2.5.1`,
    `PID|1||${mrn}^^^CAREBRIDGE^MR||LOVELACE^ADA||19801210|F`,
    `ORC|${orderControl}|${placer}^CAREBRIDGE`,
    'RXE||308182^Amoxicillin 250 MG Oral Capsule^RXNORM|250||mg^mg^UCUM|||||21|CAP^Capsule|0',
  ].join('\r');
}

const byPrescription = (id: string) => `MedicationDispense?prescription=MedicationRequest/${id}&_count=50`;

describe.each(ENGINES)('prescriptions: dispenses on %s', (engine) => {
  const t = useTestServer(engine, prescriptionEnv({ MLLP_PORT: '0' }));
  const send = (message: string) => sendOne(t.server.mllpPort!, message);
  let who: People;
  let mrn: string;

  it('RDS^O13 dispenses, matched on the placer number, complete the request when quantity × (1 + repeats) is reached', async () => {
    who = await people(t.base);
    mrn = who.patient.identifier[0].value;
    const placer = `RX-${Date.now()}`;
    const mr = await create(t.base, prescription(who, {
      identifier: [{ system: V2_AUTHORITY, value: placer }],
      dispenseRequest: { quantity: { value: 30, unit: 'Capsule' }, numberOfRepeatsAllowed: 1 },
    }));

    expect((await send(rds({ controlId: `${placer}-1`, mrn, placer, subId: '1', quantity: '30' }))).msa.slice(0, 2)).toEqual(['MSA', 'AA']);
    const [first] = await searchResources(t.base, byPrescription(mr.id));
    expect(first).toMatchObject({
      status: 'completed',
      subject: { reference: `Patient/${who.patient.id}` },
      authorizingPrescription: [{ reference: `MedicationRequest/${mr.id}` }],
      quantity: { value: 30, unit: 'Capsule' },
      medicationCodeableConcept: { coding: [{ code: '308182' }] },
      whenHandedOver: '2026-01-01T10:00:00+00:00',
    });
    // Half dispensed (30 of 30 × 2): still active, and the request itself is referenced, not rewritten.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await call(t.base, 'GET', `/MedicationRequest/${mr.id}`)).body).toMatchObject({ status: 'active', meta: { versionId: '1' } });

    expect((await send(rds({ controlId: `${placer}-2`, mrn, placer, subId: '2', quantity: '30' }))).msa[1]).toBe('AA');
    const done = await until(async () => {
      const r = (await call(t.base, 'GET', `/MedicationRequest/${mr.id}`)).body;
      return r.status === 'completed' && r;
    });
    expect(done.meta.versionId).toBe('2');
    // The same dispense sent again (new control id) updates it: still two dispenses.
    expect((await send(rds({ controlId: `${placer}-2b`, mrn, placer, subId: '2', quantity: '30' }))).msa[1]).toBe('AA');
    expect(await searchResources(t.base, byPrescription(mr.id))).toHaveLength(2);
  });

  it('a dispense of an order not seen yet is stored, linked to a request created once from ORC/RXD (status unknown)', async () => {
    const placer = `RX-UNSEEN-${Date.now()}`;
    expect((await send(rds({ controlId: `${placer}-1`, mrn, placer, subId: '1', quantity: '10' }))).msa[1]).toBe('AA');
    const [stub] = await searchResources(t.base, `MedicationRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${placer}`)}`);
    expect(stub).toMatchObject({ status: 'unknown', intent: 'order', subject: { reference: `Patient/${who.patient.id}` } });
    expect(stub.medicationCodeableConcept.coding[0].code).toBe('308182');
    expect(await searchResources(t.base, byPrescription(stub.id))).toHaveLength(1);
    expect((await send(rds({ controlId: `${placer}-2`, mrn, placer, subId: '2', quantity: '10' }))).msa[1]).toBe('AA');
    expect(await searchResources(t.base, `MedicationRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${placer}`)}`)).toHaveLength(1);
    expect(await searchResources(t.base, byPrescription(stub.id))).toHaveLength(2);
  });

  it('a bad RDS^O13 is answered AE naming the field, and nothing is written', async () => {
    const placer = `RX-BAD-${Date.now()}`;
    const ack = await send(rds({ controlId: `${placer}-1`, mrn, placer, subId: '1', quantity: '10', giveCode: '' }));
    expect(ack.msa[1]).toBe('AE');
    expect(ack.err?.join('|')).toContain('RXD');
    expect(await searchResources(t.base, `MedicationRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${placer}`)}`)).toHaveLength(0);
  });

  it('a MedicationDispense written over REST completes a request without quantity on its first completed dispense', async () => {
    const mr = await create(t.base, prescription(who));
    const dispense = (status: string) => ({
      resourceType: 'MedicationDispense',
      status,
      medicationCodeableConcept: mr.medicationCodeableConcept,
      subject: mr.subject,
      authorizingPrescription: [{ reference: `MedicationRequest/${mr.id}` }],
      quantity: { value: 21, unit: 'Capsule' },
    });
    await create(t.base, dispense('in-progress'));
    await new Promise((r) => setTimeout(r, 1000));
    expect((await call(t.base, 'GET', `/MedicationRequest/${mr.id}`)).body.status).toBe('active');
    await create(t.base, dispense('completed'));
    await until(async () => (await call(t.base, 'GET', `/MedicationRequest/${mr.id}`)).body.status === 'completed');

    // A versioned, absolute authorizingPrescription is the same request.
    const other = await create(t.base, prescription(who));
    await create(t.base, { ...dispense('completed'), authorizingPrescription: [{ reference: `${t.base}/MedicationRequest/${other.id}/_history/1` }] });
    await until(async () => (await call(t.base, 'GET', `/MedicationRequest/${other.id}`)).body.status === 'completed');

    // A stopped request is not completed by a late dispense.
    const stopped = await create(t.base, prescription(who, { status: 'stopped' }));
    await create(t.base, { ...dispense('completed'), authorizingPrescription: [{ reference: `MedicationRequest/${stopped.id}` }] });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await call(t.base, 'GET', `/MedicationRequest/${stopped.id}`)).body.status).toBe('stopped');
    expectOutcome(await call(t.base, 'POST', '/MedicationDispense', { resourceType: 'MedicationDispense', status: 'finished' }), 400);
  });

  it('the lifecycle holds for HL7 v2 too: an RDE^O11 moving a discontinued order back to active is answered AE', async () => {
    const placer = `RX-RDE-${Date.now()}`;
    expect((await send(rde(`${placer}-1`, mrn, placer, 'NW'))).msa[1]).toBe('AA');
    const query = `MedicationRequest?identifier=${encodeURIComponent(`${V2_AUTHORITY}|${placer}`)}`;
    expect((await searchResources(t.base, query))[0].status).toBe('active');
    // A change order (XO) keeps it active (it would otherwise map to unknown, refused for an active order).
    expect((await send(rde(`${placer}-1b`, mrn, placer, 'XO'))).msa[1]).toBe('AA');
    expect((await searchResources(t.base, query))[0]).toMatchObject({ status: 'active', meta: { versionId: '2' } });
    expect((await send(rde(`${placer}-2`, mrn, placer, 'DC'))).msa[1]).toBe('AA');
    expect((await searchResources(t.base, query))[0].status).toBe('stopped');
    const ack = await send(rde(`${placer}-3`, mrn, placer, 'NW'));
    expect(ack.msa[1]).toBe('AE');
    expect(ack.raw).toContain('cannot change');
    const [after] = await searchResources(t.base, query);
    expect(after).toMatchObject({ status: 'stopped', meta: { versionId: '3' } });
  });
});
