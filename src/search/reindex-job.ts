/**
 * Reindexing: re-extract the index rows of existing resources with the tenant's current search
 * parameters (after a SearchParameter was added or changed, or the extraction code changed).
 *
 * - Batches of `batchSize` (500) current resources in rid order (keyset: rid > last), each in its
 *   own short transaction that locks the batch's rows (FOR UPDATE), rewrites their index rows and
 *   records the progress. A concurrent write of one of those rows waits for that batch only (tens
 *   of milliseconds); a row written after its batch was indexed by its own write, with the current
 *   parameters. Deadlocks with multi-resource transactions are retried by Database.transaction.
 * - Before the first batch the job waits SETTLE_MS (the cross-process refresh interval plus a
 *   margin; not on the embedded store, which has one process) so that every worker uses the new
 *   parameters for its writes, then reloads them itself; they are re-checked before every batch
 *   (tenant-params.ts). Rows of parameters that no longer exist are removed.
 * - Jobs and their progress live in the tenant's reindex_job table, so any worker can report on a
 *   job. A job runs in the background of the process that started it (startReindexJob); if that
 *   process dies the job stays 'running' with an old updated_at (reported as stalled) and can
 *   simply be started again. A durable queue (Redis) will replace the in-process execution.
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from 'fhir/r4.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { extractIndexRows } from './extract.js';
import { SEARCH_PARAM_REFRESH_MS, tenantSearchParameters } from './tenant-params.js';

export const DEFAULT_REINDEX_BATCH = 500;
/** Wait before the first batch: other processes pick up a new SearchParameter within this. */
export const SETTLE_MS = SEARCH_PARAM_REFRESH_MS + 250;
/** A running job whose progress has not moved for this long is reported as stalled. */
const STALLED_AFTER_MS = 5 * 60_000;

export type ReindexState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface ReindexProgress {
  jobId: string;
  state: ReindexState;
  /** Resource types reindexed; undefined: all. */
  types?: string[];
  total: number;
  processed: number;
  createdAt: string;
  startedAt?: string;
  updatedAt: string;
  finishedAt?: string;
  /** Resources per second since the first batch started. */
  ratePerSecond: number;
  /** Running, but no progress for a long time (the process running it probably stopped). */
  stalled: boolean;
  error?: string;
}

export interface ReindexOptions {
  types?: string[];
  batchSize?: number;
  /** Wait before the first batch (ms); SETTLE_MS by default on PostgreSQL, 0 on the embedded store. */
  settleMs?: number;
  signal?: AbortSignal;
  /** Called after each batch (and at the start and the end). */
  onProgress?: (progress: ReindexProgress) => void;
}

