/** Slot generation details over HTTP: local time zone, slot-minutes extension, notAvailable, Location hours. */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { appointmentsEnv, create } from './appointments-support.js';

const ZONE = 'America/New_York';
const localDate = (iso: string) => new Intl.DateTimeFormat('en-CA', { timeZone: ZONE }).format(new Date(iso));
const localTime = (iso: string) => new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));

describe.each(ENGINES)('slot generation (%s)', (engine) => {
  const t = useTestServer(engine, appointmentsEnv({ SCHEDULING_TIMEZONE: ZONE, SLOT_HORIZON_DAYS: '4' }));

  it('follows the rules in SCHEDULING_TIMEZONE, the Schedule slot length, and skips notAvailable', async () => {
    const tomorrow = localDate(new Date(Date.now() + 86_400_000).toISOString());
    const role = await create(t.base, {
      resourceType: 'PractitionerRole',
      availableTime: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], availableStartTime: '09:00:00', availableEndTime: '10:00:00' }],
      // All of tomorrow (local) is off; the 24-hour window around it covers it whatever the offset.
      notAvailable: [{ description: 'Training', during: { start: `${tomorrow}T00:00:00-05:00`, end: `${tomorrow}T23:59:59-05:00` } }],
    });
    const schedule = await create(t.base, {
      resourceType: 'Schedule',
      extension: [{ url: 'http://carebridge.example/fhir/StructureDefinition/slot-minutes', valuePositiveInt: 20 }],
      actor: [{ reference: `PractitionerRole/${role.id}` }],
    });
    const r = await call(t.base, 'POST', `/Schedule/${schedule.id}/$generate-slots`);
    expect(r.status, r.text).toBe(200);
    const slots = await searchResources(t.base, `Slot?schedule=Schedule/${schedule.id}&_sort=start&_count=100`);
    expect(slots.length).toBeGreaterThanOrEqual(6); // ≥ 2 open days × 3 slots
    for (const s of slots) {
      expect(['09:00', '09:20', '09:40']).toContain(localTime(s.start));
      expect(Date.parse(s.end) - Date.parse(s.start)).toBe(20 * 60_000);
      expect(localDate(s.start)).not.toBe(tomorrow);
      expect(Date.parse(s.start)).toBeGreaterThan(Date.now() - 60_000);
    }
  });

  it('takes Location hoursOfOperation when the Schedule is for a Location; 422 without any rules', async () => {
    const location = await create(t.base, { resourceType: 'Location', name: 'X-ray', hoursOfOperation: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], openingTime: '13:00:00', closingTime: '14:00:00' }] });
    const schedule = await create(t.base, { resourceType: 'Schedule', actor: [{ reference: `Location/${location.id}` }] });
    expect((await call(t.base, 'POST', `/Schedule/${schedule.id}/$generate-slots`)).status).toBe(200);
    const slots = await searchResources(t.base, `Slot?schedule=Schedule/${schedule.id}&_count=100`);
    expect(slots.length).toBeGreaterThan(0);
    for (const s of slots) expect(['13:00', '13:30']).toContain(localTime(s.start));

    // The type-level run (the daily roll's work) finds every slot there already.
    const all = await call(t.base, 'POST', '/Schedule/$generate-slots');
    expect(all.status, all.text).toBe(200);
    expect(all.body.parameter.find((p: any) => p.name === 'created').valueInteger).toBe(0);
    expect(all.body.parameter.find((p: any) => p.name === 'existing').valueInteger).toBeGreaterThan(slots.length);

    const bare = await create(t.base, { resourceType: 'Schedule', actor: [{ reference: 'Practitioner/somebody' }] });
    const refused = await call(t.base, 'POST', `/Schedule/${bare.id}/$generate-slots`);
    expect(refused.status).toBe(422);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    expect(await searchResources(t.base, `Slot?schedule=Schedule/${bare.id}`)).toEqual([]);
  });
});
