/** Writers racing each other: the database, not the application, keeps versions and conditions straight. */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

describe.each(ENGINES)('concurrent writers on %s', (engine) => {
  const t = useTestServer(engine);

  it('20 parallel If-Match updates of one version: exactly one wins; history has no gaps', async () => {
    const c = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Race' }] });
    const id = c.body.id;
    let version = 1;
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          call(t.base, 'PUT', `/Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: `Race-${round}-${i}` }] }, { 'if-match': `W/"${version}"` }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 412)).toHaveLength(19);
      version++;
    }
    const h = await call(t.base, 'GET', `/Patient/${id}/_history`);
    expect(h.body.entry.map((e: any) => Number(e.resource.meta.versionId))).toEqual([4, 3, 2, 1]);
  });

  it('20 parallel updates without If-Match: all succeed, versions 2..21 each exactly once', async () => {
    const c = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient' });
    const id = c.body.id;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => call(t.base, 'PUT', `/Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: `U${i}` }] })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    const h = await call(t.base, 'GET', `/Patient/${id}/_history?_count=100`);
    expect(h.body.entry.map((e: any) => Number(e.resource.meta.versionId))).toEqual(Array.from({ length: 21 }, (_, i) => 21 - i));
  });

  it('20 parallel conditional creates with one If-None-Exist make exactly one resource', async () => {
    const value = `par-${Date.now()}`;
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:race', value }] };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => call(t.base, 'POST', '/Patient', body, { 'if-none-exist': `identifier=urn:race|${value}` })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(19);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const found = await call(t.base, 'GET', `/Patient?identifier=urn:race|${value}&_total=accurate`);
    expect(found.body.total).toBe(1);
  });

  it('20 parallel conditional updates with one condition make one resource with 20 versions', async () => {
    const value = `cu-par-${Date.now()}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(t.base, 'PUT', `/Patient?identifier=urn:race|${value}`, { resourceType: 'Patient', identifier: [{ system: 'urn:race', value }], name: [{ family: `C${i}` }] }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(19);
    const found = await call(t.base, 'GET', `/Patient?identifier=urn:race|${value}&_total=accurate`);
    expect(found.body.total).toBe(1);
    expect(found.body.entry[0].resource.meta.versionId).toBe('20');
  });
});
