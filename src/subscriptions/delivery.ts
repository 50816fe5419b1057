/**
 * Ordered delivery of a subscription's numbered events (rest-hook).
 *
 * One sender per subscription at a time, across every process: a lease on the subscription_state
 * row (lease_token, lease_until; renewed per event, expires if its holder dies). The holder sends
 * the undelivered events in event-number order, records `delivered` after each success, and
 * re-checks after releasing the lease (an event numbered while it held the lease, whose own job
 * found the lease taken, is then picked up). At-least-once: a crash between the POST and the
 * `delivered` update repeats that event, with the same event number.
 *
 * Failures: the failing job releases the lease, sets next_attempt_at (capped exponential backoff,
 * no limit on attempts) and queues a delayed job for that time (job id per retry time: one
 * retry per subscription, from any process). Jobs for newer events find next_attempt_at in the
 * future and queue the same retry (a no-op when it exists; recreates it when an in-process queue
 * lost it). After ERROR_AFTER consecutive failures the Subscription is set to status error with
 * the reason; the next success sets it back to active. A sweep (every SWEEP_MS, and at start)
 * re-queues subscriptions whose pending events have no live job.
 */
import { randomUUID } from 'node:crypto';
import type { Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import { backoffDelay, DEFAULT_BACKOFF, type JobInfo, type JobQueue } from '../jobs/queue.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import { tenantSchemasWith, type Tenants } from '../store/tenants.js';
import { eventsBetween } from './numbering.js';
import { tenantOfSchema } from './relay.js';
import { DeliveryError, notificationRequest, sendRequest } from './payload.js';
import { setSubscriptionStatus } from './status.js';
import { isTopicSubscription, topicNotification } from './topic-notification.js';
import type { WsHub } from './ws-hub.js';
import { SUBSCRIPTION } from './validate.js';

export const DELIVER_QUEUE = 'subscription-notify';
/** Consecutive failed attempts after which the subscription is set to error. */
export const ERROR_AFTER = 3;
const LEASE = '60 seconds';
const BATCH = 100;
const SWEEP_MS = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Delete delivered events older than `retention` (SUBSCRIPTION_EVENT_RETENTION): $events answers
 * from what is kept; undelivered events are never pruned. Returns how many went.
 */
export async function pruneDeliveredEvents(db: SqlClient, schema: string, retention: string): Promise<number> {
  const s = quoteIdent(schema);
  const r = await db.query(
    `DELETE FROM ${s}.subscription_event e USING ${s}.subscription_state st
     WHERE e.subscription_id = st.subscription_id AND e.event_number <= st.delivered AND e.created_at < now() - $1::interval`,
    [retention],
  );
  return r.rowCount;
}
/** A scheduled retry may start this early (timers and the database clock differ slightly). */
const EARLY = '250 milliseconds';

export interface DeliverJob {
  tenant: string;
  subscriptionId: string;
}

export class Delivery {
  private sweepTimer?: NodeJS.Timeout;
  private prunedAt = 0;
  private closed = false;

  constructor(
    private readonly tenants: Tenants,
    private readonly queue: JobQueue,
    private readonly logger: Logger,
    /** The FHIR base of a tenant, written into notifications ('' → relative references). */
    private readonly fhirBase: (tenant: string) => string,
    /** Websocket subscriptions publish here. */
    private readonly hub?: WsHub,
    /** Delivered events older than this are pruned by the sweep (a PostgreSQL interval). */
    private readonly retention = '7 days',
  ) {}

  start(concurrency: number): void {
    this.queue.process<DeliverJob>(DELIVER_QUEUE, (job) => this.onDeliver(job), { concurrency });
    const tick = () => {
      this.sweepTimer = setTimeout(() => void this.sweep().finally(() => !this.closed && tick()), SWEEP_MS);
    };
    void this.sweep().finally(() => !this.closed && tick());
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.sweepTimer);
  }

  /** Ask for delivery of a subscription's pending events (key: what triggered it, for dedupe). */
  async enqueue(tenant: string, subscriptionIds: string[], key: string, delayMs = 0): Promise<void> {
    await this.queue.addBulk<DeliverJob>(
      DELIVER_QUEUE,
      subscriptionIds.map((subscriptionId) => ({
        data: { tenant, subscriptionId },
        // attempts/backoff cover database trouble only; endpoint failures are scheduled retries (below).
        opts: { jobId: `${tenant}.${subscriptionId}.${key}`, attempts: Infinity, backoff: DEFAULT_BACKOFF, delayMs },
      })),
    );
  }

  async onDeliver(job: JobInfo<DeliverJob>): Promise<void> {
    const { tenant, subscriptionId } = job.data;
    const store = await this.tenants.store(tenant);
    const s = quoteIdent(store.schema);
    for (;;) {
      const lease = await this.acquire(store, subscriptionId);
      if (!lease) return;
      if (typeof lease !== 'string') {
        // In backoff after a failure: make sure a job runs when it ends (one per retry time, dedupe).
        return this.enqueue(tenant, [subscriptionId], `retry-${lease.retryAt}`, lease.retryAt - Date.now());
      }
      try {
        await this.sendPending(store, subscriptionId, lease);
      } catch (error) {
        if (!(error instanceof DeliveryError)) {
          // Database or Redis trouble: free the lease at once and let the queue retry the job.
          await store.db.query(`UPDATE ${s}.subscription_state SET lease_token = NULL, lease_until = NULL WHERE subscription_id = $1 AND lease_token = $2`, [subscriptionId, lease]).catch(() => undefined);
          throw error;
        }
        const retryAt = await this.recordFailure(store, subscriptionId, lease, error);
        if (retryAt !== undefined) await this.enqueue(tenant, [subscriptionId], `retry-${retryAt}`, retryAt - Date.now());
        return;
      }
      // Release; go round again only if events were numbered meanwhile (their jobs found the lease taken).
      const more = await store.db.query<{ more: boolean }>(
        `UPDATE ${s}.subscription_state SET lease_token = NULL, lease_until = NULL WHERE subscription_id = $1 AND lease_token = $2
         RETURNING delivered < events_since_start AS more`,
        [subscriptionId, lease],
      );
      if (!more.rows[0]?.more) return;
    }
  }

  /**
   * Take the lease when there is something to send, nobody holds it and no retry is pending:
   * its token; { retryAt } when only the backoff stands in the way; undefined otherwise.
   */
  private async acquire(store: ResourceStore, subscriptionId: string): Promise<string | { retryAt: number } | undefined> {
    const s = quoteIdent(store.schema);
    const token = randomUUID();
    const r = await store.db.query(
      `UPDATE ${s}.subscription_state SET lease_token = $2, lease_until = now() + interval '${LEASE}'
       WHERE subscription_id = $1 AND delivered < events_since_start
         AND (lease_until IS NULL OR lease_until < now())
         AND (next_attempt_at IS NULL OR next_attempt_at <= now() + interval '${EARLY}')
       RETURNING 1`,
      [subscriptionId, token],
    );
    if (r.rows.length > 0) return token;
    const why = await store.db.query<{ retry_at: string | Date | null }>(
      `SELECT next_attempt_at AS retry_at FROM ${s}.subscription_state
       WHERE subscription_id = $1 AND delivered < events_since_start AND (lease_until IS NULL OR lease_until < now())`,
      [subscriptionId],
    );
    const at = why.rows[0]?.retry_at;
    return at ? { retryAt: new Date(at).getTime() } : undefined;
  }

  private async sendPending(store: ResourceStore, subscriptionId: string, lease: string): Promise<void> {
    const s = quoteIdent(store.schema);
    for (;;) {
      const state = await store.db.query<{ delivered: string | number; events_since_start: string | number }>(
        `SELECT delivered, events_since_start FROM ${s}.subscription_state WHERE subscription_id = $1 AND lease_token = $2`,
        [subscriptionId, lease],
      );
      const row = state.rows[0];
      if (!row) return; // lease lost (expired and taken): the new holder continues
      const delivered = Number(row.delivered);
      const total = Number(row.events_since_start);
      if (delivered >= total) return;
      const current = await store.current(store.db, SUBSCRIPTION, subscriptionId);
      const sub = current && !current.deleted && current.content ? (JSON.parse(current.content) as Subscription) : undefined;
      if (!sub || sub.status === 'off' || (sub.end !== undefined && Date.parse(sub.end) <= Date.now())) {
        // Deleted, off or ended: pending events are dropped (never sent), not kept for later.
        await store.db.query(`UPDATE ${s}.subscription_state SET delivered = events_since_start WHERE subscription_id = $1 AND lease_token = $2`, [subscriptionId, lease]);
        return;
      }
      const events = await eventsBetween(store.db, store.schema, subscriptionId, delivered, total, BATCH);
      for (const event of events) {
        if (sub.channel.type === 'websocket') {
          // Sockets bound now get it (any process, ws-hub.ts); none bound: clients catch up with $events.
          const bundle = isTopicSubscription(sub) ? JSON.stringify(await topicNotification(store, sub, this.fhirBase(tenantOfSchema(store.schema)), { type: 'event-notification', eventsSinceStart: total, events: [event] })) : undefined;
          await this.hub?.publish({ tenant: store.schema.replace(/^tenant_/, ''), subscriptionId, ping: `ping ${subscriptionId}`, bundle });
        } else {
          const request = await notificationRequest(store, sub, event, total, this.fhirBase(tenantOfSchema(store.schema)));
          if (request) await sendRequest(request, sub);
        }
        const done = await store.db.query(
          `UPDATE ${s}.subscription_state SET delivered = $3, failures = 0, last_error = NULL, next_attempt_at = NULL, last_sent_at = now(),
             lease_until = now() + interval '${LEASE}', updated_at = now()
           WHERE subscription_id = $1 AND lease_token = $2 RETURNING 1`,
          [subscriptionId, lease, event.eventNumber],
        );
        if (done.rows.length === 0) return; // lease lost
        if (sub.status === 'error') {
          await setSubscriptionStatus(store, this.fhirBase(tenantOfSchema(store.schema)), this.logger, current!.versionId, sub, 'active');
          sub.status = 'active';
        }
      }
    }
  }

  /** Count the failure, release the lease, set the backoff; returns when to retry (ms epoch). */
  private async recordFailure(store: ResourceStore, subscriptionId: string, lease: string, error: unknown): Promise<number | undefined> {
    const message = error instanceof Error ? error.message : String(error);
    const s = quoteIdent(store.schema);
    const r = await store.db.query<{ failures: number }>(
      `UPDATE ${s}.subscription_state SET failures = failures + 1, last_error = $3, lease_token = NULL, lease_until = NULL, updated_at = now()
       WHERE subscription_id = $1 AND lease_token = $2 RETURNING failures`,
      [subscriptionId, lease, message],
    );
    const failures = r.rows[0]?.failures;
    if (failures === undefined) return undefined; // lease lost meanwhile: the new holder owns the state
    const delayMs = backoffDelay(failures, DEFAULT_BACKOFF);
    const at = await store.db.query<{ at: string | Date }>(
      `UPDATE ${s}.subscription_state SET next_attempt_at = now() + make_interval(secs => $2) WHERE subscription_id = $1 RETURNING next_attempt_at AS at`,
      [subscriptionId, delayMs / 1000],
    );
    const retryAt = new Date(at.rows[0]!.at).getTime();
    if (failures >= ERROR_AFTER) {
      const current = await store.current(store.db, SUBSCRIPTION, subscriptionId);
      const sub = current?.content && !current.deleted ? (JSON.parse(current.content) as Subscription) : undefined;
      if (sub?.status === 'active') await setSubscriptionStatus(store, this.fhirBase(tenantOfSchema(store.schema)), this.logger, current!.versionId, sub, 'error', `Notification failed ${failures} times: ${message}`);
    }
    return retryAt;
  }

  /** Enqueue delivery for subscriptions with pending events, no live lease and no retry due soon. */
  private async sweep(): Promise<void> {
    try {
      const schemas = await tenantSchemasWith(this.tenants.db, 'subscription_state');
      const bucket = Math.floor(Date.now() / SWEEP_MS);
      for (const schema of schemas) {
        const stuck = await this.tenants.db.query<{ subscription_id: string }>(
          `SELECT subscription_id FROM ${quoteIdent(schema)}.subscription_state
           WHERE delivered < events_since_start AND (lease_until IS NULL OR lease_until < now())
             AND (next_attempt_at IS NULL OR next_attempt_at < now() - interval '5 seconds')`,
        );
        if (stuck.rows.length > 0) await this.enqueue(schema.replace(/^tenant_/, ''), stuck.rows.map((r) => r.subscription_id), `sweep-${bucket}`);
      }
      if (Date.now() - this.prunedAt > PRUNE_EVERY_MS) {
        this.prunedAt = Date.now();
        for (const schema of schemas) await pruneDeliveredEvents(this.tenants.db, schema, this.retention);
      }
    } catch (error) {
      if (!this.closed) this.logger.warn({ err: error }, 'subscription delivery sweep failed');
    }
  }
}
