/**
 * Wiring of the prescription and lab-order workflows (called from src/workflows/index.ts at server
 * start): the MedicationRequest lifecycle write rule, the share-link key, and the change consumers
 * (dispense → completion, medication reminders, order Tasks for lab orders and referrals).
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { registerWriteRule } from '../interactions/write-rules.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer } from '../subscriptions/consumers.js';
import { OrderTaskConsumer } from './lab-orders.js';
import { DispenseCompletionConsumer } from './medication-dispense.js';
import { medicationRequestLifecycle } from './medication-lifecycle.js';
import { MedicationReminders } from './medication-reminders.js';
import { configurePlacerSystem } from './medication-templates.js';
import { configureShareLinks } from './pdf-share.js';

export function registerPrescriptionWorkflows(config: Pick<Config, 'shareLinkSecret' | 'hl7v2Outbound'>): void {
  registerWriteRule(medicationRequestLifecycle);
  configureShareLinks(config.shareLinkSecret);
  configurePlacerSystem(config.hl7v2Outbound.placerSystem);
}

export function prescriptionConsumers(deps: { tenants: Tenants; queue: JobQueue; logger: Logger }): ChangeConsumer[] {
  const reminders = new MedicationReminders(deps.tenants, deps.queue, deps.logger);
  reminders.start();
  return [new DispenseCompletionConsumer(deps.tenants), new OrderTaskConsumer(deps.tenants), reminders.consumer()];
}
