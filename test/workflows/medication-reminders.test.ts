/**
 * Medication reminders from dosageInstruction.timing: Communications to the patient while the
 * request is active, none once it is stopped (checked when each reminder fires), none outside the
 * timing's bounds.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { until } from '../support/wait.js';
import { create, people, prescription, prescriptionEnv, type People } from './medication-support.js';

/** The reminders about one request (R4 has no Communication 'about' search parameter: by subject, then filtered). */
const reminders = async (base: string, mr: any) =>
  (await searchResources(base, `Communication?${new URLSearchParams({ subject: mr.subject.reference, category: 'reminder', _count: '1000' })}`)).filter((c) => c.about?.[0]?.reference === `MedicationRequest/${mr.id}`);
const everySecond = (repeat: Record<string, unknown> = {}) => [{ text: '1 capsule', timing: { repeat: { frequency: 1, period: 1, periodUnit: 's', ...repeat } } }];

describe.each(ENGINES)('prescriptions: medication reminders on %s', (engine) => {
  const t = useTestServer(engine, prescriptionEnv());
  let who: People;

  it('sends reminders to the patient from the timing while active, and stops when the request is stopped', async () => {
    who = await people(t.base);
    const mr = await create(t.base, prescription(who, { authoredOn: new Date().toISOString(), dosageInstruction: everySecond({ boundsDuration: { value: 1, unit: 'h', system: 'http://unitsofmeasure.org', code: 'h' } }) }));
    const sent = await until(async () => {
      const list = await reminders(t.base, mr);
      return list.length >= 2 && list;
    });
    expect(sent[0]).toMatchObject({
      status: 'completed',
      category: [{ coding: [{ code: 'reminder' }] }],
      subject: { reference: `Patient/${who.patient.id}` },
      recipient: [{ reference: `Patient/${who.patient.id}` }],
      about: [{ reference: `MedicationRequest/${mr.id}` }],
    });
    expect(sent[0].payload[0].contentString).toBe('Time to take Amoxicillin 250 mg capsule: 1 capsule');
    // One Communication per reminder time.
    expect(new Set(sent.map((c: any) => c.sent)).size).toBe(sent.length);

    const stopped = await call(t.base, 'PUT', `/MedicationRequest/${mr.id}`, { ...mr, status: 'stopped' });
    expect(stopped.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500)); // a reminder already due may still be on its way
    const atStop = (await reminders(t.base, mr)).length;
    await new Promise((r) => setTimeout(r, 2500));
    expect((await reminders(t.base, mr)).length).toBe(atStop);
  });

  it('sends nothing outside the bounds, for drafts, or without a timing', async () => {
    const ended = await create(t.base, prescription(who, { dosageInstruction: everySecond({ boundsPeriod: { start: '2025-01-01T00:00:00Z', end: '2025-01-08T00:00:00Z' } }) }));
    const draft = await create(t.base, prescription(who, { status: 'draft', authoredOn: new Date().toISOString(), dosageInstruction: everySecond() }));
    const untimed = await create(t.base, prescription(who));
    // A request that does get reminders, as the witness that the queue is running.
    const witness = await create(t.base, prescription(who, { authoredOn: new Date().toISOString(), dosageInstruction: everySecond({ boundsDuration: { value: 3, unit: 's', code: 's' } }) }));
    await until(async () => (await reminders(t.base, witness)).length >= 2);
    await new Promise((r) => setTimeout(r, 1000));
    for (const mr of [ended, draft, untimed]) expect(await reminders(t.base, mr)).toHaveLength(0);
    // The witness's bounds end after 3 s: at most its reminders at 0, 1 and 2 s.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await reminders(t.base, witness)).length).toBeLessThanOrEqual(3);
  });

  it('timeOfDay: a reminder at that wall-clock time (server time zone)', async () => {
    const at = new Date(Date.now() + 4000); // time for the change event to be relayed and scheduled first
    at.setMilliseconds(0);
    const hhmmss = [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
    const mr = await create(t.base, prescription(who, { authoredOn: new Date().toISOString(), dosageInstruction: [{ text: 'at bedtime', timing: { repeat: { timeOfDay: [hhmmss] } } }] }));
    const [sent] = await until(async () => {
      const list = await reminders(t.base, mr);
      return list.length > 0 && list;
    });
    expect(Date.parse(sent.sent)).toBe(at.getTime());
    expect(sent.payload[0].contentString).toBe('Time to take Amoxicillin 250 mg capsule: at bedtime');
  });
});
