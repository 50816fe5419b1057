/**
 * The appointments workflow, wired in at server start: the booking write rule (atomic with each
 * write), the change consumers (after commit: reminders, slot generation), the daily roll of the
 * slot horizon, and the settings the FHIR routes read. Routes: appointments-routes.ts; the iCal
 * feed: calendar-feed.ts.
 */
import type { Logger } from 'pino';
import { registerWriteRule } from '../interactions/write-rules.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer } from '../subscriptions/consumers.js';
import type { AppointmentsConfig } from './appointments-config.js';
import { appointmentBookingRule } from './appointments-rules.js';
import { setAppointmentsConfig } from './appointments-settings.js';
import { appointmentReminders } from './reminders.js';
import { slotGeneration } from './scheduling-consumer.js';
import { startSlotRoll } from './scheduling-roll.js';

export function registerAppointmentsWorkflow(config: AppointmentsConfig): void {
  registerWriteRule(appointmentBookingRule);
  setAppointmentsConfig(config);
}

export function appointmentConsumers(deps: { tenants: Tenants; queue: JobQueue; config: AppointmentsConfig; logger: Logger; baseUrl: string }): ChangeConsumer[] {
  startSlotRoll(deps); // not a change consumer: the daily roll of the slot horizon, on the same queue
  return [appointmentReminders(deps), slotGeneration(deps)];
}
