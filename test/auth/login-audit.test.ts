/**
 * Sign-ins and token requests on the audit trail (src/auth/login-audit.ts → recordLoginAudit),
 * through HTTP: a refused sign-in and a refused token request each write a login AuditEvent with
 * a failure outcome; a sign-in and a grant write one with success. Nothing secret is recorded.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES } from '../support/server.js';
import { admin, adminToken, authorize, bearer, registerApp, tokenRequest, useAuthServer, userToken } from '../support/auth.js';

const PASSWORD = 'Correct-Horse-42';
const LOGIN = 'http://dicom.nema.org/resources/ontology/DCM|110122';

describe.each(ENGINES)('login audit (%s)', (engine) => {
  const t = useAuthServer(engine);

  async function loginEvents(): Promise<any[]> {
    const r = await call(t.base, 'GET', `/AuditEvent?subtype=${encodeURIComponent(LOGIN)}&_count=200`, undefined, bearer(await adminToken(t.base)));
    expect(r.status, r.text).toBe(200);
    return (r.body.entry ?? []).map((e: any) => e.resource);
  }

  it('a failed sign-in writes a login AuditEvent with a failure outcome; a good one a success', async () => {
    const p = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Audited' }] }, bearer(await adminToken(t.base)));
    const fhirUser = `Patient/${p.body.id}`;
    const user = await admin(t.base, 'users', { username: 'audited.user', password: PASSWORD, fhirUser });
    const app = await registerApp(t.base, 'patient/*.rs');
    const wrongPassword = 'Wrong-Horse-4242';
    const refused = await authorize(t.base, app, { username: 'audited.user', password: wrongPassword, scope: 'patient/*.rs' });
    expect(refused.status).toBe(401);
    const unknown = await authorize(t.base, app, { username: 'nobody.here', password: wrongPassword, scope: 'patient/*.rs' });
    expect(unknown.status).toBe(401);

    const events = await loginEvents();
    const failed = events.filter((e) => e.outcome === '4' && /Sign-in refused/.test(e.outcomeDesc));
    const wrong = failed.find((e) => /wrong password/.test(e.outcomeDesc));
    expect(wrong, JSON.stringify(failed)).toBeDefined();
    expect(wrong.type.code).toBe('110114');
    expect(wrong.agent.some((a: any) => a.who?.reference === fhirUser && a.altId === user.id)).toBe(true);
    expect(wrong.agent.some((a: any) => JSON.stringify(a.who).includes(app.clientId))).toBe(true);
    expect(failed.some((e) => /unknown username/.test(e.outcomeDesc))).toBe(true);
    expect(JSON.stringify(events)).not.toContain(wrongPassword);

    const before = (await loginEvents()).filter((e) => e.outcome === '0').length;
    await userToken(t.base, app, { username: 'audited.user', password: PASSWORD, scope: 'patient/*.rs' });
    const successes = (await loginEvents()).filter((e) => e.outcome === '0');
    // The sign-in and the code exchange, both on the user's account.
    expect(successes.length - before).toBeGreaterThanOrEqual(2);
    expect(successes.filter((e) => e.agent.some((a: any) => a.who?.reference === fhirUser)).length).toBeGreaterThanOrEqual(2);
  });

  it('a refused token request (bad client secret) writes a failure; a client_credentials grant a success', async () => {
    const badSecret = 'not-the-secret-123';
    const basic = Buffer.from(`carebridge-admin:${badSecret}`).toString('base64');
    const r = await tokenRequest(t.base, { grant_type: 'client_credentials', scope: 'admin' }, { authorization: `Basic ${basic}` });
    expect(r.status).toBe(401);
    const events = await loginEvents();
    const failure = events.find((e) => e.outcome === '4' && /invalid_client/.test(e.outcomeDesc ?? ''));
    expect(failure, JSON.stringify(events.map((e) => e.outcomeDesc))).toBeDefined();
    expect(JSON.stringify(failure.agent)).toContain('carebridge-admin');
    expect(JSON.stringify(events)).not.toContain(badSecret);
    expect(events.some((e) => e.outcome === '0' && JSON.stringify(e.agent).includes('carebridge-admin'))).toBe(true);
  });
});
