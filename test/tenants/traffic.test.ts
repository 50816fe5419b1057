/**
 * Traffic policy through HTTP on each engine: CORS for configured browser origins, the per-client
 * rate limit (429 + Retry-After + OperationOutcome), and AUDIT=off writing no audit records.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

const APP = 'https://app.example.org';
const LIMIT = 20;
const IP_LIMIT = 50;

describe.each(ENGINES)('CORS, rate limit and AUDIT=off on %s', (engine) => {
  const t = useTestServer(engine, { CORS_ORIGINS: `${APP}, https://other.example.org`, RATE_LIMIT_PER_MINUTE: String(LIMIT), RATE_LIMIT_IP_PER_MINUTE: String(IP_LIMIT), AUDIT: 'off' });

  it('answers a CORS preflight from a configured origin and exposes the FHIR headers', async () => {
    const preflight = await fetch(`${t.base}/Patient/123`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization, content-type, if-match' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
    const created = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient' }, { origin: APP });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe(APP);
    const exposed = (created.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(['etag', 'location', 'content-location', 'last-modified']));
    // Another origin gets no CORS grant (the browser then withholds the response).
    const stranger = await call(t.base, 'GET', '/metadata', undefined, { origin: 'https://evil.example.com' });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('AUDIT=off records no AuditEvent and no Provenance', async () => {
    const created = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Unaudited' }] });
    expect((await call(t.base, 'GET', `/Patient/${created.body.id}`)).status).toBe(200);
    expect((await call(t.base, 'GET', '/AuditEvent?_summary=count')).body.total).toBe(0);
    expect((await call(t.base, 'GET', '/Provenance?_summary=count')).body.total).toBe(0);
  });

  it('over RATE_LIMIT_PER_MINUTE a client gets 429 with Retry-After and an OperationOutcome', async () => {
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i <= LIMIT && !refused; i++) {
      const r = await call(t.base, 'GET', '/Patient?_count=1');
      if (r.status === 429) refused = r;
      else expect(r.status).toBe(200);
    }
    expect(refused?.status).toBe(429);
    expect(refused!.body.resourceType).toBe('OperationOutcome');
    expect(refused!.body.issue[0].code).toBe('throttled');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
    // Other tenants' mounts count against the same client; health probes are never limited.
    expect((await call(t.base.replace(/\/fhir$/, '/t/default/fhir'), 'GET', '/metadata')).status).toBe(429);
    expect((await call(t.base.replace(/\/fhir$/, ''), 'GET', '/healthz')).status).toBe(200);
  });

  it('over RATE_LIMIT_IP_PER_MINUTE an address gets 429 everywhere, the admin API included', async () => {
    const adminUrl = t.base.replace(/\/fhir$/, '/admin');
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i <= IP_LIMIT && !refused; i++) {
      const r = await call(adminUrl, 'GET', '/tenants'); // 200 (AUTH_MODE=open) until the address is over its limit
      if (r.status === 429) refused = r;
      else expect(r.status).toBe(200);
    }
    expect(refused?.status).toBe(429);
    expect(refused!.body.issue[0].diagnostics).toMatch(/from this address/);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
