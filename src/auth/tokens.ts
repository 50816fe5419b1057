/**
 * Access tokens: ES256 JWTs signed with the tenant's key, carrying the tenant (`tnt`), the client,
 * the granted scopes and the launch context. Verification is a plain function (no express) so the
 * HTTP middleware, WebSocket handshakes and tests can all use it: signature with the tenant's key,
 * expiry, tenant claim, and the revocation list.
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { ResourceStore } from '../store/resource-store.js';
import type { Access } from './access.js';
import { AuthStore } from './auth-store.js';
import { SIGNING_ALG, signingKey } from './keys.js';
import { splitScopes } from './scopes.js';

export const ACCESS_TOKEN_TTL_SECONDS = 3600;

export interface TokenClaims {
  clientId: string;
  scope: string;
  userId?: string;
  fhirUser?: string;
  patient?: string;
  encounter?: string;
  /** The token family (authorization code and its refreshes): revoked together (claim `fam`). */
  family?: string;
}

/** Why a token was refused: the WWW-Authenticate error_description. */
export class InvalidTokenError extends Error {}

export async function issueAccessToken(store: ResourceStore, issuer: string, claims: TokenClaims): Promise<{ token: string; jti: string; expiresIn: number }> {
  const key = await signingKey(store);
  const jti = randomUUID();
  const token = await new SignJWT({
    tnt: new AuthStore(store).tenant,
    client_id: claims.clientId,
    scope: claims.scope,
    ...(claims.fhirUser ? { fhirUser: claims.fhirUser } : {}),
    ...(claims.patient ? { patient: claims.patient } : {}),
    ...(claims.encounter ? { encounter: claims.encounter } : {}),
    ...(claims.family ? { fam: claims.family } : {}),
  })
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(issuer)
    .setSubject(claims.userId ?? claims.clientId)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime(`${ACCESS_TOKEN_TTL_SECONDS}s`)
    .sign(key.privateKey);
  return { token, jti, expiresIn: ACCESS_TOKEN_TTL_SECONDS };
}

/** OpenID Connect id_token (scope openid): who signed in, and their FHIR resource (fhirUser). */
export async function issueIdToken(store: ResourceStore, issuer: string, c: { clientId: string; userId: string; fhirUser: string; nonce?: string }): Promise<string> {
  const key = await signingKey(store);
  return new SignJWT({ fhirUser: c.fhirUser, ...(c.nonce ? { nonce: c.nonce } : {}) })
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(c.clientId)
    .setSubject(c.userId)
    .setIssuedAt()
    .setExpirationTime(`${ACCESS_TOKEN_TTL_SECONDS}s`)
    .sign(key.privateKey);
}

/** The raw verified claims (for introspection); throws InvalidTokenError. */
export async function verifyTokenClaims(store: ResourceStore, token: string): Promise<Record<string, unknown> & { exp: number; jti: string }> {
  const key = await signingKey(store);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key.publicKey, { algorithms: [SIGNING_ALG], typ: 'at+jwt', requiredClaims: ['exp', 'jti', 'tnt'] }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new InvalidTokenError('The access token has expired');
    if (error instanceof errors.JOSEError) throw new InvalidTokenError('The access token is not valid here');
    throw error;
  }
  const auth = new AuthStore(store);
  if (payload.tnt !== auth.tenant) throw new InvalidTokenError('The access token was issued for another tenant');
  if (await auth.isRevoked(payload.jti as string, typeof payload.fam === 'string' ? payload.fam : undefined)) throw new InvalidTokenError('The access token has been revoked');
  return payload as Record<string, unknown> & { exp: number; jti: string };
}

/** Check an access token for the tenant of `store` and say who is asking; throws InvalidTokenError. */
export async function verifyAccessToken(store: ResourceStore, token: string): Promise<Access> {
  const p = await verifyTokenClaims(store, token);
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const clientId = str(p.client_id);
  if (!clientId || typeof p.scope !== 'string') throw new InvalidTokenError('The access token is not valid here');
  const sub = str(p.sub);
  return {
    tenant: p.tnt as string,
    clientId,
    scopes: splitScopes(p.scope),
    fhirUser: str(p.fhirUser),
    userId: sub && sub !== clientId ? sub : undefined,
    patient: str(p.patient),
    encounter: str(p.encounter),
    tokenId: p.jti,
  };
}
