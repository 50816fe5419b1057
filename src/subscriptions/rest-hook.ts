/**
 * R4 Subscription, rest-hook channel (hl7.org/fhir/R4/subscription.html).
 *
 * Two job kinds:
 * - fhir-change (one per change_event, from the relay): find the tenant's subscriptions whose
 *   criteria match the changed resource, by running the criteria through the search engine with
 *   `_id=<id>` added (findMatches: the one definition of matching), and enqueue one notification
 *   per match, job id `<tenant>.<subscription>.<seq>` (dedupe).
 * - subscription-notify: POST to channel.endpoint with channel.header; body = the resource version
 *   of the event when channel.payload is application/fhir+json, none when the payload is empty.
 *   Retried forever with capped exponential backoff. After ERROR_AFTER failed attempts the
 *   subscription goes to status error (with `error`); the next delivery that succeeds sets it
 *   back to active. Subscriptions in error still receive new events (queued, retried): none is
 *   dropped while an endpoint is down.
 *
 * Decisions: a delete is not notified (R4 criteria are a search, and a deleted resource matches
 * no search). An event whose version is no longer current when matched is not notified: the
 * newer version's own event is (a subscriber sees the latest state). Notifications of one
 * subscription are not ordered (they run concurrently and retries interleave).
 */
import type { Resource, Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import { FhirError } from '../fhir/outcome.js';
import { findMatches } from '../interactions/matching.js';
import { Writer } from '../interactions/writer.js';
import { DEFAULT_BACKOFF, type JobInfo, type JobQueue } from '../jobs/queue.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import type { Tenants } from '../store/tenants.js';
import type { SqlClient } from '../store/db.js';
import type { ChangeConsumer, ChangeJob } from './consumers.js';
import { JSON_PAYLOADS, splitCriteria, SUBSCRIPTION } from './validate.js';

/** The change queue of subscription matching (one job per event of a watched type). */
export const CHANGE_QUEUE = 'fhir-change';
export const NOTIFY_QUEUE = 'subscription-notify';
/** Failed attempts of one notification after which its subscription is set to error. */
export const ERROR_AFTER = 3;
const REQUEST_TIMEOUT_MS = 10_000;

export interface NotifyJob {
  tenant: string;
  subscriptionId: string;
  seq: string;
  resourceType: string;
  id: string;
  versionId: number;
}

interface ActiveSubscription {
  id: string;
  versionId: number;
  resource: Subscription;
  query: string;
}

export class RestHookNotifier {
  constructor(
    private readonly tenants: Tenants,
    private readonly queue: JobQueue,
    private readonly logger: Logger,
    private readonly baseUrl = '',
  ) {}

  /** Matching of changes against subscriptions, fed by the outbox relay. */
  changeConsumer(concurrency = 4): ChangeConsumer {
    return { queue: CHANGE_QUEUE, watchedTypes: subscriptionWatchedTypes, handle: (job) => this.onChange(job), concurrency };
  }

  /** Start delivering notifications in this process. */
  start(options: { notifyConcurrency: number }): void {
    this.queue.process<NotifyJob>(NOTIFY_QUEUE, (job) => this.onNotify(job), { concurrency: options.notifyConcurrency });
  }

  async onChange(job: JobInfo<ChangeJob>): Promise<void> {
    const e = job.data;
    if (e.action === 'delete') return;
    const store = await this.tenants.store(e.tenant);
    const subs = await subscriptionsFor(store, e.resourceType);
    if (subs.length === 0) return;
    const registry = searchRegistryOf(store);
    const notify: NotifyJob[] = [];
    for (const sub of subs) {
      const query = sub.query ? `${sub.query}&_id=${encodeURIComponent(e.id)}` : `_id=${encodeURIComponent(e.id)}`;
      let matches;
      try {
        matches = await findMatches(store.db, store.schema, e.resourceType, query, 1, registry);
      } catch (error) {
        // Criteria the engine no longer accepts (e.g. a custom parameter removed): skip this subscription only.
        this.logger.warn({ err: error, subscription: sub.id }, 'subscription criteria could not be evaluated');
        continue;
      }
      const match = matches[0];
      if (!match || match.versionId !== e.versionId) continue;
      notify.push({ tenant: e.tenant, subscriptionId: sub.id, seq: e.seq, resourceType: e.resourceType, id: e.id, versionId: e.versionId });
    }
    await this.queue.addBulk<NotifyJob>(
      NOTIFY_QUEUE,
      notify.map((n) => ({ data: n, opts: { jobId: `${n.tenant}.${n.subscriptionId}.${n.seq}`, attempts: Infinity, backoff: DEFAULT_BACKOFF } })),
    );
  }

  async onNotify(job: JobInfo<NotifyJob>): Promise<void> {
    const n = job.data;
    const store = await this.tenants.store(n.tenant);
    const current = await store.current(store.db, SUBSCRIPTION, n.subscriptionId);
    if (!current || current.deleted || !current.content) return; // subscription deleted: nothing to deliver
    const sub = JSON.parse(current.content) as Subscription;
    if (sub.status === 'off' || !sub.channel.endpoint || ended(sub)) return;
    const headers: Record<string, string> = {
      'x-carebridge-subscription': n.subscriptionId,
      'x-carebridge-event': `${n.tenant}.${n.seq}`,
    };
    for (const h of sub.channel.header ?? []) {
      const colon = h.indexOf(':');
      if (colon > 0) headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
    }
    // R4 subscription.html, rest-hook: without a payload the endpoint gets an empty POST; with one,
    // the resource is sent as an update (PUT) to [endpoint]/[type]/[id].
    let body: string | undefined;
    let method = 'POST';
    let url = sub.channel.endpoint;
    if (sub.channel.payload && JSON_PAYLOADS.has(sub.channel.payload)) {
      const version = await store.version(store.db, n.resourceType, n.id, n.versionId);
      if (!version?.content) return; // the version no longer exists (resource expunged)
      body = version.content;
      headers['content-type'] = 'application/fhir+json';
      method = 'PUT';
      url = `${url.replace(/\/+$/, '')}/${n.resourceType}/${encodeURIComponent(n.id)}`;
    }
    try {
      const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`HTTP ${res.status} from ${sub.channel.endpoint}`);
    } catch (error) {
      const message = error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}` : String(error);
      if (job.attemptsMade + 1 >= ERROR_AFTER && sub.status !== 'error') {
        await this.setStatus(store, current.versionId, sub, 'error', `Notification failed ${job.attemptsMade + 1} times: ${message}`);
      }
      throw new Error(message);
    }
    if (sub.status === 'error') await this.setStatus(store, current.versionId, sub, 'active');
  }

  /** Status changes are ordinary writes (new Subscription version); a concurrent change wins (412 ignored). */
  private async setStatus(store: ResourceStore, versionId: number, sub: Subscription, status: 'active' | 'error', error?: string): Promise<void> {
    const next: Subscription = { ...sub, status };
    if (error) next.error = error;
    else delete next.error;
    try {
      await store.db.transaction((tx) => new Writer({ store, baseUrl: this.baseUrl }, tx).update(next as Resource, sub.id!, { ifMatch: versionId }));
      this.logger.info({ subscription: sub.id, status, error }, 'subscription status changed');
    } catch (e) {
      if (!(e instanceof FhirError && e.status === 412)) this.logger.warn({ err: e, subscription: sub.id }, 'subscription status update failed');
    }
  }
}

/** Subscription.end passed: the subscription no longer notifies (R4: "the server SHALL turn it off"; we stop sending). */
function ended(sub: Subscription): boolean {
  return sub.end !== undefined && Date.parse(sub.end) <= Date.now();
}

/** The resource types that active (or error) subscriptions' criteria name. */
export async function subscriptionWatchedTypes(tx: SqlClient, schema: string): Promise<ReadonlySet<string>> {
  const watched = await tx.query<{ type: string }>(
    `SELECT DISTINCT split_part(content::json->>'criteria', '?', 1) AS type FROM ${quoteIdent(schema)}.resource
     WHERE resource_type = 'Subscription' AND NOT deleted AND content::json->>'status' IN ('active', 'error')`,
  );
  return new Set(watched.rows.map((r) => r.type));
}

/** Subscriptions (active or error, rest-hook, end not passed) whose criteria are on this resource type. */
async function subscriptionsFor(store: ResourceStore, resourceType: string): Promise<ActiveSubscription[]> {
  const r = await store.db.query<{ id: string; version_id: number; content: string }>(
    `SELECT id, version_id, content FROM ${quoteIdent(store.schema)}.resource WHERE resource_type = 'Subscription' AND NOT deleted`,
  );
  const out: ActiveSubscription[] = [];
  for (const row of r.rows) {
    const resource = JSON.parse(row.content) as Subscription;
    if (resource.status !== 'active' && resource.status !== 'error') continue;
    if (resource.channel?.type !== 'rest-hook' || !resource.criteria) continue;
    if (ended(resource)) continue;
    const { resourceType: type, query } = splitCriteria(resource.criteria);
    if (type === resourceType) out.push({ id: row.id, versionId: Number(row.version_id), resource, query });
  }
  return out;
}
