/**
 * Subscription matching: the change consumer fed by the outbox relay (queue fhir-change, one job
 * per change_event of a watched type).
 *
 * - R4 criteria subscriptions (criteria `Type?query`): the criteria run through the search engine
 *   with `_id=<id>` added (findMatches: the one definition of matching). A delete is not notified
 *   (a deleted resource matches no search); an event whose version is no longer current is not
 *   either (the newer version's own event is).
 * - Topic-based subscriptions (criteria = topic canonical URL, topics.ts): a trigger of the topic
 *   for the type fires (interaction, fhirPathCriteria on %previous/%current, queryCriteria.current
 *   through findMatches), and every backport-filter-criteria of the type matches (findMatches).
 *   With filters, deletes are not notified (a deleted resource cannot be matched against them).
 *
 * Matching runs in commit order per tenant (the matcher's own cursor over change_event, under an
 * advisory lock: one process at a time), so every subscription's event numbers follow commit order. Every match
 * passes `mayRead(owner, …)` (security.ts), then gets the subscription's next event number
 * (numbering.ts, idempotent per change seq, same transaction as the cursor), and a delivery job
 * is queued (delivery.ts).
 * Subscription writes are watched too: a topic-based subscription created as `requested` gets its
 * handshake (handshake.ts).
 */
