/**
 * Appointment reminders, after commit: a change consumer sees each committed Appointment version
 * and schedules one delayed job per lead time (APPOINTMENT_REMINDER_LEAD_TIMES) at start − lead.
 * The job id names (tenant, appointment, lead, start), so re-handled change events never add a
 * second job, and a rescheduled Appointment (new start) gets jobs of its own.
 *
 * Jobs are not removed on cancel or reschedule: when one fires it re-reads the Appointment and
 * does nothing unless it is still booked at the same start. Lead times already past when the
 * booking is seen are skipped (a booking 3 h ahead gets the 2 h reminder, not the 24 h one).
 *
 * Firing: per delivery channel one Communication (identifier = reminder + channel, created with
 * If-None-Exist so retries find it), status in-progress → sent → completed. A delivery that throws
 * retries the job; a completed Communication is never sent again.
 */
import type { Appointment, Communication, Patient } from 'fhir/r4.js';
import type { Logger } from 'pino';
import type { InteractionContext } from '../interactions/context.js';
import { Writer } from '../interactions/writer.js';
import type { JobInfo, JobQueue } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from '../subscriptions/consumers.js';
import type { AppointmentsConfig } from './appointments-config.js';
import { patientOf, refId } from './appointments-model.js';
import { deliveriesFor, MEDIUM, ReminderSender, type Delivery } from './reminders-channels.js';

export const REMINDER_CHANGES_QUEUE = 'workflow-appointment-reminders';
export const REMINDER_FIRE_QUEUE = 'workflow-appointment-reminder-fire';
export const REMINDER_IDENTIFIER_SYSTEM = 'urn:carebridge:appointment-reminder';

interface FireJob {
  tenant: string;
  appointmentId: string;
  start: string;
  leadMs: number;
}

export interface ReminderDeps {
  tenants: Tenants;
  queue: JobQueue;
  config: AppointmentsConfig;
  logger: Logger;
  /** FHIR base for contexts of the server's own writes. */
  baseUrl: string;
}

async function currentResource<T>(ctx: InteractionContext, type: string, id: string): Promise<T | undefined> {
  const v = await ctx.store.current(ctx.store.db, type, id);
  return v && !v.deleted && v.content ? (JSON.parse(v.content) as T) : undefined;
}

/** The consumer (its worker on REMINDER_CHANGES_QUEUE) and the worker of the delayed jobs. */
export function appointmentReminders(deps: ReminderDeps): ChangeConsumer {
  const sender = new ReminderSender(deps.config, deps.logger);
  const contextOf = async (tenant: string): Promise<InteractionContext> => ({ store: await deps.tenants.store(tenant), baseUrl: deps.baseUrl });
  deps.queue.process<FireJob>(REMINDER_FIRE_QUEUE, (job) => fire(job, deps, sender, contextOf), { concurrency: 4 });
  return {
    queue: REMINDER_CHANGES_QUEUE,
    watchedTypes: async () => new Set(['Appointment']),
    async handle(job: JobInfo<ChangeJob>) {
      const change = job.data;
      if (change.action === 'delete' || deps.config.reminderLeadTimesMs.length === 0) return;
      const appointment = await currentResource<Appointment>(await contextOf(change.tenant), 'Appointment', change.id);
      if (appointment?.status !== 'booked' || !appointment.start) return;
      const start = Date.parse(appointment.start);
      const now = Date.now();
      const jobs = deps.config.reminderLeadTimesMs
        .filter((leadMs) => start - leadMs > now)
        .map((leadMs) => ({
          data: { tenant: change.tenant, appointmentId: change.id, start: appointment.start!, leadMs } satisfies FireJob,
          opts: { jobId: `reminder.${change.tenant}.${change.id}.${leadMs}.${start}`, delayMs: start - leadMs - now, attempts: 8, backoff: { delayMs: 5000, maxDelayMs: 600_000 } },
        }));
      await deps.queue.addBulk(REMINDER_FIRE_QUEUE, jobs);
    },
  };
}

async function fire(job: JobInfo<FireJob>, deps: ReminderDeps, sender: ReminderSender, contextOf: (tenant: string) => Promise<InteractionContext>): Promise<void> {
  const { tenant, appointmentId, start, leadMs } = job.data;
  const ctx = await contextOf(tenant);
  const appointment = await currentResource<Appointment>(ctx, 'Appointment', appointmentId);
  // Cancelled, deleted or moved since the job was scheduled: this reminder is void.
  if (appointment?.status !== 'booked' || appointment.start !== start) return;
  const patientRef = patientOf(appointment);
  const patientId = refId(patientRef, 'Patient');
  const patient = patientId ? await currentResource<Patient>(ctx, 'Patient', patientId) : undefined;
  if (!patient || !patientRef) return;
  const text = reminderText(appointment, deps.config.timeZone);
  for (const delivery of deliveriesFor(patient)) {
    const key = `${appointmentId}.${leadMs}.${Date.parse(start)}.${delivery.channel}`;
    const communication = await ctx.store.db.transaction(async (tx) => {
      const outcome = await new Writer(ctx, tx).create(communicationOf(appointmentId, patientRef.reference!, delivery, key, text), {
        ifNoneExist: `identifier=${REMINDER_IDENTIFIER_SYSTEM}|${key}`,
      });
      return (outcome.resource ?? JSON.parse(outcome.version!.content!)) as Communication;
    });
    if (communication.status === 'completed') continue;
    await sender.send(delivery, { subject: 'Appointment reminder', text, appointment: `Appointment/${appointmentId}`, communication: `Communication/${communication.id}` });
    await ctx.store.db.transaction((tx) => new Writer(ctx, tx).update({ ...communication, status: 'completed', sent: new Date().toISOString() } as Communication, communication.id!));
  }
}

function communicationOf(appointmentId: string, patient: string, delivery: Delivery, key: string, text: string): Communication {
  return {
    resourceType: 'Communication',
    identifier: [{ system: REMINDER_IDENTIFIER_SYSTEM, value: key }],
    // In-app: the Communication is the delivery; other channels complete once sent.
    status: delivery.channel === 'in-app' ? 'completed' : 'in-progress',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'reminder' }] }],
    medium: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', code: MEDIUM[delivery.channel] }], text: delivery.channel }],
    subject: { reference: patient },
    about: [{ reference: `Appointment/${appointmentId}` }],
    recipient: [{ reference: patient }],
    ...(delivery.channel === 'in-app' ? { sent: new Date().toISOString() } : {}),
    payload: [{ contentString: text }],
  };
}

function reminderText(appointment: Appointment, timeZone: string): string {
  const when = new Intl.DateTimeFormat('en-GB', { timeZone, dateStyle: 'full', timeStyle: 'short' }).format(new Date(appointment.start!));
  const what = appointment.serviceType?.[0]?.text ?? appointment.description ?? 'your appointment';
  return `Reminder: ${what} on ${when} (${timeZone}).`;
}
