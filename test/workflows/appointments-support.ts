/** Shared set-up of the appointments suites: a clinic with one practitioner's rules, over HTTP. */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { redisEnv } from '../support/redis.js';
import { call } from '../support/server.js';

/** Server environment: Redis-backed jobs when REDIS_URL is set (own key prefix, deleted after the suite), short reminders. */
export function appointmentsEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...redisEnv('cbappt'),
    APPOINTMENT_REMINDER_LEAD_TIMES: '4s',
    SLOT_HORIZON_DAYS: '3',
    APPOINTMENT_SLOT_MINUTES: '30',
    ...extra,
  };
}

export async function create(base: string, resource: Record<string, unknown>): Promise<any> {
  const r = await call(base, 'POST', `/${resource.resourceType}`, resource);
  expect(r.status, r.text).toBe(201);
  return r.body;
}

export interface Clinic {
  practitioner: any;
  role: any;
  location: any;
  schedule: any;
}

/** A practitioner available every day 08:00–18:00 (UTC) at one location, and their Schedule. */
export async function clinic(base: string): Promise<Clinic> {
  const practitioner = await create(base, { resourceType: 'Practitioner', name: [{ family: 'Okafor', given: ['Ada'] }] });
  const location = await create(base, { resourceType: 'Location', name: 'Outpatients 2' });
  const role = await create(base, {
    resourceType: 'PractitionerRole',
    practitioner: { reference: `Practitioner/${practitioner.id}` },
    availableTime: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], availableStartTime: '08:00:00', availableEndTime: '18:00:00' }],
  });
  const schedule = await create(base, {
    resourceType: 'Schedule',
    active: true,
    serviceType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/service-type', code: '124' }], text: 'General practice' }],
    actor: [{ reference: `Practitioner/${practitioner.id}` }, { reference: `PractitionerRole/${role.id}` }, { reference: `Location/${location.id}` }],
  });
  return { practitioner, role, location, schedule };
}

export async function patient(base: string, extra: Record<string, unknown> = {}): Promise<any> {
  return create(base, { resourceType: 'Patient', name: [{ family: `P${randomBytes(3).toString('hex')}` }], telecom: [{ system: 'email', value: 'p@example.org' }], ...extra });
}

/** A free Slot on the schedule starting in `inMs` (hand-made: generated ones start on the grid). */
export async function soonSlot(base: string, schedule: any, inMs: number): Promise<any> {
  const start = Date.now() + inMs;
  return create(base, { resourceType: 'Slot', schedule: { reference: `Schedule/${schedule.id}` }, status: 'free', start: new Date(start).toISOString(), end: new Date(start + 15 * 60_000).toISOString() });
}

export function appointmentOn(slot: any, patientId: string, practitionerId: string, status = 'booked'): Record<string, unknown> {
  return {
    resourceType: 'Appointment',
    status,
    start: slot.start,
    end: slot.end,
    slot: [{ reference: `Slot/${slot.id}` }],
    participant: [
      { actor: { reference: `Patient/${patientId}` }, status: 'accepted' },
      { actor: { reference: `Practitioner/${practitionerId}` }, status: 'accepted' },
    ],
  };
}

/** A minimal SMTP receiver (no TLS, no auth): enough for nodemailer to deliver; collects messages. */
export async function smtpStandIn(): Promise<{ url: string; messages: string[]; close(): Promise<void> }> {
  const { createServer } = await import('node:net');
  const messages: string[] = [];
  const server = createServer((socket) => {
    let buffer = '';
    let inData = false;
    socket.write('220 stand-in ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          messages.push(buffer.slice(0, end));
          buffer = buffer.slice(end + 5);
          inData = false;
          socket.write('250 queued\r\n');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol).toUpperCase();
        buffer = buffer.slice(eol + 2);
        if (line.startsWith('EHLO') || line.startsWith('HELO')) socket.write('250 stand-in\r\n');
        else if (line.startsWith('DATA')) {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (line.startsWith('QUIT')) socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `smtp://127.0.0.1:${port}`, messages, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
