/**
 * A tenant's authorization server as one express Router, mounted under the tenant's FHIR base
 * (the default tenant: /fhir; others: /t/{tenant}/fhir), so the FHIR base is also the OAuth issuer:
 *
 *   GET  .well-known/smart-configuration   SMART App Launch discovery
 *   GET  .well-known/openid-configuration  OpenID Connect discovery (id_token with fhirUser)
 *   GET  auth/jwks                         the tenant's public signing keys
 *   GET|POST auth/authorize, POST auth/token, auth/introspect, auth/revoke
 *   POST admin/clients, admin/users, admin/launch
 *
 * Mount it before `authenticate` (middleware.ts); these paths carry their own authentication.
 */
import express from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ResourceStore } from '../store/resource-store.js';
import { adminRouter } from './admin-router.js';
import { noLoginAudit, type LoginAuditor } from './login-audit.js';
import { AuthStore } from './auth-store.js';
import { ASSERTION_ALGS } from './client-auth.js';
import { AUTH_PATHS } from './endpoints.js';
import { AUTHORIZE_PATH, authorizeRouter } from './authorize-router.js';
import type { AuthTenant, TenantResolver } from './http-util.js';
import { publicJwks, SIGNING_ALG } from './keys.js';
import { ADMIN_SCOPE } from './scopes.js';
import { hashSecret, newToken } from './secrets.js';
import { TOKEN_PATH, tokenRouter } from './token-router.js';

const SCOPES_SUPPORTED = [
  'openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access',
  'patient/*.rs', 'patient/*.cruds', 'user/*.rs', 'user/*.cruds', 'system/*.rs', 'system/*.cruds', 'patient/*.read', 'user/*.read', 'system/*.read', ADMIN_SCOPE,
];

function smartConfiguration(issuer: string) {
  return {
    issuer,
    jwks_uri: `${issuer}${AUTH_PATHS.jwks}`,
    authorization_endpoint: `${issuer}${AUTHORIZE_PATH}`,
    token_endpoint: `${issuer}${TOKEN_PATH}`,
    introspection_endpoint: `${issuer}${AUTH_PATHS.introspect}`,
    revocation_endpoint: `${issuer}${AUTH_PATHS.revoke}`,
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
    scopes_supported: SCOPES_SUPPORTED,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    capabilities: [
      'launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-symmetric', 'client-confidential-asymmetric',
      'context-ehr-patient', 'context-ehr-encounter', 'context-standalone-patient', 'sso-openid-connect', 'permission-offline',
      'permission-patient', 'permission-user', 'permission-v1', 'permission-v2', 'authorize-post',
    ],
  };
}

function openidConfiguration(issuer: string) {
  return {
    ...smartConfiguration(issuer),
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [SIGNING_ALG],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'fhirUser', 'nonce'],
  };
}

export function createAuthRouter(tenantOf: TenantResolver, config: Pick<Config, 'authMode'>, audit: LoginAuditor = noLoginAudit): express.Router {
  const router = express.Router();
  const doc = (path: string, make: (t: AuthTenant) => unknown) =>
    router.get(path, (req, res, next) => {
      tenantOf(req)
        .then(async (t) => res.setHeader('Cache-Control', 'public, max-age=300').json(await make(t)))
        .catch(next);
    });
  doc('/.well-known/smart-configuration', (t) => smartConfiguration(t.baseUrl));
  doc('/.well-known/openid-configuration', (t) => openidConfiguration(t.baseUrl));
  doc(AUTH_PATHS.jwks, (t) => publicJwks(t.store));
  router.use(authorizeRouter(tenantOf, audit), tokenRouter(tenantOf, audit), adminRouter(tenantOf, config));
  return router;
}

export const BOOTSTRAP_CLIENT_ID = 'carebridge-admin';

/**
 * First start without any client: make the administrator client (client_credentials with HTTP
 * Basic; scopes `admin system/*.*`) and print its secret once, with the command that gets a token.
 * AUTH_ADMIN_SECRET fixes the secret instead (deployments that provision it); it is then not printed.
 */
export async function bootstrapAdministrator(store: ResourceStore, config: Pick<Config, 'authMode' | 'authAdminSecret' | 'port' | 'baseUrl'>, logger: Logger, print: (text: string) => void): Promise<void> {
  if (config.authMode === 'open') {
    logger.warn('AUTH_MODE=open: AUTHORIZATION IS OFF — every request is served without an access token. Never run like this with real patient data.');
    if (logger.isLevelEnabled('warn')) print('\n*** WARNING: AUTH_MODE=open — the FHIR API and /admin/* are open to anyone who can reach them. ***\n\n');
    return;
  }
  const secret = config.authAdminSecret ?? newToken();
  if (!(await createAdministratorClient(store, secret))) return;
  logger.info({ clientId: BOOTSTRAP_CLIENT_ID }, 'created the bootstrap administrator client');
  if (config.authAdminSecret) return;
  const base = `${config.baseUrl ?? `http://localhost:${config.port}`}/fhir`;
  print(
    `\nCareBridge: created the administrator client. Its secret is shown ONCE — store it now.\n` +
      `  client_id:     ${BOOTSTRAP_CLIENT_ID}\n  client_secret: ${secret}\n` +
      `Get an admin token:\n` +
      `  curl -s -u '${BOOTSTRAP_CLIENT_ID}:${secret}' -d grant_type=client_credentials -d 'scope=${ADMINISTRATOR_SCOPE}' ${base}${TOKEN_PATH}\n\n`,
  );
}

/** The administrator client's scopes: the admin API and every resource interaction. */
export const ADMINISTRATOR_SCOPE = `${ADMIN_SCOPE} system/*.cruds`;

/**
 * Make a tenant's administrator client (`carebridge-admin`, client_credentials with HTTP Basic)
 * with this secret, if the tenant has no client yet. false when it has one (or another worker made
 * it first). Used at first start (default tenant) and when a tenant is created (POST /admin/tenants).
 */
export async function createAdministratorClient(store: ResourceStore, secret: string): Promise<boolean> {
  const auth = new AuthStore(store);
  if ((await auth.clientCount()) > 0) return false;
  try {
    await auth.insertClient({
      clientId: BOOTSTRAP_CLIENT_ID,
      name: 'CareBridge administrator',
      kind: 'confidential',
      authMethod: 'client_secret_basic',
      secretHash: await hashSecret(secret),
      redirectUris: [],
      scope: ADMINISTRATOR_SCOPE,
    });
  } catch (error) {
    if ((error as { code?: string }).code === '23505') return false; // another worker made it first
    throw error;
  }
  return true;
}
