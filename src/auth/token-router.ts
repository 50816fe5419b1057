/**
 * The token endpoint (RFC 6749 §3.2) with three grants — authorization_code (PKCE S256, required
 * for public clients), refresh_token (rotating: each refresh token works once; presenting a used
 * one revokes its whole family) and client_credentials (SMART Backend Services, system/ scopes) —
 * and token introspection (RFC 7662) and revocation (RFC 7009).
 */
import { createHash } from 'node:crypto';
import express, { type Request } from 'express';
import { AuthStore, type RefreshGrant } from './auth-store.js';
import { AUTH_PATHS } from './endpoints.js';
import { authenticateClient, OAuthError } from './client-auth.js';
import { formOf, noStore, oauth, type AuthTenant, type TenantResolver } from './http-util.js';
import { noLoginAudit, type LoginAuditor } from './login-audit.js';
import { ADMIN_SCOPE, allowedScopes, parseResourceScope, splitScopes } from './scopes.js';
import { ACCESS_TOKEN_TTL_SECONDS, InvalidTokenError, issueAccessToken, issueIdToken, verifyTokenClaims, type TokenClaims } from './tokens.js';

export const TOKEN_PATH = AUTH_PATHS.token;

/** What a grant issues: the access token's claims (family = the refresh family to continue), plus the OpenID nonce. */
interface Grant extends TokenClaims {
  nonce?: string;
}

/** The token response: access token, launch context, id_token and a refresh token when asked for. */
async function tokenResponse(t: AuthTenant, g: Grant): Promise<Record<string, unknown>> {
  const scopes = splitScopes(g.scope);
  const access = await issueAccessToken(t.store, t.baseUrl, g); // g.family → claim fam
  const body: Record<string, unknown> = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope: g.scope };
  if (g.patient) body.patient = g.patient;
  if (g.encounter) body.encounter = g.encounter;
  if (g.patient || g.encounter) body.need_patient_banner = true;
  if (g.userId && g.fhirUser && scopes.includes('openid') && (scopes.includes('fhirUser') || scopes.includes('profile'))) {
    body.id_token = await issueIdToken(t.store, t.baseUrl, { clientId: g.clientId, userId: g.userId, fhirUser: g.fhirUser, nonce: g.nonce });
  }
  if (g.userId && (scopes.includes('offline_access') || scopes.includes('online_access'))) {
    const grant: RefreshGrant = { family: g.family ?? access.jti, clientId: g.clientId, userId: g.userId, scope: g.scope, patient: g.patient, encounter: g.encounter, fhirUser: g.fhirUser };
    body.refresh_token = await new AuthStore(t.store).insertRefresh(grant);
  }
  return body;
}

/** Until when a revoked family must be remembered: its newest access token expires by then. */
const familyRevocationExp = () => Math.floor(Date.now() / 1000) + ACCESS_TOKEN_TTL_SECONDS + 60;

