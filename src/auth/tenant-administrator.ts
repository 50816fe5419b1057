/**
 * A new tenant's administrator: created with the tenant (POST /admin/tenants) so that the tenant
 * can be administered at once through its own admin API; its secret is returned once, in that
 * response, and kept only as a hash. Nothing is made with AUTH_MODE=open (credentials made while
 * nothing is checked would stay valid once authorization is on; the CLI makes one later).
 */
import type { Config } from '../config.js';
import type { ResourceStore } from '../store/resource-store.js';
import { ADMINISTRATOR_SCOPE, BOOTSTRAP_CLIENT_ID, createAdministratorClient } from './routes.js';
import { newToken } from './secrets.js';
import { TOKEN_PATH } from './token-router.js';

export interface TenantAdministrator {
  client_id: string;
  client_secret: string;
  scope: string;
  token_endpoint: string;
}

export async function issueTenantAdministrator(store: ResourceStore, fhirBase: string, config: Pick<Config, 'authMode'>): Promise<TenantAdministrator | undefined> {
  if (config.authMode !== 'smart') return undefined;
  const secret = newToken();
  if (!(await createAdministratorClient(store, secret))) return undefined;
  return { client_id: BOOTSTRAP_CLIENT_ID, client_secret: secret, scope: ADMINISTRATOR_SCOPE, token_endpoint: `${fhirBase}${TOKEN_PATH}` };
}
