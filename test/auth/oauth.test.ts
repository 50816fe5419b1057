/**
 * The authorization server through its HTTP endpoints: discovery, the bootstrap administrator,
 * backend services (private_key_jwt), the authorization-code flow with PKCE and its failures,
 * refresh rotation, revocation, introspection, lock-out, TOTP and registration checks.
 */
import { generateSecret } from 'otplib';
import { describe, expect, it } from 'vitest';
import { call, ENGINES } from '../support/server.js';
import {
  admin,
  adminToken,
  authorize,
  backendToken,
  bearer,
  clientAssertion,
  pkcePair,
  registerApp,
  registerBackend,
  tokenRequest,
  useAuthServer,
  userToken,
  ADMIN_CLIENT_ID,
} from '../support/auth.js';

const PASSWORD = 'Correct-Horse-42';

describe.each(ENGINES)('SMART authorization server (%s)', (engine) => {
  const t = useAuthServer(engine);

  async function patientUser(username: string, extra: Record<string, unknown> = {}) {
    const p = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: username }] }, bearer(await adminToken(t.base)));
    expect(p.status).toBe(201);
    const user = await admin(t.base, 'users', { username, password: PASSWORD, fhirUser: `Patient/${p.body.id}`, ...extra });
    return { patientId: p.body.id as string, user };
  }

  it('publishes SMART and OpenID discovery documents and the JWKS without a token', async () => {
    const smart = await call(t.base, 'GET', '/.well-known/smart-configuration');
    expect(smart.status).toBe(200);
    expect(smart.body.token_endpoint).toBe(`${t.base}/auth/token`);
    expect(smart.body.code_challenge_methods_supported).toEqual(['S256']);
    expect(smart.body.capabilities).toContain('launch-standalone');
    const oidc = await call(t.base, 'GET', '/.well-known/openid-configuration');
    expect(oidc.body.issuer).toBe(t.base);
    const jwks = await call(t.base, 'GET', '/auth/jwks');
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'EC', alg: 'ES256' });
    expect(jwks.body.keys[0].d).toBeUndefined();
    const metadata = await call(t.base, 'GET', '/metadata');
    expect(metadata.status).toBe(200);
    expect(metadata.body.rest[0].security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    expect(metadata.body.rest[0].security.extension[0].extension).toContainEqual({ url: 'token', valueUri: `${t.base}/auth/token` });
  });

  it('refuses FHIR requests without a token: 401 with WWW-Authenticate', async () => {
    const r = await call(t.base, 'GET', '/Patient');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });

  it('bootstrap administrator: client_credentials with Basic; a wrong secret is invalid_client', async () => {
    const token = await adminToken(t.base);
    expect((await call(t.base, 'GET', '/Patient', undefined, bearer(token))).status).toBe(200);
    const wrong = await tokenRequest(t.base, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`${ADMIN_CLIENT_ID}:nope`).toString('base64')}` });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
  });

  it('admin API needs the admin scope', async () => {
    const r = await fetch(`${t.base}/admin/clients`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(401);
    const system = await adminToken(t.base, 'system/*.cruds');
    const s = await fetch(`${t.base}/admin/clients`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(system) }, body: '{}' });
    expect(s.status).toBe(403);
    const bad = await fetch(`${t.base}/admin/clients`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(await adminToken(t.base)) }, body: '{"kind":"public","name":"x","scope":"patient/*.rs"}' });
    expect(bad.status).toBe(400); // a public client needs redirectUris
  });

  it('backend services: signed assertion → token with system scopes; replayed jti, wrong audience, long life refused', async () => {
    const client = await registerBackend(t.base, 'system/Patient.rs system/Observation.rs');
    const token = await backendToken(t.base, client, 'system/Patient.rs');
    expect(token.scope).toBe('system/Patient.rs');
    expect(token.refresh_token).toBeUndefined();
    expect((await call(t.base, 'GET', '/Patient', undefined, bearer(token.access_token))).status).toBe(200);
    expect((await call(t.base, 'GET', '/Encounter', undefined, bearer(token.access_token))).status).toBe(403);

    const assertion = await clientAssertion(t.base, client, { jti: 'same-jti' });
    const form = { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' };
    expect((await tokenRequest(t.base, { ...form, client_assertion: assertion })).status).toBe(200);
    const replay = await tokenRequest(t.base, { ...form, client_assertion: await clientAssertion(t.base, client, { jti: 'same-jti' }) });
    expect(replay.status).toBe(401);
    expect(replay.body.error_description).toMatch(/jti/);
    expect((await tokenRequest(t.base, { ...form, client_assertion: await clientAssertion(t.base, client, { aud: 'https://elsewhere/token' }) })).status).toBe(401);
    expect((await tokenRequest(t.base, { ...form, client_assertion: await clientAssertion(t.base, client, { exp: '1h' }) })).status).toBe(401);
    const userScope = await tokenRequest(t.base, { ...form, scope: 'user/Patient.rs', client_assertion: await clientAssertion(t.base, client) });
    expect(userScope.body.error).toBe('invalid_scope');
  });

  it('authorization code with PKCE: patient user, token response with patient, id_token and refresh token', async () => {
    const { patientId } = await patientUser('ann.smith');
    const app = await registerApp(t.base, 'launch/patient openid fhirUser offline_access patient/*.rs');
    const token = await userToken(t.base, app, { username: 'ann.smith', password: PASSWORD, scope: 'launch/patient openid fhirUser offline_access patient/*.rs' });
    expect(token).toMatchObject({ token_type: 'Bearer', patient: patientId, expires_in: 3600 });
    expect(token.scope.split(' ')).toContain('patient/*.rs');
    expect(token.id_token).toBeTruthy();
    const idClaims = JSON.parse(Buffer.from(token.id_token.split('.')[1], 'base64url').toString());
    expect(idClaims.fhirUser).toBe(`Patient/${patientId}`);
    expect(token.refresh_token).toBeTruthy();
    const own = await call(t.base, 'GET', `/Patient/${patientId}`, undefined, bearer(token.access_token));
    expect(own.status).toBe(200);
  });

  it('PKCE: missing challenge, plain method, wrong verifier and missing verifier are refused', async () => {
    await patientUser('pkce.user');
    const app = await registerApp(t.base, 'patient/*.rs launch/patient');
    const base = { response_type: 'code', client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'patient/*.rs', state: 's', aud: t.base };
    const noChallenge = await fetch(`${t.base}/auth/authorize?${new URLSearchParams(base)}`, { redirect: 'manual' });
    expect(noChallenge.status).toBe(302);
    expect(new URL(noChallenge.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    const plain = await fetch(`${t.base}/auth/authorize?${new URLSearchParams({ ...base, code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' })}`, { redirect: 'manual' });
    expect(new URL(plain.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');

    const { challenge } = pkcePair();
    for (const verifier of [pkcePair().verifier, undefined]) {
      const a = await authorize(t.base, app, { username: 'pkce.user', password: PASSWORD, scope: 'patient/*.rs', challenge });
      const code = a.query!.get('code')!;
      const r = await tokenRequest(t.base, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, client_id: app.clientId, ...(verifier ? { code_verifier: verifier } : {}) });
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_grant');
    }
  });

  it('wrong redirect_uri: an error page at authorize (no redirect) and invalid_grant at the token endpoint', async () => {
    await patientUser('redirect.user');
    const app = await registerApp(t.base, 'patient/*.rs');
    const page = await fetch(`${t.base}/auth/authorize?${new URLSearchParams({ response_type: 'code', client_id: app.clientId, redirect_uri: 'https://evil.example/cb', scope: 'patient/*.rs', aud: t.base })}`, { redirect: 'manual' });
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    const { verifier, challenge } = pkcePair();
    const a = await authorize(t.base, app, { username: 'redirect.user', password: PASSWORD, scope: 'patient/*.rs', challenge });
    const r = await tokenRequest(t.base, { grant_type: 'authorization_code', code: a.query!.get('code')!, redirect_uri: 'https://evil.example/cb', client_id: app.clientId, code_verifier: verifier });
    expect(r.body.error).toBe('invalid_grant');
  });

  it('an authorization code works once; its reuse revokes every token issued from it (RFC 6749 §4.1.2)', async () => {
    const { patientId } = await patientUser('reuse.user');
    const scope = 'patient/*.rs offline_access';
    const app = await registerApp(t.base, scope);
    const { verifier, challenge } = pkcePair();
    const a = await authorize(t.base, app, { username: 'reuse.user', password: PASSWORD, scope, challenge });
    const form = { grant_type: 'authorization_code', code: a.query!.get('code')!, redirect_uri: app.redirectUri, client_id: app.clientId, code_verifier: verifier };
    const first = await tokenRequest(t.base, form);
    expect(first.status).toBe(200);
    // Tokens of the first exchange work, including an access token from a refresh of it …
    const refreshed = await tokenRequest(t.base, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app.clientId });
    expect(refreshed.status, refreshed.text).toBe(200);
    for (const token of [first.body.access_token, refreshed.body.access_token]) expect((await call(t.base, 'GET', `/Patient/${patientId}`, undefined, bearer(token))).status).toBe(200);
    // … until the code comes back (someone else holds it): refused, and everything from it revoked.
    const again = await tokenRequest(t.base, form);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    for (const token of [first.body.access_token, refreshed.body.access_token]) {
      const r = await call(t.base, 'GET', `/Patient/${patientId}`, undefined, bearer(token));
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/revoked/);
    }
    const refreshAgain = await tokenRequest(t.base, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, client_id: app.clientId });
    expect(refreshAgain.body.error).toBe('invalid_grant');
    // An unrelated sign-in of the same user and app is not affected.
    const other = await userToken(t.base, app, { username: 'reuse.user', password: PASSWORD, scope });
    expect((await call(t.base, 'GET', `/Patient/${patientId}`, undefined, bearer(other.access_token))).status).toBe(200);
  });

  it('refresh tokens rotate; reusing an old one revokes the family', async () => {
    await patientUser('refresh.user');
    const scope = 'patient/*.rs offline_access';
    const app = await registerApp(t.base, scope);
    const first = await userToken(t.base, app, { username: 'refresh.user', password: PASSWORD, scope });
    const refresh = (token: string) => tokenRequest(t.base, { grant_type: 'refresh_token', refresh_token: token, client_id: app.clientId });
    const second = await refresh(first.refresh_token);
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.refresh_token);
    expect(second.body.patient).toBe(first.patient);
    const reused = await refresh(first.refresh_token);
    expect(reused.body.error).toBe('invalid_grant');
    // The family is gone: the newest token stopped working too, and so did its access tokens.
    expect((await refresh(second.body.refresh_token)).body.error).toBe('invalid_grant');
    for (const token of [first.access_token, second.body.access_token]) expect((await call(t.base, 'GET', `/Patient/${first.patient}`, undefined, bearer(token))).status).toBe(401);
  });

  it('revocation (RFC 7009) of access and refresh tokens; introspection (RFC 7662) reflects it', async () => {
    await patientUser('revoke.user');
    const scope = 'patient/*.rs offline_access';
    const app = await registerApp(t.base, scope);
    const token = await userToken(t.base, app, { username: 'revoke.user', password: PASSWORD, scope });
    const basic = { authorization: `Basic ${Buffer.from(`${ADMIN_CLIENT_ID}:test-admin-secret-7f3a9c`).toString('base64')}` };
    const introspect = async (tok: string): Promise<any> => (await fetch(`${t.base}/auth/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic }, body: new URLSearchParams({ token: tok }) })).json();
    expect(await introspect(token.access_token)).toMatchObject({ active: true, client_id: app.clientId, patient: token.patient });
    expect((await introspect('garbage')).active).toBe(false);
    const publicIntrospect = await fetch(`${t.base}/auth/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: token.access_token, client_id: app.clientId }) });
    expect(publicIntrospect.status).toBe(401);

    const revoke = (tok: string) => fetch(`${t.base}/auth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tok, client_id: app.clientId }) });
    expect((await revoke(token.access_token)).status).toBe(200);
    const after = await call(t.base, 'GET', `/Patient/${token.patient}`, undefined, bearer(token.access_token));
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/revoked/);
    expect((await introspect(token.access_token)).active).toBe(false);
    // A fresh access token from the refresh token, then the refresh token revoked: the access
    // tokens of the same grant stop working too (RFC 7009 §2.1).
    const refreshed = await tokenRequest(t.base, { grant_type: 'refresh_token', refresh_token: token.refresh_token, client_id: app.clientId });
    expect(refreshed.status).toBe(200);
    expect((await call(t.base, 'GET', `/Patient/${token.patient}`, undefined, bearer(refreshed.body.access_token))).status).toBe(200);
    expect((await revoke(refreshed.body.refresh_token)).status).toBe(200);
    expect((await tokenRequest(t.base, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, client_id: app.clientId })).body.error).toBe('invalid_grant');
    expect((await call(t.base, 'GET', `/Patient/${token.patient}`, undefined, bearer(refreshed.body.access_token))).status).toBe(401);
    expect((await introspect(refreshed.body.access_token)).active).toBe(false);
    expect((await revoke('unknown-token')).status).toBe(200);
  });

  it('locks an account for 15 minutes after 5 failed sign-ins (even with the right password then)', async () => {
    await patientUser('lock.user');
    const app = await registerApp(t.base, 'patient/*.rs');
    for (let i = 0; i < 5; i++) {
      const bad = await authorize(t.base, app, { username: 'lock.user', password: 'Wrong-password-1', scope: 'patient/*.rs' });
      expect(bad.status).toBe(401);
    }
    const locked = await authorize(t.base, app, { username: 'lock.user', password: PASSWORD, scope: 'patient/*.rs' });
    expect(locked.status).toBe(401);
    expect(locked.text).toMatch(/locked/);
    // 15 minutes later (the lock moved into the past): one more failure does not lock again.
    await t.server.db.query(`UPDATE tenant_default.auth_user SET locked_until = now() - interval '1 second' WHERE username = 'lock.user'`);
    expect((await authorize(t.base, app, { username: 'lock.user', password: 'Wrong-password-1', scope: 'patient/*.rs' })).text).not.toMatch(/locked/);
    const ok = await authorize(t.base, app, { username: 'lock.user', password: PASSWORD, scope: 'patient/*.rs' });
    expect(ok.query?.get('code')).toBeTruthy();
  });

  it('TOTP: users with a second factor need the current code', async () => {
    const { user } = await patientUser('totp.user', { totp: true });
    expect(user.totpSecret).toBeTruthy();
    expect(user.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    const app = await registerApp(t.base, 'patient/*.rs');
    const without = await authorize(t.base, app, { username: 'totp.user', password: PASSWORD, scope: 'patient/*.rs' });
    expect(without.status).toBe(401);
    const wrongSecret = await authorize(t.base, app, { username: 'totp.user', password: PASSWORD, scope: 'patient/*.rs', totpSecret: generateSecret() });
    expect(wrongSecret.status).toBe(401);
    const ok = await authorize(t.base, app, { username: 'totp.user', password: PASSWORD, scope: 'patient/*.rs', totpSecret: user.totpSecret });
    expect(ok.query?.get('code')).toBeTruthy();
  });

  it('password rules: length, classes, not the username', async () => {
    const p = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient' }, bearer(await adminToken(t.base)));
    const token = await adminToken(t.base);
    for (const password of ['Short-1', 'alllowercaseletters', 'weak.user.Name1'.replace('Name1', 'x1')]) {
      const r = await fetch(`${t.base}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(token) }, body: JSON.stringify({ username: 'weak.user', password, fhirUser: `Patient/${p.body.id}` }) });
      expect(r.status, password).toBe(400);
      expect(((await r.json()) as any).resourceType).toBe('OperationOutcome');
    }
  });

  it('EHR launch: the launch parameter carries the patient and encounter into the token response', async () => {
    const token = await adminToken(t.base);
    const pract = await call(t.base, 'POST', '/Practitioner', { resourceType: 'Practitioner', name: [{ family: 'House' }] }, bearer(token));
    const patient = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient' }, bearer(token));
    const enc = await call(t.base, 'POST', '/Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${patient.body.id}` } }, bearer(token));
    await admin(t.base, 'users', { username: 'dr.house', password: PASSWORD, fhirUser: `Practitioner/${pract.body.id}` });
    const { launch } = await admin(t.base, 'launch', { patient: patient.body.id, encounter: enc.body.id });
    const scope = 'launch openid fhirUser patient/*.rs user/Practitioner.rs';
    const app = await registerApp(t.base, scope);
    const r = await userToken(t.base, app, { username: 'dr.house', password: PASSWORD, scope, launch });
    expect(r).toMatchObject({ patient: patient.body.id, encounter: enc.body.id });
    const unknown = await authorize(t.base, app, { username: 'dr.house', password: PASSWORD, scope, launch: 'no-such-launch' });
    expect(unknown.query?.get('error')).toBe('invalid_request');
  });

  it('a RelatedPerson user is limited to their patient; user/Observation.write lets a practitioner write but not read', async () => {
    const token = await adminToken(t.base);
    const child = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Child' }] }, bearer(token));
    const other = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient' }, bearer(token));
    const parent = await call(t.base, 'POST', '/RelatedPerson', { resourceType: 'RelatedPerson', patient: { reference: `Patient/${child.body.id}` } }, bearer(token));
    await admin(t.base, 'users', { username: 'parent.user', password: PASSWORD, fhirUser: `RelatedPerson/${parent.body.id}` });
    const scope = 'launch/patient user/*.rs';
    const app = await registerApp(t.base, scope);
    const r = await userToken(t.base, app, { username: 'parent.user', password: PASSWORD, scope });
    expect(r.patient).toBe(child.body.id);
    expect((await call(t.base, 'GET', `/Patient/${child.body.id}`, undefined, bearer(r.access_token))).status).toBe(200);
    expect((await call(t.base, 'GET', `/Patient/${other.body.id}`, undefined, bearer(r.access_token))).status).toBe(404);

    const pract = await call(t.base, 'POST', '/Practitioner', { resourceType: 'Practitioner' }, bearer(token));
    await admin(t.base, 'users', { username: 'nurse.write', password: PASSWORD, fhirUser: `Practitioner/${pract.body.id}` });
    const writeApp = await registerApp(t.base, 'user/Observation.write');
    const w = await userToken(t.base, writeApp, { username: 'nurse.write', password: PASSWORD, scope: 'user/Observation.write' });
    const created = await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${other.body.id}` } }, bearer(w.access_token));
    expect(created.status).toBe(201);
    expect((await call(t.base, 'GET', `/Observation/${created.body.id}`, undefined, bearer(w.access_token))).status).toBe(403);
  });

  it('standalone launch by a practitioner: the patient picker takes a patient id', async () => {
    const token = await adminToken(t.base);
    const pract = await call(t.base, 'POST', '/Practitioner', { resourceType: 'Practitioner' }, bearer(token));
    const patient = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient' }, bearer(token));
    await admin(t.base, 'users', { username: 'dr.picker', password: PASSWORD, fhirUser: `Practitioner/${pract.body.id}` });
    const scope = 'launch/patient patient/*.rs';
    const app = await registerApp(t.base, scope);
    const missing = await authorize(t.base, app, { username: 'dr.picker', password: PASSWORD, scope, patient: 'does-not-exist' });
    expect(missing.status).toBe(400);
    const r = await userToken(t.base, app, { username: 'dr.picker', password: PASSWORD, scope, patient: patient.body.id });
    expect(r.patient).toBe(patient.body.id);
  });
});
