/**
 * Who the audit trail names when authorization is on (AUTH_MODE=smart), through HTTP on each
 * engine: the token's client in AuditEvent.agent and Provenance.agent, refused requests (401,
 * 403) recorded as failures, and the login record of recordLoginAudit.
 */
import { describe, expect, it } from 'vitest';
import { recordLoginAudit } from '../../src/audit/record.js';
import { loadConfig } from '../../src/config.js';
import { Tenants } from '../../src/store/tenants.js';
import { backendToken, bearer, registerBackend, systemToken, useAuthServer } from '../support/auth.js';
import { call, ENGINES } from '../support/server.js';

const CLIENT_SYSTEM = 'urn:carebridge:oauth-client';

describe.each(ENGINES)('audit agents with tokens on %s', (engine) => {
  const t = useAuthServer(engine);

  async function audits(token: string, query: string): Promise<any[]> {
    const r = await call(t.base, 'GET', `/AuditEvent?${query}&_count=100`, undefined, bearer(token));
    expect(r.status, r.text).toBe(200);
    return (r.body.entry ?? []).map((e: any) => e.resource);
  }

  it('AuditEvent and Provenance name the client of the token', async () => {
    const client = await registerBackend(t.base, 'system/*.cruds');
    const token = (await backendToken(t.base, client, 'system/*.cruds')).access_token as string;
    const clientId = client.clientId;
    const created = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Agent' }] }, bearer(token));
    expect(created.status).toBe(201);
    const [audit] = await audits(token, `entity=Patient/${created.body.id}`);
    const requestor = audit.agent.find((a: any) => a.requestor);
    expect(requestor.who.identifier).toEqual({ system: CLIENT_SYSTEM, value: clientId });
    expect(requestor.network.address).toMatch(/127\.0\.0\.1|::1/);
    const provenance = (await call(t.base, 'GET', `/Provenance?target=Patient/${created.body.id}`, undefined, bearer(token))).body.entry[0].resource;
    expect(provenance.agent[0].who.identifier.value).toBe(clientId);
  });

  it('a request without a valid token (401) and one outside the scopes (403) are recorded as failures', async () => {
    const before = await audits(await systemToken(t.base, 'system/*.cruds'), 'outcome=4&subtype=http://hl7.org/fhir/restful-interaction|search-type');
    const anonymous = await call(t.base, 'GET', '/Patient?family=Nobody', undefined, { authorization: 'Bearer not-a-token' });
    expect(anonymous.status).toBe(401);
    const narrow = await systemToken(t.base, 'system/Observation.rs');
    expect((await call(t.base, 'GET', '/Patient?family=Nobody', undefined, bearer(narrow))).status).toBe(403);
    const after = await audits(await systemToken(t.base, 'system/*.cruds'), 'outcome=4&subtype=http://hl7.org/fhir/restful-interaction|search-type');
    expect(after.length).toBe(before.length + 2);
  });

  it('recordLoginAudit writes a BALP login AuditEvent for the tenant', async () => {
    const tenants = new Tenants(t.server.db);
    await recordLoginAudit({ config: loadConfig({}), tenants }, { tenant: 'default', success: false, access: { clientId: 'login-test-client' }, ip: '192.0.2.7', failure: 'invalid_client' });
    const token = await systemToken(t.base, 'system/*.cruds');
    const found = await audits(token, 'type=http://dicom.nema.org/resources/ontology/DCM|110114&address=192.0.2.7');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ action: 'E', outcome: '4', outcomeDesc: 'invalid_client', subtype: [{ code: '110122' }] });
    expect(found[0].agent.find((a: any) => a.requestor).who.identifier.value).toBe('login-test-client');
  });
});
