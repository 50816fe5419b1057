/**
 * Authorization wiring for the HTTP layer: the hook added to every tenant's FHIR router
 * (src/http/tenant-router.ts) mounts the tenant's authorization server (routes.ts) and then the
 * token check (middleware.ts), with the tenant resolved by the router (res.locals.tenant).
 */
import type { Request, Router } from 'express';
import type { Config } from '../config.js';
import type { TenantState } from '../http/tenant-router.js';
import type { TenantResolver } from './http-util.js';
import { authenticate } from './middleware.js';
import { createAuthRouter } from './routes.js';
import { loginAuditor, noLoginAudit } from './login-audit.js';
import type { Tenants } from '../store/tenants.js';
import { registerAccessPolicy } from './policy.js';

export { bootstrapAdministrator } from './routes.js';
export { adminGuard } from './admin-guard.js';
export { issueTenantAdministrator, type TenantAdministrator } from './tenant-administrator.js';
export { checkRoute } from './policy.js';

/** The tenant the tenant router resolved for this request. */
export const routerTenant: TenantResolver = async (req: Request) => {
  const state = req.res?.locals.tenant as TenantState | undefined;
  if (!state) throw new Error('routerTenant: used outside a tenant router');
  return { store: state.store, baseUrl: state.baseUrl };
};

/** With `tenants`, sign-ins and token requests are audited (login-audit.ts). */
export function authHook(config: Pick<Config, 'authMode' | 'audit' | 'baseUrl'>, tenants?: Tenants): (router: Router) => void {
  if (config.authMode === 'smart') registerAccessPolicy(); // the write side of the policy
  const audit = tenants ? loginAuditor({ config, tenants }) : noLoginAudit;
  return (router) => {
    router.use(createAuthRouter(routerTenant, config, audit));
    router.use(authenticate(config, routerTenant));
  };
}
