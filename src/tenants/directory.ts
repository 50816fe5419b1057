/**
 * Which tenants exist. A tenant is its PostgreSQL schema (tenant_<name>, src/store/tenants.ts);
 * it exists once created explicitly (admin API, CLI) — only 'default' exists implicitly — so a
 * mistyped /t/{tenant}/fhir answers 404 instead of creating a schema. Existence is read from the
 * database (every worker process sees a tenant another one created); known tenants are cached.
 */
import { FhirError, notFound } from '../fhir/outcome.js';
import { sqlState } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import { DEFAULT_TENANT, schemaForTenant, tenantSchemasWith, type Tenants } from '../store/tenants.js';

/** Lowercase letter first, then lowercase letters, digits or '_': usable in a url and as a schema name. */
export const TENANT_NAME = /^[a-z][a-z0-9_]{0,40}$/;

const known = new WeakMap<Tenants, Set<string>>();

function knownOf(tenants: Tenants): Set<string> {
  let set = known.get(tenants);
  if (!set) known.set(tenants, (set = new Set([DEFAULT_TENANT])));
  return set;
}

export function checkTenantName(name: unknown): string {
  if (typeof name !== 'string' || !TENANT_NAME.test(name)) {
    throw new FhirError(400, {
      severity: 'error',
      code: 'invalid',
      diagnostics: `A tenant name is 1 to 41 characters: a lowercase letter, then lowercase letters, digits or '_' (got ${JSON.stringify(name)})`,
    });
  }
  return name;
}

async function schemaExists(tenants: Tenants, name: string): Promise<boolean> {
  const r = await tenants.db.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'schema_migrations') AS ok`,
    [schemaForTenant(name)],
  );
  return r.rows[0]?.ok === true;
}

export async function tenantExists(tenants: Tenants, name: string): Promise<boolean> {
  if (!TENANT_NAME.test(name)) return false;
  const set = knownOf(tenants);
  if (set.has(name)) return true;
  if (!(await schemaExists(tenants, name))) return false;
  set.add(name);
  return true;
}

/** The tenant's store, or 404 if the tenant was never created. */
export async function existingTenantStore(tenants: Tenants, name: string) {
  if (!(await tenantExists(tenants, name))) throw notFound(`Unknown tenant '${name}'`);
  return tenants.store(name);
}

/** Create a tenant (its schema and tables); false if it already existed. */
export async function createTenant(tenants: Tenants, name: string): Promise<boolean> {
  checkTenantName(name);
  if (await tenantExists(tenants, name)) return false;
  // CREATE SCHEMA is the claim: of several concurrent creators (any process) exactly one succeeds;
  // the others get duplicate_schema, wait for the winner's migrations and answer "exists".
  let created = true;
  try {
    await tenants.db.query(`CREATE SCHEMA ${quoteIdent(schemaForTenant(name))}`);
  } catch (error) {
    // 42P06 when the schema was there before; 23505 (pg_namespace's unique index) when another
    // creator's CREATE SCHEMA was still uncommitted as this one checked.
    const state = sqlState(error);
    if (state !== '42P06' && state !== '23505') throw error;
    created = false;
  }
  await tenants.store(name); // applies the migrations (under their lock: a loser waits for the winner)
  knownOf(tenants).add(name);
  return created;
}

/** Every created tenant (the default one included once it has been used), sorted by name. */
export async function listTenants(tenants: Tenants): Promise<string[]> {
  const schemas = await tenantSchemasWith(tenants.db, 'schema_migrations');
  return schemas.map((schema) => schema.slice('tenant_'.length)).filter((n) => TENANT_NAME.test(n));
}
