/** An unmodified FHIR client library (fhir-kit-client) works against CareBridge. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'fhir-kit-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, useTestServer } from '../support/server.js';

describe.each(ENGINES)('fhir-kit-client on %s', (engine) => {
  const t = useTestServer(engine);
  let client: Client;
  beforeAll(() => {
    client = new Client({ baseUrl: t.base });
  });

  it('create, read, vread, update, patch, history, search, delete', async () => {
    const created: any = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', identifier: [{ system: 'urn:fkc', value: '1' }], name: [{ family: 'Kit' }] } });
    expect(created.id).toBeTruthy();
    const read: any = await client.read({ resourceType: 'Patient', id: created.id });
    expect(read.name[0].family).toBe('Kit');
    const updated: any = await client.update({ resourceType: 'Patient', id: created.id, body: { ...read, gender: 'female' } });
    expect(updated.meta.versionId).toBe('2');
    const patched: any = await client.patch({ resourceType: 'Patient', id: created.id, jsonPatch: [{ op: 'replace', path: '/gender', value: 'male' }] });
    expect(patched.gender).toBe('male');
    const v1: any = await client.vread({ resourceType: 'Patient', id: created.id, version: '1' });
    expect(v1.gender).toBeUndefined();
    const history: any = await client.history({ resourceType: 'Patient', id: created.id });
    expect(history.entry).toHaveLength(3);
    const found: any = await client.search({ resourceType: 'Patient', searchParams: { identifier: 'urn:fkc|1' } });
    expect(found.entry.map((e: any) => e.resource.id)).toEqual([created.id]);
    await client.delete({ resourceType: 'Patient', id: created.id });
    await expect(client.read({ resourceType: 'Patient', id: created.id })).rejects.toMatchObject({ response: { status: 410 } });
  });

  it('capabilityStatement and a Synthea transaction', async () => {
    const cs: any = await client.capabilityStatement();
    expect(cs.fhirVersion).toBe('4.0.1');
    const dir = join(import.meta.dirname, '../../fixtures/synthea');
    const bundle = JSON.parse(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!), 'utf8'));
    const response: any = await client.transaction({ body: bundle });
    expect(response.type).toBe('transaction-response');
    expect(response.entry.every((e: any) => e.response.status === '201 Created')).toBe(true);
  });

  it('paging through search results with nextPage', async () => {
    for (let i = 0; i < 5; i++) await client.create({ resourceType: 'Device', body: { resourceType: 'Device', status: 'active' } });
    let page: any = await client.search({ resourceType: 'Device', searchParams: { _count: 2 } });
    const ids: string[] = [];
    while (page) {
      ids.push(...(page.entry ?? []).map((e: any) => e.resource.id));
      page = await client.nextPage({ bundle: page });
    }
    expect(new Set(ids).size).toBe(5);
  });
});
