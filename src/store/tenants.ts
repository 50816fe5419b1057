/**
 * Tenants: each hospital or clinic has its own PostgreSQL schema, chosen per request. The store
 * for a tenant is created (and its migrations applied) the first time the tenant is used.
 */
import type { Database } from './db.js';
import { ResourceStore } from './resource-store.js';

export const DEFAULT_TENANT = 'default';

export function schemaForTenant(tenant: string): string {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(tenant)) throw new Error(`invalid tenant name: ${tenant}`);
  return `tenant_${tenant}`;
}

export class Tenants {
  private readonly stores = new Map<string, Promise<ResourceStore>>();

  constructor(readonly db: Database) {}

  store(tenant: string = DEFAULT_TENANT): Promise<ResourceStore> {
    let pending = this.stores.get(tenant);
    if (!pending) {
      const store = new ResourceStore(this.db, schemaForTenant(tenant));
      pending = store.migrate().then(() => store);
      pending.catch(() => this.stores.delete(tenant));
      this.stores.set(tenant, pending);
    }
    return pending;
  }
}
