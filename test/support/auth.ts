/**
 * Access tokens for suites that run with authorization on (AUTH_MODE=smart), obtained through the
 * real endpoints: the bootstrap administrator (client_credentials + Basic), backend services
 * (client_credentials + a private_key_jwt assertion signed ES384) and users (authorization code
 * with PKCE, the sign-in and consent forms posted as a browser would).
 */
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { generate as totpCode } from 'otplib';
import { expect } from 'vitest';
import { startTestServer, useTestServer, type Engine, type TestServer } from './server.js';

/** The bootstrap administrator's secret in test servers (AUTH_ADMIN_SECRET). */
export const TEST_ADMIN_SECRET = 'test-admin-secret-7f3a9c';
export const ADMIN_CLIENT_ID = 'carebridge-admin';
export const AUTH_ENV = { AUTH_MODE: 'smart', AUTH_ADMIN_SECRET: TEST_ADMIN_SECRET };

export function useAuthServer(engine: Engine, env: Record<string, string> = {}): TestServer {
  return useTestServer(engine, { ...AUTH_ENV, ...env });
}

export function startAuthServer(engine: Engine, env: Record<string, string> = {}): Promise<TestServer> {
  return startTestServer(engine, { ...AUTH_ENV, ...env });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields), redirect: 'manual' });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** POST to the token endpoint (form fields), returning status and JSON. */
export function tokenRequest(base: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return postForm(`${base}/auth/token`, fields, headers);
}

/** A token of the bootstrap administrator (scopes `admin system/*.cruds`). */
export async function adminToken(base: string, scope = 'admin system/*.cruds'): Promise<string> {
  const basic = Buffer.from(`${ADMIN_CLIENT_ID}:${TEST_ADMIN_SECRET}`).toString('base64');
  const r = await tokenRequest(base, { grant_type: 'client_credentials', scope }, { authorization: `Basic ${basic}` });
  expect(r.status, r.text).toBe(200);
  return r.body.access_token as string;
}

/** POST JSON to the admin API with an admin token; asserts 201. */
export async function admin(base: string, path: string, body: unknown, token?: string): Promise<any> {
  const res = await fetch(`${base}/admin/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(token ?? (await adminToken(base))) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(201);
  return json;
}

export interface BackendClient {
  clientId: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** Register a backend-services client with a fresh ES384 key. */
export async function registerBackend(base: string, scope: string): Promise<BackendClient> {
  const { privateKey, publicKey } = await generateKeyPair('ES384');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: randomBytes(6).toString('hex'), alg: 'ES384' };
  const created = await admin(base, 'clients', { name: 'test backend', kind: 'backend', scope, jwks: { keys: [publicJwk] } });
  return { clientId: created.client_id, privateKey, publicJwk };
}

/** A client assertion for the token endpoint (SMART Backend Services). */
export function clientAssertion(base: string, client: BackendClient, overrides: { jti?: string; exp?: string; aud?: string } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: client.publicJwk.alg ?? 'ES384', kid: client.publicJwk.kid, typ: 'JWT' })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(overrides.aud ?? `${base}/auth/token`)
    .setJti(overrides.jti ?? randomBytes(12).toString('hex'))
    .setExpirationTime(overrides.exp ?? '4m')
    .sign(client.privateKey);
}

/** client_credentials with a signed assertion: returns the token response (asserting 200). */
export async function backendToken(base: string, client: BackendClient, scope: string): Promise<any> {
  const r = await tokenRequest(base, {
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await clientAssertion(base, client),
  });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** A token with system/ scopes in one call: registers a backend client for them and uses it. */
export async function systemToken(base: string, scope = 'system/*.cruds'): Promise<string> {
  return (await backendToken(base, await registerBackend(base, scope), scope)).access_token;
}

export interface PublicApp {
  clientId: string;
  redirectUri: string;
}

export async function registerApp(base: string, scope: string, redirectUri = 'http://127.0.0.1:9/callback'): Promise<PublicApp> {
  const created = await admin(base, 'clients', { name: 'Test app', kind: 'public', scope, redirectUris: [redirectUri] });
  return { clientId: created.client_id, redirectUri };
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface SignInOptions {
  username: string;
  password: string;
  scope: string;
  /** Base32 TOTP secret of the user, if they have one. */
  totpSecret?: string;
  /** Patient id typed into the picker (practitioners with launch/patient). */
  patient?: string;
  launch?: string;
  challenge?: string;
  state?: string;
}

/** Sign in through the authorize forms; returns the redirect's query (code or error) or the failing page. */
export async function authorize(base: string, app: PublicApp, o: SignInOptions): Promise<{ status: number; query?: URLSearchParams; text: string }> {
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: app.redirectUri,
    scope: o.scope,
    state: o.state ?? 'st-1',
    aud: base,
    code_challenge: o.challenge ?? pkcePair().challenge,
    code_challenge_method: 'S256',
    ...(o.launch ? { launch: o.launch } : {}),
  };
  const url = `${base}/auth/authorize`;
  const redirected = (r: { status: number; headers: Headers; text: string }) =>
    r.status === 302 ? { status: 302, query: new URL(r.headers.get('location')!).searchParams, text: r.text } : undefined;
  const login = await postForm(url, { ...params, step: 'login', username: o.username, password: o.password, ...(o.totpSecret ? { totp: await totpCode({ secret: o.totpSecret }) } : {}) });
  const ticket = /name="ticket" value="([^"]+)"/.exec(login.text)?.[1];
  if (!ticket) return redirected(login) ?? { status: login.status, text: login.text };
  const consent = await postForm(url, { step: 'consent', ticket, decision: 'allow', ...(o.patient ? { patient: o.patient } : {}) });
  return redirected(consent) ?? { status: consent.status, text: consent.text };
}

/** The whole authorization-code flow: returns the token response (asserting success). */
export async function userToken(base: string, app: PublicApp, o: SignInOptions): Promise<any> {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(base, app, { ...o, challenge });
  const code = a.query?.get('code');
  expect(code, a.text || a.query?.toString()).toBeTruthy();
  const r = await tokenRequest(base, { grant_type: 'authorization_code', code: code!, redirect_uri: app.redirectUri, client_id: app.clientId, code_verifier: verifier });
  expect(r.status, r.text).toBe(200);
  return r.body;
}
