/**
 * Slots follow their rules: after a Schedule, or the PractitionerRole / HealthcareService /
 * Location it is for, changes (committed), the Schedule's missing slots are generated. The run is
 * idempotent (scheduling-slots.ts), so at-least-once change events are harmless. The horizon
 * rolls forward daily (scheduling-roll.ts) or on POST [base]/Schedule/$generate-slots.
 */
import type { Logger } from 'pino';
import { FhirError } from '../fhir/outcome.js';
import type { InteractionContext } from '../interactions/context.js';
import { findMatches } from '../interactions/matching.js';
import type { JobInfo } from '../jobs/queue.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from '../subscriptions/consumers.js';
import type { AppointmentsConfig } from './appointments-config.js';
import { generateSlots } from './scheduling-slots.js';

const RULE_SOURCES = ['PractitionerRole', 'HealthcareService', 'Location'];

export function slotGeneration(deps: { tenants: Tenants; config: AppointmentsConfig; logger: Logger; baseUrl: string }): ChangeConsumer {
  return {
    queue: 'workflow-slot-generation',
    concurrency: 1,
    watchedTypes: async () => new Set(['Schedule', ...RULE_SOURCES]),
    async handle(job: JobInfo<ChangeJob>) {
      const change = job.data;
      if (change.action === 'delete') return;
      const ctx: InteractionContext = { store: await deps.tenants.store(change.tenant), baseUrl: deps.baseUrl };
      const schedules =
        change.resourceType === 'Schedule'
          ? [change.id]
          : (await findMatches(ctx.store.db, ctx.store.schema, 'Schedule', `actor=${change.resourceType}/${change.id}`, 1000, searchRegistryOf(ctx.store))).map((s) => s.id);
      for (const id of schedules) {
        try {
          await generateSlots(ctx, id, deps.config);
        } catch (error) {
          // No rules yet (422) or gone (404): nothing to generate until the next change.
          if (!(error instanceof FhirError)) throw error;
          deps.logger.debug({ schedule: id, reason: error.message }, 'slots not generated');
        }
      }
    },
  };
}
