/**
 * The outbox relay: at-least-once, in (tx, seq) order, never skipping a lower seq committed late,
 * and with several relays on one database each event enqueued once.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobInfo, JobOptions, JobQueue } from '../../src/jobs/queue.js';
import type { Database } from '../../src/store/db.js';
import { openDatabase } from '../../src/store/engines.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { recordChanges, type ChangeRecord } from '../../src/subscriptions/outbox.js';
import type { ChangeConsumer } from '../../src/subscriptions/consumers.js';
import { pruneRelayed, relayBatch as relayWith, type ChangeJob } from '../../src/subscriptions/relay.js';
import { CHANGE_QUEUE, subscriptionWatchedTypes } from '../../src/subscriptions/rest-hook.js';
import { createTestDatabase, ENGINES } from '../support/server.js';

const SCHEMA = 'tenant_default';
/** The subscription matcher's consumer (handled by nobody here: the queue records its jobs). */
const CONSUMERS: ChangeConsumer[] = [{ queue: CHANGE_QUEUE, watchedTypes: subscriptionWatchedTypes, handle: async () => undefined }];
const relayBatch = (db: Database, schema: string, queue: JobQueue, limit?: number) => relayWith(db, schema, queue, CONSUMERS, limit);

/** Records what the relay enqueues. */
class RecordingQueue implements JobQueue {
  readonly kind = 'memory' as const;
  readonly jobs: Array<{ data: ChangeJob; opts?: JobOptions; queue: string }> = [];
  failNext = false;
  async add<T>(name: string, data: T, opts?: JobOptions): Promise<void> {
    await this.addBulk(name, [{ data, opts }]);
  }
  async addBulk<T>(name: string, jobs: Array<{ data: T; opts?: JobOptions }>): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('queue down');
    }
    this.jobs.push(...(jobs as Array<{ data: ChangeJob; opts?: JobOptions }>).map((j) => ({ ...j, queue: name })));
  }
  process(): void {}
  async listFailed(): Promise<JobInfo[]> {
    return [];
  }
  async retry(): Promise<boolean> {
    return false;
  }
  async close(): Promise<void> {}
}

const change = (id: string, versionId = 1): ChangeRecord => ({ resourceType: 'Patient', id, versionId, action: versionId === 1 ? 'create' : 'update' });

/**
 * Relay until nothing committed is left beyond the cursor. The relay holds back events of
 * transactions at or above the cluster-wide snapshot xmin, so an unrelated open transaction (say,
 * another test file's, on the same server) delays them: wait for it rather than stop early.
 * `wait: false` relays only what is relayable now.
 */
