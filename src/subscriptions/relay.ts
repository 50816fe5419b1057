/**
 * The outbox relay: turns committed change_event rows into jobs, per tenant, at least once.
 *
 * One batch = one database transaction: lock the tenant's outbox_cursor row (FOR UPDATE SKIP
 * LOCKED: with several processes only one relays a tenant at a time, the others skip it), read
 * the events after the cursor, enqueue one job per event, then advance the cursor and commit.
 * A crash between enqueue and commit re-enqueues the batch; the job ids (tenant.seq) make the
 * queue ignore the repeats it still remembers.
 *
 * Each change consumer (consumers.ts: rest-hook subscriptions, HL7 v2 outbound, workflows) gets
 * one job per event of a type it watches, on its own queue; events no consumer watches are passed
 * over (the cursor moves past them, no job).
 *
 * Order and gaps: seq comes from a sequence, so a transaction can commit a LOWER seq after a
 * higher one was relayed. Events are therefore read in (tx, seq) order (tx = the writer's
 * transaction id) and only from transactions older than the oldest one still running
 * (pg_snapshot_xmin): every event below the cursor is final, none is skipped.
 *
 * Wake-up: the writer's NOTIFY (delivered on commit) wakes the tenant's loop at once; a poll
 * every POLL_MS covers lost notifications and other processes' writes without LISTEN.
 */
