/**
 * The appointments settings of this process, for the FHIR routes (which see only an
 * InteractionContext). Set once by registerAppointmentsWorkflow at server start; several servers
 * in one process (tests) share it, so they must use the same slot settings.
 */
import { loadAppointmentsConfig, type AppointmentsConfig } from './appointments-config.js';

let current: AppointmentsConfig | undefined;

export function setAppointmentsConfig(config: AppointmentsConfig): void {
  current = config;
}

export function appointmentsConfig(): AppointmentsConfig {
  return (current ??= loadAppointmentsConfig({}));
}
