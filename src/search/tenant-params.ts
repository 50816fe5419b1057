/**
 * Each tenant's search parameter registry: the R4 core parameters plus the tenant's own active
 * and draft SearchParameter resources, kept per ResourceStore (one store per tenant and process).
 *
 * Consistency across processes (cluster workers sharing one PostgreSQL):
 * - The tenant schema has a one-row table search_param_version. Every write of a SearchParameter
 *   (create, update, delete, through the Writer) increments it in the same transaction.
 * - A process loads the custom parameters together with the version, in one statement (one
 *   snapshot), when the tenant is first used (Tenants.store()).
 * - On every later use of the tenant (Tenants.store(), once per request), the process re-reads the
 *   version at most once per SEARCH_PARAM_REFRESH_MS (1 s) and reloads the parameters when it
 *   changed. So another worker's new parameter is used for searches and for the extraction of
 *   new writes here at most ~1 s after it committed.
 * - In the process that wrote the SearchParameter the version is re-checked on every use until
 *   the new one is loaded, so the next request after the commit already uses it.
 * - Writes that started on another worker during that window are indexed without the new
 *   parameter, as existing resources are: $reindex fixes both, and waits out the window before
 *   it starts (reindex-job.ts).
 * A SearchParameter written in a transaction Bundle does not apply to the other entries of that
 * Bundle (their index rows are computed with the registry the transaction started with).
 */
import type { SearchParameter } from 'fhir/r4.js';
import type { SqlClient } from '../store/db.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { LayeredRegistry } from './registry.js';
import { isSearchable, searchParameterIssues } from './sp-validate.js';

/** How often a process re-reads a tenant's search parameter version (ms). */
export const SEARCH_PARAM_REFRESH_MS = 1000;
/** After a local SearchParameter write, check on every use for this long (or until loaded). */
const LOCAL_CHANGE_WINDOW_MS = 10_000;

interface LoadRow {
  version: string | number;
  id: string | null;
  content: string | null;
}

export class TenantSearchParameters {
  private current = new LayeredRegistry([], -1);
  private checkedAt = 0;
  /** The version a SearchParameter write in this process bumped to (-1: none). */
  private expected = -1;
  private expectedUntil = 0;
  private inflight: Promise<void> | undefined;
  /** SearchParameter resources of the store that were not loaded at the last load, with the reason. */
  skipped: Array<{ id: string; reason: string }> = [];

  constructor(
    readonly store: ResourceStore,
    readonly refreshMs = SEARCH_PARAM_REFRESH_MS,
  ) {}

  /** The tenant's registry as last loaded (core parameters only until the first load). */
  get registry(): LayeredRegistry {
    return this.current;
  }

  /** The search_param_version the registry was loaded at (-1: not loaded yet). */
  get version(): number {
    return this.current.version;
  }

  /** Load the version and the searchable SearchParameter resources now (throws on database errors). */
  async load(): Promise<void> {
    const s = quoteIdent(this.store.schema);
    const r = await this.store.db.query<LoadRow>(
      `SELECT v.version, r.id, r.content FROM ${s}.search_param_version v
       LEFT JOIN ${s}.resource r ON r.resource_type = 'SearchParameter' AND NOT r.deleted
       ORDER BY r.last_updated, r.rid`,
    );
    const version = Number(r.rows[0]?.version ?? 0);
    const custom: SearchParameter[] = [];
    const skipped: Array<{ id: string; reason: string }> = [];
    for (const row of r.rows) {
      if (row.content === null || row.id === null) continue;
      let sp: SearchParameter;
      try {
        sp = JSON.parse(row.content) as SearchParameter;
      } catch {
        skipped.push({ id: row.id, reason: 'not JSON' });
        continue;
      }
      if (!isSearchable(sp)) continue;
      const issues = searchParameterIssues(sp);
      if (issues.length > 0) skipped.push({ id: row.id, reason: issues.map((i) => i.diagnostics).join('; ') });
      else custom.push(sp);
    }
    this.checkedAt = Date.now();
    // Loads may overlap: never replace a newer registry by an older one.
    if (version >= this.current.version) {
      this.current = new LayeredRegistry(custom, version);
      this.skipped = skipped;
    }
  }

  /**
   * Bring the registry up to date if a check is due: at most once per refreshMs, or on every call
   * while a SearchParameter written by this process is not loaded yet. Never throws: on a database
   * error the current registry is kept and the check is retried on the next call.
   */
  async refreshIfDue(): Promise<void> {
    const now = Date.now();
    const localChange = this.current.version < this.expected && now < this.expectedUntil;
    if (!localChange && this.current.version >= 0 && now - this.checkedAt < this.refreshMs) return;
    // A check already running may have started before that write committed: do one of our own.
    if (localChange) return this.check();
    this.inflight ??= this.check().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Check now, whatever the interval (reindex start, tests). */
  async refreshNow(): Promise<void> {
    await this.check();
  }

  private async check(): Promise<void> {
    try {
      if (this.current.version < 0) return await this.load();
      const r = await this.store.db.query<{ version: string | number }>(`SELECT version FROM ${quoteIdent(this.store.schema)}.search_param_version`);
      this.checkedAt = Date.now();
      if (Number(r.rows[0]?.version ?? 0) !== this.current.version) await this.load();
    } catch {
      // Keep the registry we have; the next call checks again.
    }
  }

  /** In the transaction that writes a SearchParameter: bump the tenant's version. */
  async bump(tx: SqlClient): Promise<void> {
    const r = await tx.query<{ version: string | number }>(
      `UPDATE ${quoteIdent(this.store.schema)}.search_param_version SET version = version + 1 RETURNING version`,
    );
    const v = Number(r.rows[0]?.version ?? 0);
    this.expected = Math.max(this.expected, v);
    this.expectedUntil = Date.now() + LOCAL_CHANGE_WINDOW_MS;
  }
}

const byStore = new WeakMap<ResourceStore, TenantSearchParameters>();

/** The search parameters of the tenant `store` belongs to (created, unloaded, on first call). */
export function tenantSearchParameters(store: ResourceStore): TenantSearchParameters {
  let t = byStore.get(store);
  if (!t) byStore.set(store, (t = new TenantSearchParameters(store)));
  return t;
}

/** The current search registry of the tenant `store` belongs to (synchronous; see refreshIfDue). */
export function searchRegistryOf(store: ResourceStore): LayeredRegistry {
  return tenantSearchParameters(store).registry;
}
