/**
 * Custom search parameters at store level: each tenant has its own (one database, several tenant
 * schemas), and another process sharing the database picks them up within the refresh interval
 * (two Tenants on one database stand for two cluster workers).
 */
import type { Patient, SearchParameter } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResource } from '../../src/interactions/create.js';
import { deleteResource } from '../../src/interactions/delete.js';
import { searchResources } from '../../src/interactions/search.js';
import { extractIndexRows } from '../../src/search/extract.js';
import { searchParamsFor } from '../../src/search/parameters.js';
import { SEARCH_PARAM_REFRESH_MS, searchRegistryOf, tenantSearchParameters } from '../../src/search/tenant-params.js';
import type { Database } from '../../src/store/db.js';
import { PgliteDatabase, PostgresDatabase } from '../../src/store/engines.js';
import type { ResourceStore } from '../../src/store/resource-store.js';
import { Tenants } from '../../src/store/tenants.js';
import { createTestDatabase, ENGINES } from '../support/server.js';

const EXT = 'http://example.org/fhir/StructureDefinition/favourite-colour';
const sp = (code: string): SearchParameter => ({
  resourceType: 'SearchParameter',
  url: `http://example.org/fhir/SearchParameter/${code}`,
  name: code,
  status: 'active',
  description: code,
  code,
  base: ['Patient'],
  type: 'token',
  expression: `Patient.extension.where(url='${EXT}').value`,
});
const patient = (colour: string): Patient => ({ resourceType: 'Patient', extension: [{ url: EXT, valueCode: colour }] });
const ctx = (store: ResourceStore) => ({ store, baseUrl: 'http://test/fhir' });

async function search(store: ResourceStore, query: string, strict = false): Promise<{ ids: string[]; outcome: string[] }> {
  const r = await searchResources(ctx(store), 'Patient', [...new URLSearchParams(query)], { strict });
  const bundle = JSON.parse(r.body as string);
  const entries = bundle.entry ?? [];
  return {
    ids: entries.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id),
    outcome: entries.filter((e: any) => e.search.mode === 'outcome').flatMap((e: any) => e.resource.issue.map((i: any) => i.diagnostics)),
  };
}

describe.each(ENGINES)('custom search parameters per tenant on %s', (engine) => {
  let db: Database;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (engine === 'pglite') db = await PgliteDatabase.open();
    else {
      const test = await createTestDatabase();
      db = new PostgresDatabase(test.url, 4);
      drop = test.drop;
    }
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  it('a tenant sees its own custom parameters only; the core registry is untouched', async () => {
    const tenants = new Tenants(db);
    const alpha = await tenants.store('alpha');
    const beta = await tenants.store('beta');
    expect((await createResource(ctx(alpha), 'SearchParameter', sp('colour'))).status).toBe(201);
    await tenants.store('alpha');
    const a = (await createResource(ctx(alpha), 'Patient', patient('blue'))).body as Patient;
    const b = (await createResource(ctx(beta), 'Patient', patient('blue'))).body as Patient;

    expect((await search(alpha, 'colour=blue')).ids).toEqual([a.id]);
    const inBeta = await search(beta, 'colour=blue');
    expect(inBeta.ids).toEqual([b.id]); // the unknown parameter is ignored...
    expect(inBeta.outcome.join()).toMatch(/Unknown search parameter 'colour'/); // ...and reported
    await expect(search(beta, 'colour=blue', true)).rejects.toThrow(/Unknown search parameter 'colour'/);

    expect(searchRegistryOf(alpha).paramsFor('Patient').has('colour')).toBe(true);
    expect(searchRegistryOf(beta).paramsFor('Patient').has('colour')).toBe(false);
    expect(searchParamsFor('Patient').has('colour')).toBe(false);
    const rows = (store: ResourceStore) => extractIndexRows(patient('red'), searchRegistryOf(store)).filter((r) => r.param === 'colour');
    expect(rows(alpha).map((r) => r.values)).toEqual([[null, 'red', null]]);
    expect(rows(beta)).toEqual([]);
  });

  it('loads the parameters of a tenant on first use', async () => {
    const first = new Tenants(db);
    const store = await first.store('delta');
    await createResource(ctx(store), 'SearchParameter', sp('shade'));
    await createResource(ctx(store), 'SearchParameter', { ...sp('retired-one'), status: 'retired' });
    const restarted = await new Tenants(db).store('delta');
    expect(searchRegistryOf(restarted).custom.map((p) => p.code)).toEqual(['shade']);
    expect(tenantSearchParameters(restarted).version).toBe(2);
  });

  it('another process picks up a new or deleted parameter within the refresh interval', async () => {
    const worker1 = new Tenants(db);
    const worker2 = new Tenants(db);
    const s1 = await worker1.store('gamma');
    const s2 = await worker2.store('gamma');
    const created = await createResource(ctx(s1), 'SearchParameter', sp('hue'));
    await worker1.store('gamma');
    expect(searchRegistryOf(s1).paramsFor('Patient').has('hue')).toBe(true); // the writing process: next use
    await worker2.store('gamma');
    expect(searchRegistryOf(s2).paramsFor('Patient').has('hue')).toBe(false); // checked less than a second ago
    await new Promise((r) => setTimeout(r, SEARCH_PARAM_REFRESH_MS + 50));
    await worker2.store('gamma');
    expect(searchRegistryOf(s2).paramsFor('Patient').has('hue')).toBe(true);

    // Written by worker 2, found by worker 1.
    const p = (await createResource(ctx(s2), 'Patient', patient('green'))).body as Patient;
    expect((await search(s1, 'hue=green', true)).ids).toEqual([p.id]);

    await deleteResource(ctx(s2), 'SearchParameter', (created.body as SearchParameter).id!);
    await new Promise((r) => setTimeout(r, SEARCH_PARAM_REFRESH_MS + 50));
    await worker1.store('gamma');
    expect(searchRegistryOf(s1).paramsFor('Patient').has('hue')).toBe(false);
  });
});