function pkceMatches(verifier: string | null, challenge: string): boolean {
  if (!verifier || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return false;
  return createHash('sha256').update(verifier).digest('base64url') === challenge;
}

async function grant(t: AuthTenant, req: Request): Promise<Grant> {
  const form = formOf(req);
  const auth = new AuthStore(t.store);
  const client = await authenticateClient(auth, form, req.headers.authorization, `${t.baseUrl}${TOKEN_PATH}`);
  const type = form.get('grant_type');
  if (type === 'authorization_code') {
    const code = await auth.useCode(form.get('code') ?? '');
    if (!code) {
      // A second use: the code may have been stolen — revoke what was issued from it (RFC 6749 §4.1.2).
      const family = await auth.usedCodeFamily(form.get('code') ?? '');
      if (family) await auth.revokeTokenFamily(family, familyRevocationExp());
    }
    if (!code || code.clientId !== client.clientId) throw new OAuthError(400, 'invalid_grant', 'The authorization code is unknown, expired, used already or not for this client');
    if (form.get('redirect_uri') !== code.redirectUri) throw new OAuthError(400, 'invalid_grant', 'redirect_uri differs from the one of the authorization request');
    if (code.codeChallenge && !pkceMatches(form.get('code_verifier'), code.codeChallenge)) throw new OAuthError(400, 'invalid_grant', 'The PKCE code_verifier does not match the code_challenge');
    const user = await auth.user({ id: code.userId });
    if (!user) throw new OAuthError(400, 'invalid_grant', 'The user no longer exists');
    return { clientId: client.clientId, scope: code.scope, userId: user.id, fhirUser: user.fhirUser, patient: code.patient, encounter: code.encounter, nonce: code.nonce, family: code.family };
  }
  if (type === 'refresh_token') {
    const previous = await auth.rotateRefresh(form.get('refresh_token') ?? '', familyRevocationExp());
    if (previous === 'reused') throw new OAuthError(400, 'invalid_grant', 'The refresh token was used before; its family is revoked');
    if (!previous || previous.clientId !== client.clientId) throw new OAuthError(400, 'invalid_grant', 'The refresh token is unknown, expired or revoked');
    const granted = splitScopes(previous.scope);
    const asked = form.get('scope');
    const scope = asked === null ? previous.scope : splitScopes(asked).filter((s) => granted.includes(s)).join(' ');
    return { ...previous, scope };
  }
  if (type === 'client_credentials') {
    if (client.kind === 'public') throw new OAuthError(400, 'unauthorized_client', 'Public clients cannot use client_credentials');
    const asked = splitScopes(form.get('scope') ?? client.scope);
    const notSystem = asked.filter((s) => s !== ADMIN_SCOPE && parseResourceScope(s)?.context !== 'system');
    if (notSystem.length) throw new OAuthError(400, 'invalid_scope', `client_credentials grants system/ scopes only (not ${notSystem.join(' ')})`);
    const scope = allowedScopes(asked, splitScopes(client.scope));
    if (scope.length === 0) throw new OAuthError(400, 'invalid_scope', 'None of the requested scopes is registered for this client');
    return { clientId: client.clientId, scope: scope.join(' ') };
  }
  throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be authorization_code, refresh_token or client_credentials`);
}

/** The client a refused token request names (form client_id, or the Basic user), for the audit trail. */
function claimedClient(req: Request): string | undefined {
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const fromBasic = basic ? decodeURIComponent(Buffer.from(basic, 'base64').toString('utf8').split(':')[0] ?? '') : undefined;
  const id = formOf(req).get('client_id') ?? fromBasic;
  return id ? id.slice(0, 200) : undefined;
}

/** What the token is, for introspection: an access token (JWT) of this tenant, or a refresh token. */
async function introspection(t: AuthTenant, token: string): Promise<Record<string, unknown>> {
  try {
    const claims: Record<string, unknown> = { ...(await verifyTokenClaims(t.store, token)) };
    delete claims.tnt; // internal: the tenant is the endpoint's own
    delete claims.fam; // internal: the revocation family
    return { active: true, token_type: 'Bearer', ...claims };
  } catch (error) {
    if (!(error instanceof InvalidTokenError)) throw error;
  }
  const refresh = await new AuthStore(t.store).refreshInfo(token);
  if (refresh) return { active: true, token_type: 'refresh_token', client_id: refresh.clientId, scope: refresh.scope, sub: refresh.userId, exp: refresh.exp, patient: refresh.patient };
  return { active: false };
}

export function tokenRouter(tenantOf: TenantResolver, audit: LoginAuditor = noLoginAudit): express.Router {
  const router = express.Router();
  router.post(
    TOKEN_PATH,
    oauth(async (req, res) => {
      const t = await tenantOf(req);
      let granted: Grant;
      try {
        granted = await grant(t, req);
      } catch (error) {
        if (error instanceof OAuthError) await audit(req, t, { success: false, clientId: claimedClient(req), failure: `${error.error}: ${error.message}` });
        throw error;
      }
      const body = await tokenResponse(t, granted);
      await audit(req, t, { success: true, clientId: granted.clientId, userId: granted.userId, fhirUser: granted.fhirUser });
      noStore(res).json(body);
    }),
  );
  router.post(
    AUTH_PATHS.introspect,
    oauth(async (req, res) => {
      const t = await tenantOf(req);
      const form = formOf(req);
      const client = await authenticateClient(new AuthStore(t.store), form, req.headers.authorization, `${t.baseUrl}${AUTH_PATHS.introspect}`);
      // Only confidential clients (resource servers, backends) may ask; public ones cannot keep a secret.
      if (client.kind === 'public') throw new OAuthError(401, 'invalid_client', 'Public clients may not introspect tokens');
      noStore(res).json(await introspection(t, form.get('token') ?? ''));
    }),
  );
  router.post(
    AUTH_PATHS.revoke,
    oauth(async (req, res) => {
      const t = await tenantOf(req);
      const form = formOf(req);
      const auth = new AuthStore(t.store);
      const client = await authenticateClient(auth, form, req.headers.authorization, `${t.baseUrl}${AUTH_PATHS.revoke}`);
      const token = form.get('token') ?? '';
      if (!(await auth.revokeRefresh(token, client.clientId, familyRevocationExp()))) {
        try {
          const p = await verifyTokenClaims(t.store, token);
          if (p.client_id === client.clientId) await auth.revokeAccess(p.jti, p.exp);
        } catch (error) {
          if (!(error instanceof InvalidTokenError)) throw error;
        }
      }
      // RFC 7009 §2.2: 200 whether or not the token was known.
      noStore(res).status(200).end();
    }),
  );
  return router;
}
