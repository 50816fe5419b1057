/**
 * The one admin guard (src/auth/admin-guard.ts) over every admin surface, through HTTP:
 * /admin/tenants, /admin/hl7v2, /admin/jobs (default tenant's tokens) and {fhir base}/admin/*
 * (that tenant's tokens). AUTH_MODE=smart: no token / bad token / another tenant's token → 401
 * with WWW-Authenticate, no `admin` scope → 403, the admin token → served. A new tenant comes with
 * its administrator's credentials, once. AUTH_MODE=open: open, except credential registration.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, startTestServer } from '../support/server.js';
import { adminToken, bearer, tokenRequest, useAuthServer } from '../support/auth.js';

type Surface = { name: string; method: string; path: string; body?: unknown };

/** The server-wide surfaces, relative to the origin; reading ones (nothing changes when served). */
const SERVER_SURFACES: Surface[] = [
  { name: 'tenants', method: 'GET', path: '/admin/tenants' },
  { name: 'hl7v2', method: 'GET', path: '/admin/hl7v2/messages?_count=1' },
  { name: 'jobs', method: 'GET', path: '/admin/jobs/failed?queue=fhir-change' },
];

function expectRefused(r: { status: number; headers: Headers; body: any }, status: 401 | 403, what: string) {
  expect(r.status, what).toBe(status);
  expect(r.body?.resourceType, what).toBe('OperationOutcome');
  expect(r.headers.get('www-authenticate'), what).toMatch(status === 401 ? /^Bearer .*error="invalid_token"/ : /insufficient_scope/);
}

async function clientToken(base: string, clientId: string, secret: string, scope: string): Promise<string> {
  const basic = Buffer.from(`${clientId}:${secret}`).toString('base64');
  const r = await tokenRequest(base, { grant_type: 'client_credentials', scope }, { authorization: `Basic ${basic}` });
  expect(r.status, r.text).toBe(200);
  return r.body.access_token as string;
}