async function drain(db: Database, queue: JobQueue, wait = true, consumers = CONSUMERS): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    while ((await relayWith(db, SCHEMA, queue, consumers, 50)) > 0);
    if (!wait) return;
    const left = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${SCHEMA}.change_event e, ${SCHEMA}.outbox_cursor c
       WHERE c.name = 'relay' AND (e.tx, e.seq) > (c.tx, c.seq) AND pg_xact_status(e.tx) = 'committed'`,
    );
    if (left.rows[0]!.n === 0) return;
    if (Date.now() > deadline) throw new Error(`${left.rows[0]!.n} committed events still not relayed`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Relay once with the queue failing, as soon as something is relayable (an unrelated open
 * transaction on the server holds new events back, and then the relay returns 0 without enqueueing).
 */
async function failOnceRelayable(db: Database, queue: RecordingQueue): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    queue.failNext = true;
    const outcome = await relayBatch(db, SCHEMA, queue).then((n) => n, (e: Error) => e);
    if (outcome instanceof Error) {
      expect(outcome.message).toBe('queue down');
      return;
    }
    expect(outcome).toBe(0); // nothing relayable yet: nothing was enqueued either
    expect(queue.jobs).toHaveLength(0);
    if (Date.now() > deadline) throw new Error('the events never became relayable');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(ENGINES)('outbox relay on %s', (engine) => {
  let db: Database;
  let dropDb: (() => Promise<void>) | undefined;
  let url: string | undefined;

  beforeAll(async () => {
    if (engine === 'postgres') {
      const created = await createTestDatabase();
      url = created.url;
      dropDb = created.drop;
      db = await openDatabase({ databaseUrl: url, poolSize: 6 });
    } else {
      db = await openDatabase({});
    }
    await new ResourceStore(db, SCHEMA).migrate();
    // A subscription watching Patient: only watched types become jobs.
    const sub = { resourceType: 'Subscription', id: 's1', status: 'active', criteria: 'Patient?name=x', channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/' } };
    await db.query(`INSERT INTO ${SCHEMA}.resource (resource_type, id, version_id, last_updated, content) VALUES ('Subscription', 's1', 1, now(), $1)`, [JSON.stringify(sub)]);
  });
  afterAll(async () => {
    await db?.close();
    await dropDb?.();
  });

  it('relays committed events once, in order, and re-relays a batch whose enqueue failed', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    q.jobs.length = 0;
    await db.transaction((tx) => recordChanges(tx, SCHEMA, [change('a'), change('b'), change('a', 2)]));
    await expect(db.transaction(async (tx) => {
      await recordChanges(tx, SCHEMA, [change('rolled-back')]);
      throw new Error('abort');
    })).rejects.toThrow('abort');
    await failOnceRelayable(db, q); // cursor not advanced
    await drain(db, q);
    expect(q.jobs.map((j) => `${j.data.id}/${j.data.versionId}/${j.data.action}`)).toEqual(['a/1/create', 'b/1/create', 'a/2/update']);
    const seqs = q.jobs.map((j) => Number(j.data.seq));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(q.jobs.map((j) => j.opts?.jobId)).toEqual(q.jobs.map((j) => `default.${j.data.seq}`));
    await drain(db, q);
    expect(q.jobs).toHaveLength(3);
  });

  it('passes over events of types no subscription watches', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    q.jobs.length = 0;
    await db.transaction((tx) =>
      recordChanges(tx, SCHEMA, [{ resourceType: 'Encounter', id: 'e1', versionId: 1, action: 'create' }, change('watched'), { resourceType: 'Observation', id: 'o1', versionId: 1, action: 'create' }]),
    );
    await drain(db, q);
    expect(q.jobs.map((j) => j.data.id)).toEqual(['watched']);
    const cursor = await db.query<{ seq: string }>(`SELECT seq FROM ${SCHEMA}.outbox_cursor WHERE name = 'relay'`);
    const max = await db.query<{ seq: string }>(`SELECT max(seq) AS seq FROM ${SCHEMA}.change_event`);
    expect(String(cursor.rows[0]!.seq)).toBe(String(max.rows[0]!.seq));
  });

  it('gives each consumer the events of its own types, on its own queue', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    q.jobs.length = 0;
    const encounters: ChangeConsumer = { queue: 'encounter-feed', watchedTypes: async () => new Set(['Encounter', 'Patient']), handle: async () => undefined };
    await db.transaction((tx) => recordChanges(tx, SCHEMA, [{ resourceType: 'Encounter', id: 'e2', versionId: 1, action: 'create' }, change('both')]));
    await drain(db, q, true, [...CONSUMERS, encounters]);
    const got = q.jobs.map((j) => `${j.queue}:${j.data.resourceType}/${j.data.id}`).sort();
    expect(got).toEqual(['encounter-feed:Encounter/e2', 'encounter-feed:Patient/both', `${CHANGE_QUEUE}:Patient/both`]);
  });

  it('hands consumers that ask for it the current row of each event\'s resource; others get none', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    q.jobs.length = 0;
    // Encounter/e3 has a current row at version 2 (its version-1 event is relayed after the
    // update committed: the job carries version 2); Encounter/e4 has no row at all.
    const e3 = { resourceType: 'Encounter', id: 'e3', status: 'finished' };
    await db.query(`INSERT INTO ${SCHEMA}.resource (resource_type, id, version_id, last_updated, content) VALUES ('Encounter', 'e3', 2, now(), $1)`, [JSON.stringify(e3)]);
    await db.transaction((tx) =>
      recordChanges(tx, SCHEMA, [{ resourceType: 'Encounter', id: 'e3', versionId: 1, action: 'create' }, { resourceType: 'Encounter', id: 'e4', versionId: 1, action: 'create' }]),
    );
    const watch = async () => new Set(['Encounter']);
    const reading: ChangeConsumer = { queue: 'reads-current', watchedTypes: watch, handle: async () => undefined, withCurrent: true };
    const plain: ChangeConsumer = { queue: 'no-current', watchedTypes: watch, handle: async () => undefined };
    await drain(db, q, true, [reading, plain]);
    const of = (queue: string, id: string) => q.jobs.find((j) => j.queue === queue && j.data.id === id)!.data;
    expect(of('reads-current', 'e3').current).toEqual({ versionId: 2, deleted: false, content: JSON.stringify(e3) });
    expect(of('reads-current', 'e4').current).toBeNull();
    expect('current' in of('no-current', 'e3')).toBe(false);
  });

  it('prunes relayed events only', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    await db.transaction((tx) => recordChanges(tx, SCHEMA, [change('kept-until-relayed')]));
    expect(await pruneRelayed(db, SCHEMA, '0 seconds')).toBeGreaterThan(0);
    const left = await db.query<{ id: string }>(`SELECT id FROM ${SCHEMA}.change_event`);
    expect(left.rows.map((r) => r.id)).toEqual(['kept-until-relayed']);
    await drain(db, q);
    expect(q.jobs.map((j) => j.data.id)).toEqual(['kept-until-relayed']);
  });

  it.runIf(engine === 'postgres')('does not skip a lower seq committed after a higher one', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    q.jobs.length = 0;
    const a = new pg.Client({ connectionString: url });
    await a.connect();
    try {
      await a.query('BEGIN');
      await recordChanges({ query: async (sql, params) => { const r = await a.query(sql, params as unknown[]); return { rows: r.rows, rowCount: r.rowCount ?? 0 }; } }, SCHEMA, [change('early-seq-late-commit')]);
      // Another transaction takes a higher seq and commits first.
      await db.transaction((tx) => recordChanges(tx, SCHEMA, [change('late-seq-early-commit')]));
      await drain(db, q, false);
      expect(q.jobs).toHaveLength(0); // held back while the older transaction runs
      await a.query('COMMIT');
    } finally {
      await a.end();
    }
    await drain(db, q);
    expect(q.jobs.map((j) => j.data.id)).toEqual(['early-seq-late-commit', 'late-seq-early-commit']);
  });

  it.runIf(engine === 'postgres')('several relays at once enqueue each event exactly once', async () => {
    const q = new RecordingQueue();
    await drain(db, q);
    q.jobs.length = 0;
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 25; i++) await db.transaction((tx) => recordChanges(tx, SCHEMA, [change(`w${w}-${i}`)]));
      })(),
    );
    let writing = true;
    const relays = Array.from({ length: 3 }, async () => {
      while (writing) {
        await relayBatch(db, SCHEMA, q, 20);
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all(relays);
    await drain(db, q);
    const ids = q.jobs.map((j) => j.data.id);
    // On failure, say which events came twice (with their seq) and which were not written here.
    const twice = q.jobs.filter((j, i) => ids.indexOf(j.data.id) !== i).map((j) => `${j.data.id}@${j.data.seq}`);
    const foreign = ids.filter((id) => !/^w\d-\d+$/.test(id));
    expect({ twice, foreign, count: ids.length }).toEqual({ twice: [], foreign: [], count: 200 });
    expect(new Set(ids).size).toBe(200);
  });
});
