/**
 * Reindex jobs at store level: batches in short transactions alongside concurrent writes, which
 * neither fail nor leave stale index rows; progress recorded for any process to read.
 */
import type { Observation, Patient } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateResource } from '../../src/interactions/update.js';
import { Writer } from '../../src/interactions/writer.js';
import { extractIndexRows } from '../../src/search/extract.js';
import { createReindexJob, reindexStatus, runReindexJob, type ReindexProgress } from '../../src/search/reindex-job.js';
import type { Database } from '../../src/store/db.js';
import { PgliteDatabase, PostgresDatabase } from '../../src/store/engines.js';
import type { ResourceStore } from '../../src/store/resource-store.js';
import { Tenants } from '../../src/store/tenants.js';
import { createTestDatabase, ENGINES } from '../support/server.js';

const N = 1200;

describe.each(ENGINES)('reindex jobs on %s', (engine) => {
  let db: Database;
  let drop: (() => Promise<void>) | undefined;
  let store: ResourceStore;
  beforeAll(async () => {
    if (engine === 'pglite') db = await PgliteDatabase.open();
    else {
      const test = await createTestDatabase();
      db = new PostgresDatabase(test.url, 6);
      drop = test.drop;
    }
    store = await new Tenants(db).store('reindex');
    const ctx = { store, baseUrl: 'http://test/fhir' };
    await db.transaction(async (tx) => {
      const w = new Writer(ctx, tx);
      const versions = Array.from({ length: N }, (_, i) => w.prepareCreate({ resourceType: 'Patient', id: `p${i}`, name: [{ family: `Family${i}` }] } as Patient, `p${i}`));
      await w.insertPrepared(versions);
      await w.insertPrepared([w.prepareCreate({ resourceType: 'Observation', status: 'final', code: { text: 'x' } } as Observation, 'o1')]);
    });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  it('rewrites index rows in batches while concurrent updates keep theirs', async () => {
    const s = `"${store.schema}"`;
    // Damage the index (as a missing parameter would): the job must restore it.
    await db.query(`DELETE FROM ${s}.sp_string WHERE resource_type = 'Patient' AND param = 'family'`);
    const jobId = await createReindexJob(store, ['Patient']);
    const progress: ReindexProgress[] = [];
    const job = runReindexJob(store, jobId, { types: ['Patient'], batchSize: 100, settleMs: 0, onProgress: (p) => progress.push(p) });
    // Meanwhile: update resources all over the rid range.
    const ctx = { store, baseUrl: 'http://test/fhir' };
    const updated: number[] = [];
    for (let i = 0; i < N; i += 97) {
      const r = await updateResource(ctx, 'Patient', `p${i}`, { resourceType: 'Patient', id: `p${i}`, name: [{ family: `Renamed${i}` }] });
      expect(r.status).toBe(200);
      updated.push(i);
    }
    const final = await job;
    expect(final.state).toBe('completed');
    expect(final.total).toBe(N);
    expect(final.processed).toBe(N);
    expect(final.ratePerSecond).toBeGreaterThan(0);
    expect(progress.filter((p) => p.state === 'running').length).toBeGreaterThanOrEqual(N / 100);
    expect(progress.map((p) => p.processed)).toEqual([...progress.map((p) => p.processed)].sort((a, b) => a - b));
    expect(await reindexStatus(store, jobId)).toMatchObject({ state: 'completed', processed: N, types: ['Patient'] });

    // Every Patient has exactly the family rows of its current content.
    const rows = await db.query<{ id: string; content: string; norms: string[] | null }>(
      `SELECT r.id, r.content, (SELECT array_agg(i.norm ORDER BY i.norm) FROM ${s}.sp_string i WHERE i.rid = r.rid AND i.param = 'family') AS norms
       FROM ${s}.resource r WHERE r.resource_type = 'Patient'`,
    );
    expect(rows.rows).toHaveLength(N);
    for (const row of rows.rows) {
      const expected = extractIndexRows(JSON.parse(row.content))
        .filter((x) => x.param === 'family')
        .map((x) => x.values[0]);
      expect(row.norms ?? []).toEqual(expected);
    }
    expect(updated.length).toBeGreaterThan(10);
  }, 120_000);

  it('reports unknown jobs as undefined and cancels when asked', async () => {
    expect(await reindexStatus(store, 'no-such-job')).toBeUndefined();
    const jobId = await createReindexJob(store);
    const controller = new AbortController();
    controller.abort();
    const final = await runReindexJob(store, jobId, { settleMs: 0, signal: controller.signal });
    expect(final.state).toBe('cancelled');
  });
});