import type { Logger } from 'pino';
import type { JobQueue } from '../jobs/queue.js';
import type { ChangeConsumer, ChangeJob } from './consumers.js';
import { PREPARED, type Database, type SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import { ResourceStore, type CurrentVersion } from '../store/resource-store.js';
import { tenantSchemasWith } from '../store/tenants.js';
import { OUTBOX_CHANNEL, type ChangeAction } from './outbox.js';

export type { ChangeJob };
const POLL_MS = 200;
const DISCOVER_MS = 5_000;
const BATCH = 500;
const ENQUEUE_TIMEOUT_MS = 10_000;
/** Relayed events are kept this long (inspection, replay by resetting the cursor), then pruned. */
const RETAIN = '1 day';
const PRUNE_EVERY_MS = 10 * 60_000;
/** Change jobs are retried (capped backoff) this many times, then land on the dead list. */
export const CHANGE_JOB_ATTEMPTS = 12;

interface EventRow {
  seq: string | number;
  tx: string;
  resource_type: string;
  id: string;
  version_id: number;
  action: ChangeAction;
}

export function tenantOfSchema(schema: string): string {
  return schema.replace(/^tenant_/, '');
}

/**
 * Relay one batch of a tenant's committed events; returns how many events it moved past
 * (enqueued or passed over); 0 when there were none or another process holds the tenant.
 */
export async function relayBatch(db: Database, schema: string, queue: JobQueue, consumers: readonly ChangeConsumer[], limit = BATCH): Promise<number> {
  const s = quoteIdent(schema);
  const tenant = tenantOfSchema(schema);
  // A read-only probe first: an idle poll takes no row lock (no write, no WAL) and no transaction.
  // The cursor comes in as two scalar subqueries and the probe is ordered with LIMIT 1 so the
  // row comparison is an index condition on (tx, seq): a join or EXISTS form scanned every event.
  const cursorOf = (column: string) => `(SELECT ${column} FROM ${s}.outbox_cursor WHERE name = 'relay')`;
  const probe = await db.query(
    `SELECT 1 FROM ${s}.change_event e
     WHERE (e.tx, e.seq) > (${cursorOf('tx')}, ${cursorOf('seq')}) AND e.tx < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY e.tx, e.seq LIMIT 1`,
    [],
    PREPARED,
  );
  if (probe.rows.length === 0) return 0;
  return db.transaction(async (tx) => {
    const cursor = await tx.query<{ tx: string; seq: string | number }>(
      `SELECT tx::text AS tx, seq FROM ${s}.outbox_cursor WHERE name = 'relay' FOR UPDATE SKIP LOCKED`,
      [],
      PREPARED,
    );
    const at = cursor.rows[0];
    if (!at) return 0;
    const events = await tx.query<EventRow>(
      `SELECT seq, tx::text AS tx, resource_type, id, version_id, action FROM ${s}.change_event
       WHERE (tx, seq) > ($1::xid8, $2::bigint) AND tx < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY tx, seq LIMIT $3`,
      [at.tx, String(at.seq), limit],
      PREPARED,
    );
    if (events.rows.length === 0) return 0;
    // Each consumer gets the events of the types it watches (ingest of unwatched types costs one
    // row per version and nothing more); the cursor moves past all of them.
    const enqueues: Promise<void>[] = [];
    const wanted: EventRow[][] = [];
    for (const consumer of consumers) {
      const types = await consumer.watchedTypes(tx, schema);
      wanted.push(events.rows.filter((e) => types.has(e.resource_type)));
    }
    const current = await currentRows(tx, db, schema, consumers.flatMap((c, i) => (c.withCurrent ? wanted[i]! : [])));
    consumers.forEach((consumer, i) => {
      const jobs = wanted[i]!;
      if (jobs.length === 0) return;
      enqueues.push(
        queue.addBulk<ChangeJob>(
          consumer.queue,
          jobs.map((e) => {
            const data: ChangeJob = { tenant, seq: String(e.seq), resourceType: e.resource_type, id: e.id, versionId: Number(e.version_id), action: e.action };
            if (consumer.withCurrent) {
              const row = current.get(`${e.resource_type}/${e.id}`);
              data.current = row ? { versionId: row.versionId, deleted: row.deleted, content: row.content } : null;
            }
            return { data, opts: { jobId: `${tenant}.${e.seq}`, attempts: consumer.attempts ?? CHANGE_JOB_ATTEMPTS } };
          }),
        ),
      );
    });
    const enqueue = Promise.all(enqueues);
    // Redis unreachable must not hold this transaction (and its connection, or all of PGlite) open.
    await withTimeout(enqueue, ENQUEUE_TIMEOUT_MS, 'outbox relay: enqueue timed out');
    const last = events.rows[events.rows.length - 1]!;
    await tx.query(`UPDATE ${s}.outbox_cursor SET tx = $1::xid8, seq = $2, updated_at = now() WHERE name = 'relay'`, [last.tx, String(last.seq)], PREPARED);
    return events.rows.length;
  });
}

/** The current rows of the events' resources, in one statement of the relay's transaction. */
async function currentRows(tx: SqlClient, db: Database, schema: string, events: EventRow[]): Promise<Map<string, CurrentVersion>> {
  if (events.length === 0) return new Map();
  const keys = new Map(events.map((e) => [`${e.resource_type}/${e.id}`, { resourceType: e.resource_type, id: e.id }]));
  return new ResourceStore(db, schema).currentMany(tx, [...keys.values()]);
}

/** Delete relayed events older than RETAIN; returns how many. */
export async function pruneRelayed(db: Database, schema: string, retain = RETAIN): Promise<number> {
  const s = quoteIdent(schema);
  const r = await db.query(
    `DELETE FROM ${s}.change_event e USING ${s}.outbox_cursor c
     WHERE c.name = 'relay' AND (e.tx, e.seq) <= (c.tx, c.seq) AND e.occurred_at < now() - $1::interval`,
    [retain],
  );
  return r.rowCount;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  p.catch(() => undefined); // a late failure after the timeout must not be unhandled
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface Loop {
  dirty: boolean;
  prunedAt: number;
  wake?: () => void;
  done: Promise<void>;
}

/** Relay loops for every tenant schema in the database (found at start, by NOTIFY, and every few seconds). */
export class OutboxRelay {
  private readonly loops = new Map<string, Loop>();
  private closed = false;
  private unlisten?: () => Promise<void>;
  private discoverTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly queue: JobQueue,
    private readonly consumers: readonly ChangeConsumer[],
    private readonly logger: Logger,
    private readonly pollMs = POLL_MS,
  ) {}

  async start(): Promise<void> {
    try {
      this.unlisten = await this.db.listen(OUTBOX_CHANNEL, (schema) => this.wake(schema));
    } catch (error) {
      this.logger.warn({ err: error }, 'outbox relay: LISTEN unavailable, polling only');
    }
    await this.discover();
    const tick = () => {
      this.discoverTimer = setTimeout(() => {
        void this.discover().finally(() => !this.closed && tick());
      }, DISCOVER_MS);
    };
    tick();
  }

  /** Relay the schema's events soon (starting its loop if new). */
  wake(schema: string): void {
    if (this.closed || !/^tenant_[a-z][a-z0-9_]*$/.test(schema)) return;
    const loop = this.loops.get(schema);
    if (!loop) return this.startLoop(schema);
    loop.dirty = true;
    loop.wake?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.discoverTimer);
    for (const loop of this.loops.values()) loop.wake?.();
    await Promise.all([...this.loops.values()].map((l) => l.done));
    await this.unlisten?.();
  }

  private async discover(): Promise<void> {
    try {
      for (const schema of await tenantSchemasWith(this.db, 'outbox_cursor')) if (!this.loops.has(schema)) this.wake(schema);
    } catch (error) {
      if (!this.closed) this.logger.warn({ err: error }, 'outbox relay: tenant discovery failed');
    }
  }

  private startLoop(schema: string): void {
    const loop: Loop = { dirty: true, prunedAt: Date.now(), done: Promise.resolve() };
    this.loops.set(schema, loop);
    loop.done = this.run(schema, loop);
  }

  private async run(schema: string, loop: Loop): Promise<void> {
    while (!this.closed) {
      loop.dirty = false;
      let relayed = 0;
      try {
        relayed = await relayBatch(this.db, schema, this.queue, this.consumers);
      } catch (error) {
        if (this.closed) return;
        this.logger.error({ err: error, schema }, 'outbox relay: batch failed, retrying');
        await this.sleep(loop, 1000);
        continue;
      }
      if (relayed >= BATCH || loop.dirty) continue;
      if (Date.now() - loop.prunedAt > PRUNE_EVERY_MS) {
        loop.prunedAt = Date.now();
        await pruneRelayed(this.db, schema).catch((error) => this.logger.warn({ err: error, schema }, 'outbox relay: prune failed'));
      }
      await this.sleep(loop, this.pollMs);
    }
  }

  private sleep(loop: Loop, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        loop.wake = undefined;
        resolve();
      }
      loop.wake = done;
    });
  }
}
