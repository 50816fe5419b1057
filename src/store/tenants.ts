/**
 * Tenants: each hospital or clinic has its own PostgreSQL schema, chosen per request. The store
 * for a tenant is created (and its migrations applied) the first time the tenant is used.
 */
import type { Database } from './db.js';
import { ResourceStore } from './resource-store.js';
import { tenantSearchParameters } from '../search/tenant-params.js';

export const DEFAULT_TENANT = 'default';

export function schemaForTenant(tenant: string): string {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(tenant)) throw new Error(`invalid tenant name: ${tenant}`);
  return `tenant_${tenant}`;
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
