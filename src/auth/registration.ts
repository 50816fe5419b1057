/**
 * Registering clients and users (the admin API and scripts/tools/auth.ts both call these):
 * input checks, secrets and hashes, TOTP secrets.
 */
import type { RelatedPerson } from 'fhir/r4.js';
import { generateSecret, generateURI } from 'otplib';
import { badRequest } from '../fhir/outcome.js';
import type { ResourceStore } from '../store/resource-store.js';
import { AuthStore, type ClientAuthMethod, type ClientKind } from './auth-store.js';
import { ASSERTION_ALGS } from './client-auth.js';
import { parseResourceScope, splitScopes } from './scopes.js';
import { checkPasswordStrength, hashSecret, newToken } from './secrets.js';

export interface ClientInput {
  name?: unknown;
  /** public (browser/mobile app, PKCE), confidential (server-side app with a secret) or backend (private_key_jwt). */
  kind?: unknown;
  redirectUris?: unknown;
  scope?: unknown;
  jwks?: unknown;
  jwksUri?: unknown;
  clientId?: unknown;
}

const METHOD: Record<ClientKind, ClientAuthMethod> = { public: 'none', confidential: 'client_secret_basic', backend: 'private_key_jwt' };

const str = (v: unknown, field: string, required = true): string | undefined => {
  if (v === undefined || v === null || v === '') {
    if (required) throw badRequest(`${field} is required`, [field]);
    return undefined;
  }
  if (typeof v !== 'string') throw badRequest(`${field} must be a string`, [field]);
  return v;
};

/** Register a client; the secret (confidential clients) is returned once and stored only as a hash. */
export async function registerClient(store: ResourceStore, input: ClientInput): Promise<{ client_id: string; client_secret?: string; kind: ClientKind; scope: string }> {
  const kind = str(input.kind, 'kind') as ClientKind;
  if (!(kind in METHOD)) throw badRequest('kind must be public, confidential or backend', ['kind']);
  const name = str(input.name, 'name')!;
  const scope = splitScopes(str(input.scope, 'scope'));
  const bad = scope.filter((s) => s.includes('/') && !s.startsWith('launch/') && !parseResourceScope(s));
  if (bad.length) throw badRequest(`Not SMART scopes: ${bad.join(' ')}`, ['scope']);
  const redirectUris = input.redirectUris ?? [];
  if (!Array.isArray(redirectUris) || redirectUris.some((u) => typeof u !== 'string' || !URL.canParse(u))) throw badRequest('redirectUris must be a list of absolute URLs', ['redirectUris']);
  // A confidential client without redirect URIs can only use client_credentials (e.g. a tenant's administrator).
  if (kind === 'public' && redirectUris.length === 0) throw badRequest('A public client needs redirectUris', ['redirectUris']);
  let jwks: { keys: unknown[] } | undefined;
  const jwksUri = str(input.jwksUri, 'jwksUri', false);
  if (kind === 'backend') {
    if (input.jwks !== undefined) {
      const keys = (input.jwks as { keys?: unknown }).keys;
      if (!Array.isArray(keys) || keys.length === 0) throw badRequest('jwks must be a JWK Set with keys', ['jwks']);
      if (keys.some((k) => typeof k !== 'object' || k === null || 'd' in k)) throw badRequest('jwks must hold public keys only', ['jwks']);
      jwks = { keys };
    }
    if (!jwks && !jwksUri) throw badRequest(`A backend client needs jwks or jwksUri (keys for ${ASSERTION_ALGS.join(' or ')})`, ['jwks']);
    if (jwksUri && !/^https?:\/\//.test(jwksUri)) throw badRequest('jwksUri must be an http(s) URL', ['jwksUri']);
  }
  const clientId = str(input.clientId, 'clientId', false) ?? newToken().slice(0, 22);
  const secret = kind === 'confidential' ? newToken() : undefined;
  const auth = new AuthStore(store);
  if (await auth.client(clientId)) throw badRequest(`A client ${clientId} exists already`, ['clientId']);
  await auth.insertClient({
    clientId,
    name,
    kind,
    authMethod: METHOD[kind],
    secretHash: secret ? await hashSecret(secret) : undefined,
    redirectUris: redirectUris as string[],
    scope: scope.join(' '),
    jwks,
    jwksUri,
  });
  return { client_id: clientId, ...(secret ? { client_secret: secret } : {}), kind, scope: scope.join(' ') };
}

export interface UserInput {
  username?: unknown;
  password?: unknown;
  /** Practitioner/…, Patient/… or RelatedPerson/… — must exist. */
  fhirUser?: unknown;
  /** true: make a TOTP secret (returned once, with an otpauth:// URI for authenticator apps). */
  totp?: unknown;
}

export async function registerUser(store: ResourceStore, input: UserInput): Promise<{ id: string; username: string; fhirUser: string; totpSecret?: string; otpauthUri?: string }> {
  const username = str(input.username, 'username')!;
  if (!/^[\w.@+-]{3,64}$/.test(username)) throw badRequest('username must be 3 to 64 letters, digits or . @ + - _', ['username']);
  const password = str(input.password, 'password')!;
  checkPasswordStrength(password, username);
  const fhirUser = str(input.fhirUser, 'fhirUser')!;
  const m = /^(Practitioner|Patient|RelatedPerson)\/([A-Za-z0-9\-.]{1,64})$/.exec(fhirUser);
  if (!m) throw badRequest('fhirUser must be Practitioner/[id], Patient/[id] or RelatedPerson/[id]', ['fhirUser']);
  const resource = await store.current(store.db, m[1]!, m[2]!);
  if (!resource || resource.deleted || !resource.content) throw badRequest(`${fhirUser} does not exist`, ['fhirUser']);
  let patientId: string | undefined;
  if (m[1] === 'Patient') patientId = m[2];
  if (m[1] === 'RelatedPerson') {
    const ref = (JSON.parse(resource.content) as RelatedPerson).patient?.reference ?? '';
    patientId = /^Patient\/([^/]+)$/.exec(ref)?.[1];
    if (!patientId) throw badRequest(`${fhirUser} has no RelatedPerson.patient reference`, ['fhirUser']);
  }
  const auth = new AuthStore(store);
  if (await auth.user({ username })) throw badRequest(`The username ${username} is taken`, ['username']);
  const totpSecret = input.totp === true ? generateSecret() : undefined;
  const id = await auth.insertUser({ username, passwordHash: await hashSecret(password), fhirUser, patientId, totpSecret });
  return {
    id,
    username,
    fhirUser,
    ...(totpSecret ? { totpSecret, otpauthUri: generateURI({ issuer: 'CareBridge', label: username, secret: totpSecret }) } : {}),
  };
}
