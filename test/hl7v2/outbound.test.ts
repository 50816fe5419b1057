/**
 * HL7 v2 outbound feeds through the public interfaces: resources written over the FHIR API reach
 * a real MLLP receiver on loopback as OML^O21 / ORM^O01 / RDE^O11 / ADT^A08, routed by the
 * Organization/Endpoint resources; retries while the receiver is down; no echo to the sender.
 * On each engine, with the in-process queue and (REDIS_URL set) BullMQ under a prefix of its own.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { redisEnv } from '../support/redis.js';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { until } from '../support/wait.js';
import { fixture, sendOne, setField, withControlId } from './mllp-client.js';
import { destination, field, freePort, MllpReceiver, OUTBOUND_ENV, patient, switchOff } from './outbound-support.js';

const QUEUES = process.env.REDIS_URL ? (['in-process', 'redis'] as const) : (['in-process'] as const);
const LOINC = { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] };

describe.each(ENGINES.flatMap((e) => QUEUES.map((q) => [e, q] as const)))('HL7 v2 outbound (%s, %s queue)', (engine, queueKind) => {
  const t = useTestServer(engine, { ...OUTBOUND_ENV, MLLP_PORT: '0', ...(queueKind === 'redis' ? redisEnv() : {}) });
  const receivers: MllpReceiver[] = [];
  const receiver = async (port?: number) => {
    const r = await new MllpReceiver(port).start();
    receivers.push(r);
    return r;
  };
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.stop()));
  });

  const order = async (patientId: string, performer: string, number: string, extra: Record<string, unknown> = {}) => {
    const r = await call(t.base, 'POST', '/ServiceRequest', {
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      identifier: [{ system: 'urn:oid:1.2.3.4', value: number }],
      code: LOINC,
      subject: { reference: `Patient/${patientId}` },
      performer: [{ reference: `Organization/${performer}` }],
      ...extra,
    });
    expect(r.status).toBe(201);
    return r.body;
  };

  it('sends a new ServiceRequest as OML^O21 (NW), a change as XO and its revocation as CA', async () => {
    const lab = await receiver();
    const dest = await destination(t.base, lab.port, ['OML', 'ORM'], { facility: 'LABFAC' });
    const pid = await patient(t.base, 'MRN-OML-1');
    const sr = await order(pid, dest.organizationId, 'ORD-OML-1');
    const [msg] = await until(() => lab.matching('ORC', 2, 'ORD-OML-1').length > 0 && lab.matching('ORC', 2, 'ORD-OML-1'), 'OML^O21');
    expect(field(msg!, 'MSH', 9)).toBe('OML^O21^OML_O21');
    expect(field(msg!, 'MSH', 3)).toBe('CAREBRIDGE');
    expect(field(msg!, 'MSH', 6)).toBe('LABFAC');
    expect(field(msg!, 'MSH', 12)).toBe('2.5.1');
    expect(field(msg!, 'MSH', 10)).toMatch(/^CB\d+$/);
    expect(field(msg!, 'ORC', 1)).toBe('NW');
    expect(field(msg!, 'ORC', 2)).toBe('ORD-OML-1^^1.2.3.4^ISO');
    expect(field(msg!, 'PID', 3)).toBe('MRN-OML-1^^^&2.16.840.1.113883.19.5&ISO^MR');
    expect(field(msg!, 'PID', 5)).toBe('Doe^Jane^Q');
    expect(field(msg!, 'PID', 8)).toBe('F');
    expect(field(msg!, 'OBR', 4)).toBe('2345-7^Glucose^LN');
    expect(field(msg!, 'PV1', 2)).toBe('N');

    const changed = await call(t.base, 'PUT', `/ServiceRequest/${sr.id}`, { ...sr, meta: undefined, priority: 'urgent' });
    expect(changed.status).toBe(200);
    await until(() => lab.matching('ORC', 2, 'ORD-OML-1').find((m) => field(m, 'ORC', 1) === 'XO'), 'ORC-1 XO');
    const revoked = await call(t.base, 'PUT', `/ServiceRequest/${sr.id}`, { ...sr, meta: undefined, status: 'revoked' });
    expect(revoked.status).toBe(200);
    const cancel = await until(() => lab.matching('ORC', 2, 'ORD-OML-1').find((m) => field(m, 'ORC', 1) === 'CA'), 'ORC-1 CA');
    expect(field(cancel, 'MSH', 9)).toBe('OML^O21^OML_O21');
    expect(lab.matching('ORC', 2, 'ORD-OML-1').map((m) => field(m, 'ORC', 1))).toEqual(['NW', 'XO', 'CA']);
    expect(field(cancel, 'MSH', 10)).not.toBe(field(msg!, 'MSH', 10));
    await switchOff(t.base, dest.endpoint);
  });

  it('sends ORM^O01 to an endpoint that takes ORM only, and an ORC-2 from the resource id when the request has no identifier', async () => {
    const lab = await receiver();
    const dest = await destination(t.base, lab.port, ['ORM']);
    const pid = await patient(t.base, 'MRN-ORM-1');
    const sr = await order(pid, dest.organizationId, 'unused', { identifier: undefined });
    const msg = await until(() => lab.messages.find((m) => field(m, 'ORC', 2, 1) === sr.id), 'ORM^O01');
    expect(field(msg, 'MSH', 9)).toBe('ORM^O01^ORM_O01');
    expect(field(msg, 'ORC', 1)).toBe('NW');
    expect(field(msg, 'ORC', 2)).toBe(`${sr.id}^CAREBRIDGE`);
    expect(field(msg, 'OBR', 2)).toBe(`${sr.id}^CAREBRIDGE`);
    await switchOff(t.base, dest.endpoint);
  });

  it('sends an active MedicationRequest to its dispensing organization as RDE^O11', async () => {
    const pharmacy = await receiver();
    const dest = await destination(t.base, pharmacy.port, ['RDE']);
    const pid = await patient(t.base, 'MRN-RDE-1');
    const r = await call(t.base, 'POST', '/MedicationRequest', {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      identifier: [{ system: 'urn:oid:1.2.3.5', value: 'RX-1' }],
      medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '197361', display: 'Amlodipine 5 MG' }] },
      subject: { reference: `Patient/${pid}` },
      dispenseRequest: { performer: { reference: `Organization/${dest.organizationId}` }, quantity: { value: 30, unit: 'tablet' } },
    });
    expect(r.status).toBe(201);
    const msg = await until(() => pharmacy.matching('ORC', 2, 'RX-1')[0], 'RDE^O11');
    expect(field(msg, 'MSH', 9)).toBe('RDE^O11^RDE_O11');
    expect(field(msg, 'ORC', 1)).toBe('NW');
    expect(field(msg, 'RXE', 2)).toBe('197361^Amlodipine 5 MG^RXNORM');
    expect(field(msg, 'RXE', 10)).toBe('30');
    expect(field(msg, 'PID', 3, 1)).toBe('MRN-RDE-1');
    // Deleting a sent prescription cancels it.
    expect((await call(t.base, 'DELETE', `/MedicationRequest/${r.body.id}`)).status).toBe(204);
    const cancel = await until(() => pharmacy.matching('ORC', 2, 'RX-1').find((m) => field(m, 'ORC', 1) === 'CA'), 'RDE^O11 CA');
    expect(field(cancel, 'RXE', 2)).toBe('197361^Amlodipine 5 MG^RXNORM');
    await switchOff(t.base, dest.endpoint);
  });

  it('sends a Patient update as ADT^A08, a new Encounter as ADT^A04 and its update as ADT^A08', async () => {
    const adt = await receiver();
    const dest = await destination(t.base, adt.port, ['ADT']);
    const pid = await patient(t.base, 'MRN-ADT-1');
    const current = await call(t.base, 'GET', `/Patient/${pid}`);
    expect((await call(t.base, 'PUT', `/Patient/${pid}`, { ...current.body, meta: undefined, name: [{ family: 'Roe', given: ['Jane'] }] })).status).toBe(200);
    const update = await until(() => adt.matching('PID', 5, 'Roe').find((m) => field(m, 'PID', 3, 1) === 'MRN-ADT-1'), 'ADT^A08');
    expect(field(update, 'MSH', 9)).toBe('ADT^A08^ADT_A01');
    expect(field(update, 'EVN', 2)).toMatch(/^\d{14}[+-]\d{4}$/);

    const encounter = await call(t.base, 'POST', '/Encounter', {
      resourceType: 'Encounter', status: 'in-progress', identifier: [{ system: 'urn:oid:1.2.3.9', value: 'VN-ADT-1' }],
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${pid}` },
      period: { start: '2024-03-01T08:30:00+01:00' },
    });
    expect(encounter.status).toBe(201);
    const a04 = await until(() => adt.matching('PV1', 19, 'VN-ADT-1')[0], 'ADT^A04');
    expect(field(a04, 'MSH', 9)).toBe('ADT^A04^ADT_A01');
    expect(field(a04, 'PV1', 2)).toBe('I');
    expect(field(a04, 'PV1', 44)).toBe('20240301083000+0100');
    expect(field(a04, 'PID', 3, 1)).toBe('MRN-ADT-1');
    expect((await call(t.base, 'PUT', `/Encounter/${encounter.body.id}`, { ...encounter.body, meta: undefined, status: 'finished' })).status).toBe(200);
    const a08 = await until(() => adt.matching('PV1', 19, 'VN-ADT-1').find((m) => field(m, 'MSH', 9).startsWith('ADT^A08')), 'ADT^A08 for the encounter');
    expect(field(a08, 'PV1', 2)).toBe('I');
    await switchOff(t.base, dest.endpoint);
  });

  it('queues nothing for an order whose performer has no endpoint', async () => {
    const lab = await receiver();
    const dest = await destination(t.base, lab.port, ['OML']);
    const noEndpoint = await call(t.base, 'POST', '/Organization', { resourceType: 'Organization', name: 'Paper lab' });
    const pid = await patient(t.base, 'MRN-NONE-1');
    const unrouted = await order(pid, noEndpoint.body.id, 'ORD-NONE-1');
    const routed = await order(pid, dest.organizationId, 'ORD-NONE-2');
    // The routed order, written after the other, was handled: the other one was too.
    await until(() => lab.matching('ORC', 2, 'ORD-NONE-2')[0], 'the routed order');
    const out = await call(t.server.url, 'GET', '/admin/hl7v2/messages?direction=out&_count=500');
    expect(out.status).toBe(200);
    const foci = out.body.messages.map((m: { focus: string }) => m.focus);
    expect(foci).toContain(`ServiceRequest/${routed.id}`);
    expect(foci).not.toContain(`ServiceRequest/${unrouted.id}`);
    expect(lab.matching('ORC', 2, 'ORD-NONE-1')).toEqual([]);
    await switchOff(t.base, dest.endpoint);
  });

  it('retries while the receiver is down and delivers once when it is back', async () => {
    const port = await freePort();
    const dest = await destination(t.base, port, ['OML']);
    const pid = await patient(t.base, 'MRN-DOWN-1');
    const sr = await order(pid, dest.organizationId, 'ORD-DOWN-1');
    const failed = await until(async () => {
      const list = await call(t.server.url, 'GET', '/admin/hl7v2/messages?direction=out&status=failed');
      return list.body.messages.find((m: { focus: string }) => m.focus === `ServiceRequest/${sr.id}`);
    }, 'a failed attempt');
    expect(failed.error).toMatch(/ECONNREFUSED|refused/i);
    const lab = await receiver(port);
    await until(() => lab.matching('ORC', 2, 'ORD-DOWN-1')[0], 'delivery after the receiver came back');
    const detail = await until(async () => {
      const d = await call(t.server.url, 'GET', `/admin/hl7v2/messages/${failed.id}`);
      return d.body.status === 'sent' && d.body;
    }, 'status sent');
    expect(detail.ackCode).toBe('AA');
    expect(detail.ack).toContain('MSA|AA|');
    expect(detail.attempts).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 400)); // no second copy arrives later
    expect(lab.matching('ORC', 2, 'ORD-DOWN-1')).toHaveLength(1);
    await switchOff(t.base, dest.endpoint);
  });

  it('does not deliver a later message to an endpoint before an earlier one that is being retried', async () => {
    const lab = await receiver();
    lab.refuse = (m) => field(m, 'ORC', 2, 1) === 'ORD-SEQ-A';
    const dest = await destination(t.base, lab.port, ['OML']);
    const pid = await patient(t.base, 'MRN-SEQ-1');
    await order(pid, dest.organizationId, 'ORD-SEQ-A');
    await until(() => lab.matching('ORC', 2, 'ORD-SEQ-A').length >= 1, 'a refused attempt of A');
    const b = await order(pid, dest.organizationId, 'ORD-SEQ-B');
    await until(async () => {
      const list = await call(t.server.url, 'GET', '/admin/hl7v2/messages?direction=out');
      return list.body.messages.some((m: { focus: string }) => m.focus === `ServiceRequest/${b.id}`);
    }, 'B queued');
    expect(lab.matching('ORC', 2, 'ORD-SEQ-B')).toEqual([]);
    const refusedSoFar = lab.matching('ORC', 2, 'ORD-SEQ-A').length;
    await until(() => lab.matching('ORC', 2, 'ORD-SEQ-A').length > refusedSoFar, 'A retried while B waits');
    expect(lab.matching('ORC', 2, 'ORD-SEQ-B')).toEqual([]);
    lab.refuse = undefined;
    await until(() => lab.matching('ORC', 2, 'ORD-SEQ-B').length > 0, 'B after A');
    const sequence = lab.messages.map((m) => field(m, 'ORC', 2, 1)).filter((n) => n.startsWith('ORD-SEQ-'));
    expect(sequence.lastIndexOf('ORD-SEQ-A')).toBeLessThan(sequence.indexOf('ORD-SEQ-B'));
    expect(sequence.filter((n) => n === 'ORD-SEQ-B')).toHaveLength(1);
    await switchOff(t.base, dest.endpoint);
  });

  it('does not echo a patient received over HL7 v2 from facility X back to X, but sends it to others', async () => {
    const x = await receiver();
    const y = await receiver();
    const destX = await destination(t.base, x.port, ['ADT'], { facility: 'GHHSFacility' });
    const destY = await destination(t.base, y.port, ['ADT'], { facility: 'OTHERFAC' });
    const inbound = withControlId(fixture('msfc_ADT-A08-01.hl7'), `LOOP-${randomBytes(3).toString('hex')}`);
    const ack = await sendOne(t.server.mllpPort!, setField(inbound, 'MSH', 4, 'GHHSFacility'));
    expect(ack.msa[1]).toBe('AA');
    const atY = await until(() => y.messages.find((m) => field(m, 'MSH', 9).startsWith('ADT^A08')), 'ADT^A08 at Y');
    expect(field(atY, 'MSH', 6)).toBe('OTHERFAC');
    await new Promise((r) => setTimeout(r, 500));
    expect(x.messages).toEqual([]);
    await switchOff(t.base, destX.endpoint);
    await switchOff(t.base, destY.endpoint);
  });
});
