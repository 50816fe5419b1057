/**
 * Change consumers: everything that reacts to committed writes (rest-hook subscriptions, HL7 v2
 * outbound feeds, workflows) plugs in here rather than into the write path.
 *
 * The outbox relay (relay.ts) asks each consumer which resource types it wants and enqueues one
 * job per (consumer, event) on the consumer's own queue, job id `<tenant>.<seq>`. A queue per
 * consumer keeps their retries apart: a failing HL7 v2 endpoint never re-runs subscription
 * matching, and the reverse. Handlers run at least once per event, so they must be idempotent
 * (dedupe on the event's seq, or on the resource version).
 */
import type { JobInfo } from '../jobs/queue.js';
import type { SqlClient } from '../store/db.js';
import type { ChangeAction } from './outbox.js';

/** One committed change, as handed to consumers. */
export interface ChangeJob {
  tenant: string;
  /** The event's sequence number in its tenant (unique, increasing per commit order of writers). */
  seq: string;
  resourceType: string;
  id: string;
  versionId: number;
  action: ChangeAction;
  /**
   * For consumers with withCurrent: the resource's current row when the relay read the event
   * (null: no row). Older than a read made when the job runs, never older than the event.
   */
  current?: { versionId: number; deleted: boolean; content: string | null } | null;
}

export interface ChangeConsumer {
  /** The queue its change jobs go to; unique per consumer. */
  readonly queue: string;
  /** The resource types this consumer wants events of in a tenant; read in the relay's transaction. */
  watchedTypes(tx: SqlClient, schema: string): Promise<ReadonlySet<string>>;
  /** Handle one change; thrown errors retry the job (capped backoff) until attempts run out. */
  handle(job: JobInfo<ChangeJob>): Promise<void>;
  /**
   * Jobs carry the resource's current row (ChangeJob.current), read by the relay for the whole
   * batch in one statement: for consumers that read it first and then mostly have nothing to do,
   * one statement per batch instead of one per event.
   */
  readonly withCurrent?: boolean;
  /** Jobs handled at once in each process (default 4). */
  readonly concurrency?: number;
  /** Attempts before a change job lands on the dead list (default CHANGE_JOB_ATTEMPTS). */
  readonly attempts?: number;
}
