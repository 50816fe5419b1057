/**
 * The appointments workflow end to end over HTTP: rules → slots → $find → $book → reminder →
 * check-in → Encounter → queue; cancel frees the slot, voids the reminder, shows in the iCal feed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { expectOutcome } from '../support/outcome.js';
import { until } from '../support/wait.js';
import { appointmentOn, appointmentsEnv, clinic, patient, smtpStandIn, soonSlot, type Clinic } from './appointments-support.js';

describe.each(ENGINES)('appointments (%s)', (engine) => {
  // SMS gateway and SMTP stand-ins; their URLs go into the env before the server starts (hooks run in order).
  const env = appointmentsEnv();
  const sms: any[] = [];
  let gateway: Server;
  let smtp: Awaited<ReturnType<typeof smtpStandIn>>;
  beforeAll(async () => {
    smtp = await smtpStandIn();
    env.SMTP_URL = smtp.url;
    gateway = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        sms.push(JSON.parse(body));
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    env.SMS_WEBHOOK_URL = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/sms`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => gateway.close(() => resolve()));
    await smtp.close();
  });
  const t = useTestServer(engine, env);
  let c: Clinic;

  it('generates slots from the PractitionerRole rules, idempotently', async () => {
    c = await clinic(t.base);
    // The change consumer generates them after the Schedule is written (one transaction: all or none).
    await until(async () => (await searchResources(t.base, `Slot?schedule=Schedule/${c.schedule.id}&_count=1`)).length > 0);
    const again = await call(t.base, 'POST', `/Schedule/${c.schedule.id}/$generate-slots`);
    const value = (r: any, name: string) => r.body.parameter.find((p: any) => p.name === name).valueInteger;
    expect(value(again, 'created')).toBe(0);
    const total = value(again, 'existing');
    expect(total).toBeGreaterThan(20);
    const slots = await searchResources(t.base, `Slot?schedule=Schedule/${c.schedule.id}&_count=500`);
    expect(slots).toHaveLength(total); // the consumer's run and ours: no duplicates
    for (const s of slots) {
      expect(s.status).toBe('free');
      expect(Date.parse(s.end) - Date.parse(s.start)).toBe(30 * 60_000);
      const hour = new Date(s.start).getUTCHours();
      expect(hour >= 8 && hour < 18).toBe(true);
    }
    expect((await call(t.base, 'POST', `/Schedule/nope/$generate-slots`)).status).toBe(404);
  });

  it('$find → $book → check-in → Encounter → the practitioner queue in arrival order', async () => {
    const start = new Date().toISOString();
    const end = new Date(Date.now() + 4 * 86_400_000).toISOString();
    const page1 = await call(t.base, 'GET', `/Appointment/$find?practitioner=Practitioner/${c.practitioner.id}&start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}&_count=5`);
    expect(page1.status, page1.text).toBe(200);
    expect(page1.body.entry).toHaveLength(5);
    const proposals = page1.body.entry.map((e: any) => e.resource);
    expect(proposals.every((a: any) => a.status === 'proposed' && a.slot.length === 1)).toBe(true);
    expect(proposals.map((a: any) => a.start)).toEqual([...proposals.map((a: any) => a.start)].sort());
    const next = page1.body.link.find((l: any) => l.relation === 'next');
    expect(next.url).toContain('/Appointment/$find?');
    const page2 = await call(t.base, 'GET', next.url.slice(next.url.indexOf('/Appointment/')));
    expect(page2.body.entry[0].resource.start > proposals[4].start).toBe(true);
    // By location gives the same slots; an unknown practitioner none.
    const byLocation = await call(t.base, 'GET', `/Appointment/$find?location=${c.location.id}&start=${encodeURIComponent(start)}&_count=5`);
    expect(byLocation.body.entry.map((e: any) => e.resource.slot[0].reference)).toEqual(proposals.map((a: any) => a.slot[0].reference));
    expect((await call(t.base, 'GET', `/Appointment/$find?practitioner=none&start=${encodeURIComponent(start)}`)).body.entry).toEqual([]);

    const [pa, pb] = [await patient(t.base), await patient(t.base)];
    const booked = [];
    for (const [i, p] of [pa, pb].entries()) {
      const proposal = { ...proposals[i], participant: [...proposals[i].participant, { actor: { reference: `Patient/${p.id}` }, status: 'needs-action' }] };
      const r = await call(t.base, 'POST', '/Appointment/$book', { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: proposal }] });
      expect(r.status, r.text).toBe(200);
      const appt = r.body.entry[0].resource;
      expect(appt.status).toBe('booked');
      expect((await call(t.base, 'GET', `/${appt.slot[0].reference}`)).body.status).toBe('busy');
      booked.push(appt);
    }
    // Check in B first, then A: the queue is in arrival order.
    for (const appt of [booked[1], booked[0]]) {
      const r = await call(t.base, 'PUT', `/Appointment/${appt.id}`, { ...appt, status: 'arrived' });
      expect(r.status, r.text).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const [encounter, ...more] = await searchResources(t.base, `Encounter?appointment=Appointment/${booked[0].id}`);
    expect(more).toEqual([]);
    expect(encounter).toMatchObject({ status: 'arrived', subject: { reference: `Patient/${pa.id}` }, appointment: [{ reference: `Appointment/${booked[0].id}` }] });
    expect(encounter.participant.map((p: any) => p.individual.reference)).toContain(`Practitioner/${c.practitioner.id}`);
    const day = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const queue = await searchResources(t.base, `Encounter?participant=Practitioner/${c.practitioner.id}&date=ge${day}&date=lt${tomorrow}&status=arrived&_sort=date`);
    expect(queue.map((e: any) => e.subject.reference)).toEqual([`Patient/${pb.id}`, `Patient/${pa.id}`]);
  });

  it('a booking sends its reminders; cancelled or moved ones send none; cancelled shows CANCELLED in iCal', async () => {
    const kept = await patient(t.base, { telecom: [{ system: 'email', value: 'kept@example.org' }, { system: 'sms', value: '+15550001' }] });
    const [cancelled, moved] = [await patient(t.base, { telecom: undefined }), await patient(t.base, { telecom: undefined })];
    // Preferences on the Patient: opted out entirely; in-app only although an e-mail address is known.
    const prefs = (...extension: object[]) => ({ extension: [{ url: 'http://carebridge.example/fhir/StructureDefinition/appointment-reminder-preferences', extension }] });
    const optedOut = await patient(t.base, prefs({ url: 'opt-out', valueBoolean: true }));
    const inAppOnly = await patient(t.base, prefs({ url: 'channel', valueCode: 'in-app' }));
    const [s1, s2, s3] = [await soonSlot(t.base, c.schedule, 9000), await soonSlot(t.base, c.schedule, 9000), await soonSlot(t.base, c.schedule, 9000)];
    for (const p of [optedOut, inAppOnly]) {
      const r = await call(t.base, 'POST', '/Appointment', appointmentOn(await soonSlot(t.base, c.schedule, 9000), p.id, c.practitioner.id));
      expect(r.status, r.text).toBe(201);
    }
    const later = await soonSlot(t.base, c.schedule, 3_600_000);
    const a1 = await call(t.base, 'POST', '/Appointment', appointmentOn(s1, kept.id, c.practitioner.id));
    const a2 = await call(t.base, 'POST', '/Appointment', appointmentOn(s2, cancelled.id, c.practitioner.id));
    const a3 = await call(t.base, 'POST', '/Appointment', appointmentOn(s3, moved.id, c.practitioner.id));
    expect([a1.status, a2.status, a3.status]).toEqual([201, 201, 201]);
    const cancel = await call(t.base, 'PUT', `/Appointment/${a2.body.id}`, { ...a2.body, status: 'cancelled' });
    expect(cancel.status, cancel.text).toBe(200);
    expect((await call(t.base, 'GET', `/Slot/${s2.id}`)).body.status).toBe('free');
    const move = await call(t.base, 'PUT', `/Appointment/${a3.body.id}`, { ...appointmentOn(later, moved.id, c.practitioner.id), id: a3.body.id });
    expect(move.status, move.text).toBe(200);
    expect([(await call(t.base, 'GET', `/Slot/${s3.id}`)).body.status, (await call(t.base, 'GET', `/Slot/${later.id}`)).body.status]).toEqual(['free', 'busy']);
    // The cancel and the move must land before the reminders fall due, or this test proves nothing.
    expect(Date.now(), 'set-up too slow for the reminder timing').toBeLessThan(Date.parse(s2.start) - 4000);

    // Lead time 4 s before a start 9 s away: due after ~5 s (the cancel and the move are done by then). In-app, e-mail (SMTP) and SMS (webhook).
    const sent = await until(async () => {
      const list = await searchResources(t.base, `Communication?recipient=Patient/${kept.id}`);
      return list.length === 3 && list.every((m: any) => m.status === 'completed') ? list : undefined;
    });
    expect(sent.map((m: any) => m.medium[0].text).sort()).toEqual(['email', 'in-app', 'sms']);
    expect(sent[0].about).toEqual([{ reference: `Appointment/${a1.body.id}` }]);
    expect(sms).toEqual([expect.objectContaining({ to: '+15550001', appointment: `Appointment/${a1.body.id}` })]);
    expect(sms[0].text).toContain('Reminder');
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]).toContain('kept@example.org');
    expect(smtp.messages[0]).toContain('Subject: Appointment reminder');
    const inApp = await until(async () => {
      const list = await searchResources(t.base, `Communication?recipient=Patient/${inAppOnly.id}`);
      return list.length > 0 ? list : undefined;
    });
    expect(inApp.map((m: any) => m.medium[0].text)).toEqual(['in-app']);
    await new Promise((r) => setTimeout(r, 1000)); // the cancelled and moved ones were due at the same time
    expect(await searchResources(t.base, `Communication?recipient=Patient/${cancelled.id}`)).toEqual([]);
    expect(await searchResources(t.base, `Communication?recipient=Patient/${moved.id}`)).toEqual([]);
    expect(await searchResources(t.base, `Communication?recipient=Patient/${optedOut.id}`)).toEqual([]);
    sms.length = 0;

    const token = await call(t.base, 'POST', `/Patient/${cancelled.id}/$calendar-token`);
    expect(token.status, token.text).toBe(200);
    const url: string = token.body.parameter.find((p: any) => p.name === 'url').valueUri;
    const feed = await fetch(url.replace(/^https?:\/\/[^/]+/, t.base.replace(/\/fhir$/, '')));
    expect(feed.status).toBe(200);
    expect(feed.headers.get('content-type')).toContain('text/calendar');
    const ics = await feed.text();
    expect(ics).toContain(`UID:${a2.body.id}@`);
    expect(ics).toContain('STATUS:CANCELLED');
    expect(ics).toContain('SEQUENCE:1');
    expect((await call(t.base, 'DELETE', `/Patient/${cancelled.id}/$calendar-token`)).status).toBe(204);
    expect((await fetch(url.replace(/^https?:\/\/[^/]+/, t.base.replace(/\/fhir$/, '')))).status).toBe(404);
  });

  it('refuses bad input with an OperationOutcome and writes nothing', async () => {
    const p = await patient(t.base);
    const slot = await soonSlot(t.base, c.schedule, 3_600_000);
    expect((await call(t.base, 'POST', '/Appointment', appointmentOn(slot, p.id, c.practitioner.id))).status).toBe(201);
    const taken = await call(t.base, 'POST', '/Appointment', appointmentOn(slot, p.id, c.practitioner.id, 'pending'));
    expectOutcome(taken, 409);
    const viaBook = await call(t.base, 'POST', '/Appointment/$book', { ...appointmentOn(slot, p.id, c.practitioner.id), status: 'proposed' });
    expectOutcome(viaBook, 409);
    expect(await searchResources(t.base, `Appointment?slot=Slot/${slot.id}`)).toHaveLength(1);
    expectOutcome(await call(t.base, 'POST', '/Appointment', appointmentOn({ ...slot, id: 'no-such-slot' }, p.id, c.practitioner.id)), 422);
    expect(await searchResources(t.base, `Appointment?slot=Slot/no-such-slot`)).toEqual([]);
    expectOutcome(await call(t.base, 'POST', '/Appointment/$book', { resourceType: 'Patient' }), 400);
    expectOutcome(await call(t.base, 'POST', '/Appointment/$book', { ...appointmentOn(slot, p.id, c.practitioner.id), slot: undefined }), 400);
    expectOutcome(await call(t.base, 'GET', '/Appointment/$find?start=yesterday'), 400);
    expectOutcome(await call(t.base, 'GET', '/Appointment/$find?start=2026-11-25T10:00:00Z&end=2026-11-24'), 400);
    expectOutcome(await call(t.base, 'GET', '/Appointment/$find?end=2026-11-24'), 400);
    expectOutcome(await call(t.base, 'GET', '/Appointment/$find?start=2026-11-25&colour=red'), 400);
    expectOutcome(await call(t.base, 'POST', '/Practitioner/nobody/$calendar-token'), 404);
    expect((await fetch(`${t.base.replace(/\/fhir$/, '')}/calendar/not-a-token.ics`)).status).toBe(404);
    expect((await fetch(`${t.base.replace(/\/fhir$/, '')}/calendar/nosuchtenant/${'x'.repeat(43)}.ics`)).status).toBe(404);
  });

  it('the CapabilityStatement references the OperationDefinitions this server serves', async () => {
    const cs = (await call(t.base, 'GET', '/metadata')).body;
    const appointment = cs.rest[0].resource.find((r: any) => r.type === 'Appointment');
    const ops = Object.fromEntries(appointment.operation.map((o: any) => [o.name, o.definition]));
    expect(ops.find).toBe(`${t.base}/OperationDefinition/Appointment-find`);
    expect(cs.rest[0].resource.find((r: any) => r.type === 'Observation').operation.some((o: any) => o.name === 'find')).toBe(false);
    for (const name of ['find', 'book']) {
      const def = await call(t.base, 'GET', ops[name].slice(t.base.length));
      expect(def.status).toBe(200);
      expect(def.body).toMatchObject({ resourceType: 'OperationDefinition', code: name, url: ops[name], resource: ['Appointment'] });
    }
  });
});
