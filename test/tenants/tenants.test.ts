/**
 * Tenants through HTTP on each engine: the admin API creates them, each is served at
 * /t/{tenant}/fhir with links on its own base, unknown ones are 404, and their data is isolated
 * (read, search, history, _include, conditional references in transactions, audit trail).
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

// AUTH_MODE=open (test/support/server.ts): the admin API is open as the FHIR API is; its guard
// with AUTH_MODE=smart is tested in test/auth/admin-guard.test.ts.
const admin = {};

describe.each(ENGINES)('tenants on %s', (engine) => {
  const t = useTestServer(engine);
  const origin = () => t.base.replace(/\/fhir$/, '');
  const tenantBase = (name: string) => `${origin()}/t/${name}/fhir`;

  it('the admin API creates and lists tenants; bad names and duplicates are refused', async () => {
    const url = `${origin()}/admin`;
    for (const name of ['Clinic', 'a-b', '1abc', '', 'x'.repeat(42), 42]) {
      const bad = await call(url, 'POST', '/tenants', { name }, admin);
      expect(bad.status, String(name)).toBe(400);
      expect(bad.body.resourceType).toBe('OperationOutcome');
    }
    const created = await call(url, 'POST', '/tenants', { name: 'clinic_a' }, admin);
    expect(created.status).toBe(201);
    // No administrator credentials with AUTH_MODE=open (they would outlive the open mode).
    expect(created.body).toEqual({ name: 'clinic_a', fhirBase: tenantBase('clinic_a') });
    expect((await call(url, 'POST', '/tenants', { name: 'clinic_a' }, admin)).status).toBe(409);
    expect((await call(url, 'POST', '/tenants', { name: 'clinic_b' }, admin)).status).toBe(201);
    const list = await call(url, 'GET', '/tenants', undefined, admin);
    expect(list.status).toBe(200);
    expect(list.body.tenants.map((x: any) => x.name)).toEqual(expect.arrayContaining(['default', 'clinic_a', 'clinic_b']));
  });

  it('concurrent creates of one tenant: exactly one 201, the others 409, and the tenant works', async () => {
    const url = `${origin()}/admin`;
    const statuses = (await Promise.all(Array.from({ length: 6 }, () => call(url, 'POST', '/tenants', { name: 'clinic_race' }, admin)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
    const created = await call(tenantBase('clinic_race'), 'POST', '/Patient', { resourceType: 'Patient', gender: 'other' });
    expect(created.status).toBe(201);
  });

  it('an unknown or malformed tenant is 404 with an OperationOutcome and creates nothing', async () => {
    for (const path of ['/t/nowhere/fhir/Patient', '/t/nowhere/fhir/metadata', '/t/Bad-Name/fhir/Patient']) {
      const r = await call(origin(), 'GET', path);
      expect(r.status, path).toBe(404);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
    expect((await call(origin(), 'POST', '/t/nowhere/fhir/Patient', { resourceType: 'Patient' })).status).toBe(404);
    const list = await call(`${origin()}/admin`, 'GET', '/tenants', undefined, admin);
    expect(list.body.tenants.map((x: any) => x.name)).not.toContain('nowhere');
  });

  it('links (Location, fullUrl, paging, CapabilityStatement) use the tenant base', async () => {
    const a = tenantBase('clinic_a');
    const created = await call(a, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Linked' }] });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`${a}/Patient/${created.body.id}/_history/1`);
    await call(a, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Linked' }] });
    const page = await call(a, 'GET', '/Patient?family=Linked&_count=1');
    expect(page.body.entry[0].fullUrl.startsWith(`${a}/Patient/`)).toBe(true);
    const links = page.body.link.map((l: any) => l.url as string);
    expect(links.length).toBeGreaterThanOrEqual(2);
    for (const link of links) expect(link.startsWith(`${a}/`)).toBe(true);
    const next = page.body.link.find((l: any) => l.relation === 'next').url as string;
    expect((await call(next, 'GET', '')).body.entry).toHaveLength(1);
    const tx = await call(a, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }] }, { prefer: 'return=representation' });
    expect(tx.body.entry[0].fullUrl.startsWith(`${a}/Patient/`)).toBe(true);
    expect((await call(a, 'GET', '/metadata')).body.implementation.url).toBe(a);
  });

  it('two tenants are isolated: read, search, history, _include, transaction references, audit trail', async () => {
    const a = tenantBase('clinic_a');
    const b = tenantBase('clinic_b');
    const marker = `iso-${Date.now()}`;
    const patient = await call(a, 'POST', '/Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:iso', value: marker }], name: [{ family: 'Isolated' }] });
    const pid = patient.body.id as string;
    const obs = await call(a, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: marker }, subject: { reference: `Patient/${pid}` } });
    expect(obs.status).toBe(201);
    // Seen in clinic_a …
    expect((await call(a, 'GET', `/Patient/${pid}`)).status).toBe(200);
    const included = await call(a, 'GET', `/Observation?code:text=${marker}&_include=Observation:subject`);
    expect(included.body.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Observation', 'Patient']);
    // … and nowhere else.
    for (const other of [b, t.base]) {
      expect((await call(other, 'GET', `/Patient/${pid}`)).status).toBe(404);
      expect((await call(other, 'GET', `/Patient/${pid}/_history`)).body.entry ?? []).toEqual([]);
      expect((await call(other, 'GET', `/Patient?identifier=urn:iso|${marker}`)).body.entry ?? []).toEqual([]);
      expect((await call(other, 'GET', `/Observation?code:text=${marker}&_include=Observation:subject`)).body.entry ?? []).toEqual([]);
      const history = await call(other, 'GET', '/_history?_count=500');
      expect(history.body.entry?.some((e: any) => e.fullUrl?.endsWith(`/Patient/${pid}`) || e.resource?.id === pid) ?? false).toBe(false);
      // A conditional reference cannot find clinic_a's patient from another tenant.
      const tx = await call(other, 'POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=urn:iso|${marker}` } }, request: { method: 'POST', url: 'Observation' } }],
      });
      expect(tx.status).toBe(412);
    }
    // An Observation in clinic_b pointing at the id does not pull clinic_a's patient in by _include.
    await call(b, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: marker }, subject: { reference: `Patient/${pid}` } });
    const fromB = await call(b, 'GET', `/Observation?code:text=${marker}&_include=Observation:subject`);
    expect(fromB.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['Observation']);
    // Each tenant's audit trail is its own.
    const auditA = await call(a, 'GET', `/AuditEvent?entity=Patient/${pid}`);
    expect(auditA.body.entry.length).toBeGreaterThanOrEqual(2);
    expect(auditA.body.entry.every((e: any) => e.resource.source.site === 'clinic_a')).toBe(true);
    // Elsewhere only the attempts above are on record (404 reads, empty histories), in that tenant's trail.
    for (const [base, site] of [[t.base, 'default'], [b, 'clinic_b']] as const) {
      const audits = ((await call(base, 'GET', `/AuditEvent?entity=Patient/${pid}`)).body.entry ?? []).map((e: any) => e.resource);
      expect(audits.length).toBeGreaterThanOrEqual(1);
      for (const audit of audits) {
        expect(audit.source.site).toBe(site);
        if (audit.subtype[0].code === 'read') expect(audit.outcome).toBe('4');
      }
      expect(audits.some((a: any) => a.subtype[0].code === 'read')).toBe(true);
    }
  });

  it('the default tenant is also at /t/default/fhir', async () => {
    const created = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Default' }] });
    expect((await call(tenantBase('default'), 'GET', `/Patient/${created.body.id}`)).status).toBe(200);
  });
});