import type { Resource, Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import type { Access } from '../auth/access.js';
import { findMatches, queryPairs } from '../interactions/matching.js';
import { parseSearch } from '../search/query.js';
import { buildSearchSql } from '../search/query-sql.js';
import type { JobInfo } from '../jobs/queue.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import type { SqlClient } from '../store/db.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { tenantSchemasWith, type Tenants } from '../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from './consumers.js';
import type { Delivery } from './delivery.js';
import { numberEvents, type EventToNumber } from './numbering.js';
import type { ChangeAction } from './outbox.js';
import { tenantOfSchema } from './relay.js';
import { mayRead } from './security.js';
import { filterCriteria, isTopicSubscription } from './topic-notification.js';
import { loadTopics, triggerFires, type Topic } from './topics.js';
import { splitCriteria, SUBSCRIPTION } from './validate.js';

/** The change queue of subscription matching (one job per event of a watched type). */
export const CHANGE_QUEUE = 'fhir-change';
/** Events matched per transaction (PGlite: other writers wait while it runs). */
const MATCH_BATCH = 50;

export interface ActiveSubscription {
  id: string;
  resource: Subscription;
  owner?: Access;
}

export class SubscriptionMatcher {
  constructor(
    private readonly tenants: Tenants,
    private readonly delivery: Delivery,
    private readonly logger: Logger,
    /** Called after commit for Subscription writes (handshakes of requested topic-based subscriptions). */
    private readonly onSubscriptionWrite?: (tenant: string, store: ResourceStore, sub: Subscription, job: ChangeJob) => Promise<void>,
  ) {}

  /** Concurrency 1: jobs are triggers of one batch loop per tenant; more would only wait on its lock. */
  changeConsumer(concurrency = 1): ChangeConsumer {
    return { queue: CHANGE_QUEUE, watchedTypes: subscriptionWatchedTypes, handle: (job) => this.onChange(job), concurrency };
  }

  /**
   * A change job is a trigger: it matches every committed event after the matcher's cursor, in
   * commit order, in batches; one process at a time per tenant (an advisory lock), so event
   * numbers follow commit order. A job that waits for the lock finds its event done or does it.
   */
  async onChange(job: JobInfo<ChangeJob>): Promise<void> {
    const store = await this.tenants.store(job.data.tenant);
    for (;;) {
      const done = await store.db.transaction((tx) => this.matchBatch(tx, store, job.data.tenant));
      if (done.numbered.size > 0) await this.delivery.enqueue(job.data.tenant, [...done.numbered], `c${done.lastSeq}`);
      for (const w of done.subscriptionWrites) {
        const v = await store.version(store.db, SUBSCRIPTION, w.id, w.versionId);
        if (v?.content) await this.onSubscriptionWrite?.(job.data.tenant, store, JSON.parse(v.content) as Subscription, w);
      }
      if (done.events < MATCH_BATCH) return;
    }
  }

  /**
   * Match whatever committed events no change job came for (in-process queue: jobs lost in a
   * restart; Redis: jobs on the dead list). Run at start and every few seconds (index.ts).
   */
  async catchUp(): Promise<void> {
    for (const schema of await tenantSchemasWith(this.tenants.db, 'subscription_event')) {
      const s = quoteIdent(schema);
      const behind = await this.tenants.db.query<{ behind: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${s}.change_event e, ${s}.outbox_cursor c
           WHERE c.name = 'subscriptions' AND (e.tx, e.seq) > (c.tx, c.seq) AND e.tx < pg_snapshot_xmin(pg_current_snapshot())
             AND e.occurred_at < now() - interval '2 seconds') AS behind`,
      );
      if (behind.rows[0]?.behind) {
        const tenant = tenantOfSchema(schema);
        await this.onChange({ id: `catch-up-${tenant}`, name: CHANGE_QUEUE, attemptsMade: 0, data: { tenant, seq: '0', resourceType: '', id: '', versionId: 0, action: 'update' } });
      }
    }
  }

  private async matchBatch(tx: SqlClient, store: ResourceStore, tenant: string): Promise<{ events: number; numbered: Set<string>; lastSeq: string; subscriptionWrites: ChangeJob[] }> {
    const s = quoteIdent(store.schema);
    const result = { events: 0, numbered: new Set<string>(), lastSeq: '', subscriptionWrites: [] as ChangeJob[] };
    // An advisory lock, not FOR UPDATE: until its first write this transaction has no xid, so it
    // does not hold back the relay's and its own view of newly committed events (snapshot xmin).
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`carebridge:subscription-matcher:${store.schema}`]);
    const cursor = await tx.query<{ tx: string; seq: string | number }>(`SELECT tx::text AS tx, seq FROM ${s}.outbox_cursor WHERE name = 'subscriptions'`);
    const at = cursor.rows[0];
    if (!at) return result;
    const types = [...(await subscriptionWatchedTypes(tx, store.schema))];
    // Committed events only, below the oldest running transaction: none can appear behind the cursor later.
    const rows = await tx.query<{ seq: string | number; tx: string; resource_type: string; id: string; version_id: number; action: ChangeAction }>(
      `SELECT seq, tx::text AS tx, resource_type, id, version_id, action FROM ${s}.change_event
       WHERE (tx, seq) > ($1::xid8, $2::bigint) AND tx < pg_snapshot_xmin(pg_current_snapshot()) AND resource_type = ANY($3::text[])
       ORDER BY tx, seq LIMIT $4`,
      [at.tx, String(at.seq), types, MATCH_BATCH],
    );
    if (rows.rows.length === 0) return result;
    const subs = await activeSubscriptions(tx, store.schema);
    const topics = subs.some((x) => isTopicSubscription(x.resource)) ? await loadTopics(tx, store.schema) : new Map<string, Topic>();
    const events: ChangeJob[] = rows.rows.map((row) => ({ tenant, seq: String(row.seq), resourceType: row.resource_type, id: row.id, versionId: Number(row.version_id), action: row.action }));
    const search = new BatchSearch(tx, store, events, this.logger);
    // R4 criteria of every subscription on a type in the batch: one round trip.
    const batchTypes = new Set(events.map((e) => e.resourceType));
    await search.prefetch(subs.filter((x) => !isTopicSubscription(x.resource)).map((x) => splitCriteria(x.resource.criteria!)).filter((c) => batchTypes.has(c.resourceType)));
    // Reads first, then the writes (numbers in commit order, the cursor) in a short tail.
    const matched: EventToNumber[] = [];
    for (const e of events) {
      if (e.resourceType === SUBSCRIPTION && e.action !== 'delete') result.subscriptionWrites.push(e);
      matched.push(...(await this.match(tx, store, e, subs, topics, search)));
    }
    for (const n of await numberEvents(tx, store.schema, matched)) result.numbered.add(n.subscriptionId);
    const last = rows.rows[rows.rows.length - 1]!;
    await tx.query(`UPDATE ${s}.outbox_cursor SET tx = $1::xid8, seq = $2, updated_at = now() WHERE name = 'subscriptions'`, [last.tx, String(last.seq)]);
    result.events = rows.rows.length;
    result.lastSeq = String(last.seq);
    return result;
  }

  /** The subscriptions one change notifies (after mayRead), as events to number. */
  private async match(tx: SqlClient, store: ResourceStore, e: ChangeJob, subs: ActiveSubscription[], topics: Map<string, Topic>, search: BatchSearch): Promise<EventToNumber[]> {
    const r4 = subs.filter((x) => !isTopicSubscription(x.resource) && splitCriteria(x.resource.criteria!).resourceType === e.resourceType);
    const withTrigger = subs.filter((x) => isTopicSubscription(x.resource) && topics.get(x.resource.criteria!)?.triggers.some((t) => t.resourceType === e.resourceType));
    if (r4.length === 0 && withTrigger.length === 0) return [];
    const current = await this.version(tx, store, e.resourceType, e.id, e.versionId);
    let previous: Resource | undefined | null = null; // null: not read yet
    const matches = (query: string) => search.matches(e, query);
    // Filters name who/what a subscriber follows (subject, patient …): the index holds current
    // versions only, so for an event whose version was superseded before matching they are
    // evaluated on the current one (deleted since: no match). queryCriteria.current, like R4
    // criteria, needs the event's version to be current (else the newer version's event decides).
    const filterMatches = (query: string) => search.matches(e, query, true);
    const out: EventToNumber[] = [];
    const add = (sub: ActiveSubscription) => {
      if (!mayRead(sub.owner, e.resourceType, current)) return;
      out.push({ subscriptionId: sub.id, changeSeq: e.seq, resourceType: e.resourceType, id: e.id, versionId: e.versionId, action: e.action });
    };
    if (e.action !== 'delete') {
      for (const sub of r4) if (await matches(splitCriteria(sub.resource.criteria!).query)) add(sub);
    }
    for (const sub of withTrigger) {
      const topic = topics.get(sub.resource.criteria!)!;
      let fired = false;
      for (const trigger of topic.triggers.filter((t) => t.resourceType === e.resourceType)) {
        if (trigger.fhirPath && previous === null) previous = e.versionId > 1 ? await this.version(tx, store, e.resourceType, e.id, e.versionId - 1) : undefined;
        if (!triggerFires(trigger, e.action, previous ?? undefined, current)) continue;
        if (trigger.current !== undefined && e.action !== 'delete' && !(await matches(trigger.current))) continue;
        fired = true;
        break;
      }
      if (!fired) continue;
      const filters = filterCriteria(sub.resource).map(splitCriteria).filter((f) => f.resourceType === e.resourceType);
      if (filters.length > 0 && e.action === 'delete') continue;
      let all = true;
      for (const f of filters) if (!(all = await filterMatches(f.query))) break;
      if (all) add(sub);
    }
    return out;
  }

  private async version(client: SqlClient, store: ResourceStore, type: string, id: string, versionId: number): Promise<Resource | undefined> {
    const v = await store.version(client, type, id, versionId);
    return v?.content && !v.deleted ? (JSON.parse(v.content) as Resource) : undefined;
  }
}

/**
 * The search engine run once per (type, query) for a whole batch: `query&_id=<every id of that
 * type in the batch>`; an event matches when its version is the current one found. With many
 * subscriptions this is one query per subscription per batch, not per event.
 */
class BatchSearch {
  private readonly found = new Map<string, Promise<Map<string, number>>>();

  constructor(
    private readonly tx: SqlClient,
    private readonly store: ResourceStore,
    private readonly events: ChangeJob[],
    private readonly logger: Logger,
  ) {}

  /**
   * Run many (type, query) searches in one round trip: each query built by the search engine
   * (parseSearch + buildSearchSql, exactly what findMatches runs), their SQL joined by UNION ALL
   * with the parameters renumbered. A query whose SQL holds a literal, or that fails to parse,
   * is left to matches() (one findMatches each).
   */
  async prefetch(queries: Array<{ resourceType: string; query: string }>): Promise<void> {
    const parts: string[] = [];
    const params: unknown[] = [];
    const keys: string[] = [];
    for (const { resourceType, query } of queries) {
      const key = `${resourceType}?${query}`;
      if (this.found.has(key) || keys.includes(key)) continue;
      const ids = this.idsOf(resourceType);
      if (ids.length === 0) continue;
      let built: { sql: string; params: unknown[] };
      try {
        built = buildSearchSql(this.store.schema, parseSearch(resourceType, queryPairs(this.withIds(query, ids)), { strict: true, registry: searchRegistryOf(this.store) }), { limit: ids.length, offset: 0 });
      } catch {
        continue;
      }
      if (built.sql.includes("'")) continue;
      const offset = params.length;
      parts.push(`SELECT ${keys.length} AS q, m.id, m.version_id FROM (${built.sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`)}) m`);
      params.push(...built.params);
      keys.push(key);
    }
    if (parts.length === 0) return;
    const r = await this.tx.query<{ q: number; id: string; version_id: number }>(parts.join('\nUNION ALL\n'), params);
    const maps = keys.map(() => new Map<string, number>());
    for (const row of r.rows) maps[Number(row.q)]!.set(row.id, Number(row.version_id));
    keys.forEach((key, i) => this.found.set(key, Promise.resolve(maps[i]!)));
  }

  private idsOf(resourceType: string): string[] {
    return [...new Set(this.events.filter((x) => x.resourceType === resourceType && x.action !== 'delete').map((x) => x.id))];
  }

  private withIds(query: string, ids: string[]): string {
    const idParam = `_id=${ids.map(encodeURIComponent).join(',')}`;
    return query ? `${query}&${idParam}` : idParam;
  }

  /** anyVersion: the resource's current version is searched also when it is newer than the event's. */
  async matches(e: ChangeJob, query: string, anyVersion = false): Promise<boolean> {
    const key = `${e.resourceType}?${query}`;
    let p = this.found.get(key);
    if (!p) this.found.set(key, (p = this.search(e.resourceType, query)));
    const found = (await p).get(e.id);
    return anyVersion ? found !== undefined && found >= e.versionId : found === e.versionId;
  }

  private async search(resourceType: string, query: string): Promise<Map<string, number>> {
    const ids = this.idsOf(resourceType);
    if (ids.length === 0) return new Map();
    try {
      const rows = await findMatches(this.tx, this.store.schema, resourceType, this.withIds(query, ids), ids.length, searchRegistryOf(this.store));
      return new Map(rows.map((r) => [r.id, r.versionId]));
    } catch (error) {
      // Criteria the engine no longer accepts (e.g. a custom parameter removed): no match.
      this.logger.warn({ err: error, query }, 'subscription criteria could not be evaluated');
      return new Map();
    }
  }
}

/** Subscriptions that notify: active or error, end not passed (requested/off do not). */
export async function activeSubscriptions(client: SqlClient, schema: string): Promise<ActiveSubscription[]> {
  const s = quoteIdent(schema);
  const r = await client.query<{ id: string; content: string; owner: unknown }>(
    `SELECT r.id, r.content, st.owner FROM ${s}.resource r LEFT JOIN ${s}.subscription_state st ON st.subscription_id = r.id
     WHERE r.resource_type = 'Subscription' AND NOT r.deleted`,
  );
  const out: ActiveSubscription[] = [];
  for (const row of r.rows) {
    const resource = JSON.parse(row.content) as Subscription;
    if (resource.status !== 'active' && resource.status !== 'error') continue;
    if (!resource.criteria || (resource.end !== undefined && Date.parse(resource.end) <= Date.now())) continue;
    const owner = typeof row.owner === 'string' ? (JSON.parse(row.owner) as Access) : ((row.owner ?? undefined) as Access | undefined);
    out.push({ id: row.id, resource, owner: owner ?? undefined });
  }
  return out;
}

/** The resource types subscriptions watch: R4 criteria types, topic trigger types, and Subscription itself (handshakes). */
export async function subscriptionWatchedTypes(tx: SqlClient, schema: string): Promise<ReadonlySet<string>> {
  const r = await tx.query<{ criteria: string }>(
    `SELECT DISTINCT content::json->>'criteria' AS criteria FROM ${quoteIdent(schema)}.resource
     WHERE resource_type = 'Subscription' AND NOT deleted AND content::json->>'status' IN ('active', 'error', 'requested')`,
  );
  const types = new Set<string>([SUBSCRIPTION]);
  let topics: Map<string, Topic> | undefined;
  for (const { criteria } of r.rows) {
    if (!criteria) continue;
    if (!isTopicSubscription({ criteria } as Subscription)) {
      types.add(splitCriteria(criteria).resourceType);
      continue;
    }
    topics ??= await loadTopics(tx, schema);
    for (const t of topics.get(criteria)?.triggers ?? []) types.add(t.resourceType);
  }
  return types;
}
