/**
 * The rolling horizon: once a day (shortly after midnight in SCHEDULING_TIMEZONE) every active
 * Schedule of every tenant gets the slots of the day that just entered SLOT_HORIZON_DAYS. A
 * chain of delayed jobs with one id per day: with Redis any number of processes start the same
 * chain and each day runs once; in-process it runs in this process (and once at start).
 */
import type { Logger } from 'pino';
import type { JobQueue } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import { listTenants } from '../tenants/directory.js';
import type { AppointmentsConfig } from './appointments-config.js';
import { generateAllSlots } from './scheduling-slots.js';
import { localEpochDay, localToInstant } from './scheduling-time.js';

export const SLOT_ROLL_QUEUE = 'workflow-slot-roll';
/** Minutes after local midnight the daily run is due. */
const AFTER_MIDNIGHT_S = 10 * 60;

interface RollJob {
  /** Local day (days since 1970-01-01 in the zone) the run is for. */
  day: number;
}

export function startSlotRoll(deps: { tenants: Tenants; queue: JobQueue; config: AppointmentsConfig; logger: Logger; baseUrl: string }): void {
  const { queue, config, logger } = deps;
  const enqueue = (day: number) => {
    const delayMs = Math.max(0, localToInstant(day, AFTER_MIDNIGHT_S, config.timeZone) - Date.now());
    // A closed queue (server stopping) refuses: the next start re-creates the chain.
    queue.add<RollJob>(SLOT_ROLL_QUEUE, { day }, { jobId: `slot-roll.${day}`, delayMs, attempts: 5, backoff: { delayMs: 60_000, maxDelayMs: 600_000 } }).catch(() => undefined);
  };
  queue.process<RollJob>(
    SLOT_ROLL_QUEUE,
    async (job) => {
      enqueue(job.data.day + 1);
      for (const tenant of await listTenants(deps.tenants)) {
        const result = await generateAllSlots({ store: await deps.tenants.store(tenant), baseUrl: deps.baseUrl }, config);
        logger.info({ tenant, ...result }, 'slot horizon rolled');
      }
    },
    { concurrency: 1 },
  );
  const today = localEpochDay(Date.now(), config.timeZone);
  enqueue(today);
  enqueue(today + 1);
}
