/**
 * Tenants: each hospital or clinic has its own PostgreSQL schema, chosen per request. The store
 * for a tenant is created (and its migrations applied) the first time the tenant is used.
 */
import type { Database, SqlClient } from './db.js';
import { ResourceStore } from './resource-store.js';
import { tenantSearchParameters } from '../search/tenant-params.js';

export const DEFAULT_TENANT = 'default';

export function schemaForTenant(tenant: string): string {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(tenant)) throw new Error(`invalid tenant name: ${tenant}`);
  return `tenant_${tenant}`;
}

/**
 * The tenant schemas (tenant_<name>) in which `table` exists — and, given `column`, has that
 * column — sorted: background loops find every tenant's work this way, including tenants other
 * processes created, and skip schemas whose migrations have not reached that table yet.
 */
export async function tenantSchemasWith(db: SqlClient, table: string, column?: string): Promise<string[]> {
  const r = column
    ? await db.query<{ schema: string }>(
        `SELECT table_schema AS schema FROM information_schema.columns WHERE table_name = $1 AND column_name = $2 AND table_schema LIKE 'tenant\\_%' ORDER BY 1`,
        [table, column],
      )
    : await db.query<{ schema: string }>(`SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = $1 AND table_schema LIKE 'tenant\\_%' ORDER BY 1`, [table]);
  return r.rows.map((row) => row.schema);
}

export class Tenants {
  private readonly stores = new Map<string, Promise<ResourceStore>>();

  constructor(readonly db: Database) {}

  /**
   * The tenant's store, its custom search parameters loaded; on later calls they are re-checked
   * when due (at most once a second: src/search/tenant-params.ts).
   */
  async store(tenant: string = DEFAULT_TENANT): Promise<ResourceStore> {
    let pending = this.stores.get(tenant);
    if (!pending) {
      const store = new ResourceStore(this.db, schemaForTenant(tenant));
      pending = store.migrate().then(() => tenantSearchParameters(store).load()).then(() => store);
      pending.catch(() => this.stores.delete(tenant));
      this.stores.set(tenant, pending);
    }
    const store = await pending;
    await tenantSearchParameters(store).refreshIfDue();
    return store;
  }
}
