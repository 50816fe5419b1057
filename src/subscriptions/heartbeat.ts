/**
 * Heartbeats of topic-based rest-hook subscriptions (backport-heartbeat-period, seconds): when a
 * subscription has sent nothing for its period, a `heartbeat` notification (history Bundle, status
 * only, events-since-subscription-start) goes out. A tick every HEARTBEAT_TICK_MS finds the due
 * ones and queues a job per (subscription, period slot): with Redis, one per slot for all
 * processes. The job takes the delivery lease (never interleaves with event delivery) and
 * re-checks that the heartbeat is still due. A failed heartbeat is logged and not retried (the
 * next one follows one period later); it does not change the subscription's status.
 */
import { randomUUID } from 'node:crypto';
import type { Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import type { JobInfo, JobQueue } from '../jobs/queue.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { tenantSchemasWith, type Tenants } from '../store/tenants.js';
import { readState } from './numbering.js';
import { tenantOfSchema } from './relay.js';
import { channelHeaders, sendRequest } from './payload.js';
import { isTopicSubscription, topicNotification } from './topic-notification.js';
import { SUBSCRIPTION } from './validate.js';

export const HEARTBEAT_QUEUE = 'subscription-heartbeat';
const HEARTBEAT_TICK_MS = 1000;

interface HeartbeatJob {
  tenant: string;
  subscriptionId: string;
}

const DUE = `heartbeat_seconds IS NOT NULL AND coalesce(last_sent_at, updated_at) <= now() - make_interval(secs => heartbeat_seconds)`;

export class Heartbeats {
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly tenants: Tenants,
    private readonly queue: JobQueue,
    private readonly logger: Logger,
    private readonly fhirBase: (tenant: string) => string,
  ) {}

  start(): void {
    this.queue.process<HeartbeatJob>(HEARTBEAT_QUEUE, (job) => this.onHeartbeat(job), { concurrency: 4 });
    const tick = () => {
      this.timer = setTimeout(() => void this.tick().finally(() => !this.closed && tick()), HEARTBEAT_TICK_MS);
    };
    tick();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    try {
      for (const schema of await tenantSchemasWith(this.tenants.db, 'subscription_state', 'heartbeat_seconds')) {
        const due = await this.tenants.db.query<{ subscription_id: string; heartbeat_seconds: number }>(
          `SELECT subscription_id, heartbeat_seconds FROM ${quoteIdent(schema)}.subscription_state WHERE ${DUE}`,
        );
        if (due.rows.length === 0) continue;
        const tenant = schema.replace(/^tenant_/, '');
        await this.queue.addBulk<HeartbeatJob>(
          HEARTBEAT_QUEUE,
          due.rows.map((r) => ({
            data: { tenant, subscriptionId: r.subscription_id },
            opts: { jobId: `${tenant}.${r.subscription_id}.hb-${Math.floor(Date.now() / (Math.max(1, r.heartbeat_seconds) * 1000))}` },
          })),
        );
      }
    } catch (error) {
      if (!this.closed) this.logger.warn({ err: error }, 'subscription heartbeat tick failed');
    }
  }

  async onHeartbeat(job: JobInfo<HeartbeatJob>): Promise<void> {
    const { tenant, subscriptionId } = job.data;
    const store = await this.tenants.store(tenant);
    const s = quoteIdent(store.schema);
    const lease = randomUUID();
    // The delivery lease, taken only while the heartbeat is due and nothing waits for delivery.
    const got = await store.db.query(
      `UPDATE ${s}.subscription_state SET lease_token = $2, lease_until = now() + interval '60 seconds'
       WHERE subscription_id = $1 AND ${DUE} AND delivered >= events_since_start AND (lease_until IS NULL OR lease_until < now())
       RETURNING 1`,
      [subscriptionId, lease],
    );
    if (got.rows.length === 0) return;
    try {
      await this.send(store, subscriptionId);
    } catch (error) {
      this.logger.warn({ err: error, subscription: subscriptionId }, 'subscription heartbeat failed');
    } finally {
      await store.db.query(
        `UPDATE ${s}.subscription_state SET last_sent_at = now(), lease_token = NULL, lease_until = NULL WHERE subscription_id = $1 AND lease_token = $2`,
        [subscriptionId, lease],
      );
    }
  }

  private async send(store: ResourceStore, subscriptionId: string): Promise<void> {
    const current = await store.current(store.db, SUBSCRIPTION, subscriptionId);
    const sub = current?.content && !current.deleted ? (JSON.parse(current.content) as Subscription) : undefined;
    if (!sub || !isTopicSubscription(sub) || sub.channel.type !== 'rest-hook' || !sub.channel.endpoint) return;
    if (sub.status !== 'active' && sub.status !== 'error') return;
    const state = await readState(store.db, store.schema, subscriptionId);
    const bundle = await topicNotification(store, sub, this.fhirBase(tenantOfSchema(store.schema)), { type: 'heartbeat', eventsSinceStart: state.eventsSinceStart, events: [] });
    await sendRequest({ method: 'POST', url: sub.channel.endpoint, headers: { ...channelHeaders(sub), 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) }, sub);
  }
}