describe.each(ENGINES)('admin guard, AUTH_MODE=smart (%s)', (engine) => {
  const t = useAuthServer(engine);
  const origin = () => t.base.replace(/\/fhir$/, '');

  it('every server-wide admin surface refuses no token, a bad one and one without the admin scope; serves the admin token', async () => {
    const admin = bearer(await adminToken(t.base));
    const noAdminScope = bearer(await adminToken(t.base, 'system/*.cruds'));
    for (const s of SERVER_SURFACES) {
      expectRefused(await call(origin(), s.method, s.path), 401, `${s.name} without a token`);
      expectRefused(await call(origin(), s.method, s.path, undefined, { authorization: 'Bearer not-a-token' }), 401, `${s.name} with a bad token`);
      expectRefused(await call(origin(), s.method, s.path, undefined, { authorization: 'Basic Y2FyZWJyaWRnZS1hZG1pbjp4' }), 401, `${s.name} with Basic`);
      expectRefused(await call(origin(), s.method, s.path, undefined, noAdminScope), 403, `${s.name} without the admin scope`);
      const ok = await call(origin(), s.method, s.path, undefined, admin);
      expect(ok.status, `${s.name}: ${ok.text}`).toBe(200);
    }
    // Writes are guarded too (before any validation): replaying a message, retrying a job, making a tenant.
    expectRefused(await call(origin(), 'POST', '/admin/hl7v2/messages/1/replay'), 401, 'hl7v2 replay');
    expectRefused(await call(origin(), 'POST', '/admin/jobs/fhir-change/1/retry', undefined, noAdminScope), 403, 'jobs retry');
    expectRefused(await call(origin(), 'POST', '/admin/tenants', { name: 'sneaky' }, noAdminScope), 403, 'tenant creation');
    expect((await call(origin(), 'GET', '/admin/tenants', undefined, admin)).body.tenants.map((x: any) => x.name)).not.toContain('sneaky');
    // An unknown admin path is not even revealed without the token.
    expectRefused(await call(origin(), 'GET', '/admin/nothing-here'), 401, 'unknown admin path');
  });

  it("a new tenant comes with its administrator's credentials once; tokens never cross tenants on admin surfaces", async () => {
    const admin = bearer(await adminToken(t.base));
    const created = await call(origin(), 'POST', '/admin/tenants', { name: 'guarded_a' }, admin);
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const tenantBase = `${origin()}/t/guarded_a/fhir`;
    const cred = created.body.administrator;
    expect(cred).toMatchObject({ client_id: 'carebridge-admin', scope: 'admin system/*.cruds', token_endpoint: `${tenantBase}/auth/token` });
    expect(cred.client_secret).toMatch(/^[\w-]{40,}$/);
    // Listing never shows a secret again.
    expect((await call(origin(), 'GET', '/admin/tenants', undefined, admin)).text).not.toContain(cred.client_secret);
    // The default tenant's administrator secret does not open the new tenant.
    const wrongSecret = await tokenRequest(tenantBase, { grant_type: 'client_credentials', scope: 'admin' }, { authorization: `Basic ${Buffer.from('carebridge-admin:test-admin-secret-7f3a9c').toString('base64')}` });
    expect(wrongSecret.status).toBe(401);

    const tenantAdmin = bearer(await clientToken(tenantBase, cred.client_id, cred.client_secret, 'admin system/*.cruds'));
    // The tenant's admin API: its own admin token works …
    const launch = await call(tenantBase, 'POST', '/admin/clients', { name: 'App', kind: 'public', scope: 'patient/*.rs', redirectUris: ['https://app.example/cb'] }, tenantAdmin);
    expect(launch.status, launch.text).toBe(201);
    expect((await call(tenantBase, 'GET', '/Patient', undefined, tenantAdmin)).status).toBe(200);
    // … the default tenant's admin token does not (401: another tenant's), nor the tenant's token without admin.
    expectRefused(await call(tenantBase, 'POST', '/admin/clients', { name: 'x', kind: 'public', scope: 'patient/*.rs', redirectUris: ['https://x.example/cb'] }, admin), 401, "default tenant's token on the tenant's admin API");
    const tenantNoAdmin = bearer(await clientToken(tenantBase, cred.client_id, cred.client_secret, 'system/*.cruds'));
    expectRefused(await call(tenantBase, 'POST', '/admin/launch', { patient: 'x' }, tenantNoAdmin), 403, 'tenant token without admin');
    expectRefused(await call(tenantBase, 'POST', '/admin/launch', { patient: 'x' }), 401, 'tenant admin API without a token');
    // The server-wide surfaces take the default tenant's administrator only.
    for (const s of SERVER_SURFACES) expectRefused(await call(origin(), s.method, s.path, undefined, tenantAdmin), 401, `${s.name} with another tenant's admin token`);
    // And the default tenant's admin API refuses the new tenant's token.
    expectRefused(await call(t.base, 'POST', '/admin/launch', { patient: 'x' }, tenantAdmin), 401, "tenant token on the default tenant's admin API");
  });
});

describe('admin guard, AUTH_MODE=open (pglite)', () => {
  it('server-wide surfaces are open like the FHIR API; credential registration is closed; a new tenant gets no credentials', async () => {
    const t = await startTestServer('pglite', { AUTH_MODE: 'open' });
    try {
      const origin = t.base.replace(/\/fhir$/, '');
      for (const s of SERVER_SURFACES) expect((await call(origin, s.method, s.path)).status, s.name).toBe(200);
      const created = await call(origin, 'POST', '/admin/tenants', { name: 'open_a' });
      expect(created.status).toBe(201);
      expect(created.body.administrator).toBeUndefined();
      for (const [path, body] of [['/admin/clients', { name: 'x', kind: 'confidential', scope: 'system/*.rs' }], ['/admin/users', { username: 'u', password: 'Correct-Horse-42', fhirUser: 'Practitioner/1' }], ['/admin/launch', { patient: 'p' }]] as const) {
        const r = await call(t.base, 'POST', path, body);
        expect(r.status, path).toBe(403);
        expect(r.body.resourceType).toBe('OperationOutcome');
        expect(r.body.issue[0].diagnostics).toMatch(/AUTH_MODE=open/);
      }
    } finally {
      await t.close();
    }
  });
});
