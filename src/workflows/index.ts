/**
 * Workflows wired in at server start (src/server.ts): write rules registered once, change
 * consumers handed to startSubscriptions. Each workflow keeps its own wiring in its own file.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer } from '../subscriptions/consumers.js';
import { appointmentConsumers, registerAppointmentsWorkflow } from './appointments.js';
import { prescriptionConsumers, registerPrescriptionWorkflows } from './medication-workflows.js';

export function registerWorkflows(config: Config): void {
  registerAppointmentsWorkflow(config.appointments);
  registerPrescriptionWorkflows(config); // prescriptions and lab orders: src/workflows/medication-workflows.ts
}

export function workflowConsumers(deps: { tenants: Tenants; queue: JobQueue; config: Config; logger: Logger }): ChangeConsumer[] {
  const baseUrl = deps.config.baseUrl ? `${deps.config.baseUrl}/fhir` : '';
  return [...appointmentConsumers({ ...deps, config: deps.config.appointments, baseUrl }), ...prescriptionConsumers(deps)];
}