interface JobRow {
  id: string;
  state: ReindexState;
  resource_types: string[] | null;
  total: string | number;
  processed: string | number;
  created_at: Date | string;
  started_at: Date | string | null;
  updated_at: Date | string;
  finished_at: Date | string | null;
  error: string | null;
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

function toProgress(row: JobRow, now = Date.now()): ReindexProgress {
  const processed = Number(row.processed);
  const started = row.started_at === null ? undefined : new Date(row.started_at).getTime();
  const until = row.finished_at === null ? now : new Date(row.finished_at).getTime();
  const seconds = started === undefined ? 0 : (until - started) / 1000;
  return {
    jobId: row.id,
    state: row.state,
    ...(row.resource_types ? { types: row.resource_types } : {}),
    total: Number(row.total),
    processed,
    createdAt: iso(row.created_at),
    ...(row.started_at !== null ? { startedAt: iso(row.started_at) } : {}),
    updatedAt: iso(row.updated_at),
    ...(row.finished_at !== null ? { finishedAt: iso(row.finished_at) } : {}),
    ratePerSecond: seconds > 0 ? Math.round((processed / seconds) * 10) / 10 : 0,
    stalled: (row.state === 'running' || row.state === 'queued') && now - new Date(row.updated_at).getTime() > STALLED_AFTER_MS,
    ...(row.error !== null ? { error: row.error } : {}),
  };
}

/** A job's progress, or undefined for an unknown id. */
export async function reindexStatus(store: ResourceStore, jobId: string): Promise<ReindexProgress | undefined> {
  const r = await store.db.query<JobRow>(`SELECT * FROM ${quoteIdent(store.schema)}.reindex_job WHERE id = $1`, [jobId]);
  return r.rows[0] ? toProgress(r.rows[0]) : undefined;
}

/** Record a new job (state queued) and return its id. */
export async function createReindexJob(store: ResourceStore, types?: string[]): Promise<string> {
  const id = randomUUID();
  await store.db.query(`INSERT INTO ${quoteIdent(store.schema)}.reindex_job (id, state, resource_types) VALUES ($1, 'queued', $2)`, [id, types ?? null]);
  return id;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Run a recorded job to its end in this process; resolves with the final progress (never rejects on job errors). */
export async function runReindexJob(store: ResourceStore, jobId: string, options: ReindexOptions = {}): Promise<ReindexProgress> {
  const s = quoteIdent(store.schema);
  const batchSize = options.batchSize ?? DEFAULT_REINDEX_BATCH;
  const types = options.types && options.types.length > 0 ? options.types : undefined;
  const update = async (sql: string, params: unknown[]): Promise<ReindexProgress> => {
    const r = await store.db.query<JobRow>(`UPDATE ${s}.reindex_job SET ${sql}, updated_at = now() WHERE id = $1 RETURNING *`, [jobId, ...params]);
    const progress = toProgress(r.rows[0]!);
    options.onProgress?.(progress);
    return progress;
  };
  const typeFilter = types ? 'AND resource_type = ANY($3::text[])' : '';
  try {
    // The embedded store has one process: nobody else to wait for.
    await sleep(options.settleMs ?? (store.db.engine === 'pglite' ? 0 : SETTLE_MS), options.signal);
    const params = tenantSearchParameters(store);
    await params.refreshNow();
    const count = await store.db.query<{ count: string | number }>(
      `SELECT count(*) AS count FROM ${s}.resource WHERE NOT deleted ${types ? 'AND resource_type = ANY($1::text[])' : ''}`,
      types ? [types] : [],
    );
    await update(`state = 'running', started_at = now(), total = $2`, [Number(count.rows[0]?.count ?? 0)]);
    let after = '0';
    for (;;) {
      if (options.signal?.aborted) return await update(`state = 'cancelled', finished_at = now()`, []);
      await params.refreshIfDue();
      const registry = params.registry;
      const batch = await store.db.transaction(async (tx) => {
        const r = await tx.query<{ rid: string | number; resource_type: string; content: string | null }>(
          `SELECT rid, resource_type, content FROM ${s}.resource WHERE rid > $1::bigint AND NOT deleted ${typeFilter}
           ORDER BY rid LIMIT $2 FOR UPDATE`,
          types ? [after, batchSize, types] : [after, batchSize],
        );
        const items = [];
        for (const row of r.rows) {
          let resource: Resource | undefined;
          try {
            resource = row.content === null ? undefined : (JSON.parse(row.content) as Resource);
          } catch {
            resource = undefined; // unreadable content: its index rows are cleared
          }
          items.push({ rid: String(row.rid), resourceType: row.resource_type, rows: resource ? extractIndexRows(resource, registry) : [] });
        }
        await store.replaceIndexRows(tx, items);
        if (items.length > 0) await tx.query(`UPDATE ${s}.reindex_job SET processed = processed + $2, updated_at = now() WHERE id = $1`, [jobId, items.length]);
        return { count: items.length, last: items.at(-1)?.rid };
      });
      if (batch.count === 0) break;
      after = batch.last!;
      if (options.onProgress) {
        const now = await reindexStatus(store, jobId);
        if (now) options.onProgress(now);
      }
    }
    return await update(`state = 'completed', finished_at = now()`, []);
  } catch (error) {
    const message = (error as Error)?.message ?? String(error);
    try {
      return await update(`state = $2, finished_at = now(), error = $3`, [options.signal?.aborted ? 'cancelled' : 'failed', message]);
    } catch {
      // The database is gone (shutdown): report what we know.
      const now = new Date().toISOString();
      return { jobId, state: 'failed', total: 0, processed: 0, createdAt: now, updatedAt: now, ratePerSecond: 0, stalled: false, error: message };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Background jobs of this process

const running = new Set<{ db: ResourceStore['db']; controller: AbortController; done: Promise<ReindexProgress> }>();

/**
 * Record a job and run it in the background of this process; returns its id at once. The job's
 * errors are recorded in its row, never thrown.
 */
export async function startReindexJob(store: ResourceStore, options: Omit<ReindexOptions, 'signal'> = {}): Promise<string> {
  const jobId = await createReindexJob(store, options.types);
  const controller = new AbortController();
  const entry = { db: store.db, controller, done: Promise.resolve() as unknown as Promise<ReindexProgress> };
  entry.done = runReindexJob(store, jobId, { ...options, signal: controller.signal }).finally(() => running.delete(entry));
  running.add(entry);
  return jobId;
}

/** Cancel this process's background jobs on `db` (all when omitted) and wait for their current batch to end: before closing it. */
export async function stopReindexJobs(db?: ResourceStore['db']): Promise<void> {
  const jobs = [...running].filter((j) => db === undefined || j.db === db);
  for (const j of jobs) j.controller.abort();
  await Promise.allSettled(jobs.map((j) => j.done));
}
