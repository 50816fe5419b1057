/** Races on one slot and one check-in, over HTTP: exactly one booking wins, one Encounter exists. */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { expectOutcome } from '../support/outcome.js';
import { appointmentOn, appointmentsEnv, clinic, patient, soonSlot } from './appointments-support.js';

describe.each(ENGINES)('appointment races (%s)', (engine) => {
  const t = useTestServer(engine, appointmentsEnv({ APPOINTMENT_REMINDER_LEAD_TIMES: '' }));

  it('50 parallel bookings of one slot (REST creates and $book mixed): one wins, 49 get 409', async () => {
    const c = await clinic(t.base);
    const p = await patient(t.base);
    const slot = await soonSlot(t.base, c.schedule, 86_400_000);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? call(t.base, 'POST', '/Appointment', appointmentOn(slot, p.id, c.practitioner.id))
          : call(t.base, 'POST', '/Appointment/$book', { ...appointmentOn(slot, p.id, c.practitioner.id), status: 'proposed' }),
      ),
    );
    const won = results.filter((r) => r.status === 201 || r.status === 200);
    expect(won).toHaveLength(1);
    for (const r of results.filter((x) => !won.includes(x))) expectOutcome(r, 409);
    expect(await searchResources(t.base, `Appointment?slot=Slot/${slot.id}`)).toHaveLength(1);
    expect((await call(t.base, 'GET', `/Slot/${slot.id}`)).body.status).toBe('busy');
  });

  it('20 parallel check-ins create one Encounter', async () => {
    const c = await clinic(t.base);
    const p = await patient(t.base);
    const slot = await soonSlot(t.base, c.schedule, 3_600_000);
    const appt = (await call(t.base, 'POST', '/Appointment', appointmentOn(slot, p.id, c.practitioner.id))).body;
    const results = await Promise.all(Array.from({ length: 20 }, () => call(t.base, 'PUT', `/Appointment/${appt.id}`, { ...appt, status: 'arrived' })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const encounters = await searchResources(t.base, `Encounter?appointment=Appointment/${appt.id}`);
    expect(encounters).toHaveLength(1);
    expect(encounters[0].status).toBe('arrived');
    // A reschedule while checked in keeps one slot busy: the old is freed, the new taken.
    const other = await soonSlot(t.base, c.schedule, 7_200_000);
    const moved = await call(t.base, 'PUT', `/Appointment/${appt.id}`, { ...appt, status: 'arrived', slot: [{ reference: `Slot/${other.id}` }] });
    expect(moved.status, moved.text).toBe(200);
    expect([(await call(t.base, 'GET', `/Slot/${slot.id}`)).body.status, (await call(t.base, 'GET', `/Slot/${other.id}`)).body.status]).toEqual(['free', 'busy']);
    expect(await searchResources(t.base, `Encounter?appointment=Appointment/${appt.id}`)).toHaveLength(1);
  });

  it('a transaction Bundle obeys the rule: a taken slot rolls the whole Bundle back', async () => {
    const c = await clinic(t.base);
    const p = await patient(t.base);
    const slot = await soonSlot(t.base, c.schedule, 3_600_000);
    const entry = (extra: Record<string, unknown>) => ({ resource: { ...appointmentOn(slot, p.id, c.practitioner.id), ...extra }, request: { method: 'POST', url: 'Appointment' } });
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [entry({ description: 'first' }), entry({ description: 'second' })] };
    expectOutcome(await call(t.base, 'POST', '', bundle), 409);
    expect(await searchResources(t.base, `Appointment?slot=Slot/${slot.id}`)).toEqual([]);
    expect((await call(t.base, 'GET', `/Slot/${slot.id}`)).body.status).toBe('free');
  });
});
