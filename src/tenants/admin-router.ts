/**
 * /admin/tenants: create and list tenants (JSON in and out, errors as OperationOutcome).
 *
 *   GET  /admin/tenants                 → 200 {"tenants":[{"name":"default","fhirBase":"…/fhir"}, …]}
 *   POST /admin/tenants {"name":"x"}    → 201 {"name":"x","fhirBase":"…/t/x/fhir","administrator":{client_id,
 *                                          client_secret,scope,token_endpoint}}; 409 if it exists; 400 bad name
 *
 * Behind the admin guard of every /admin surface (src/auth/admin-guard.ts, mounted in
 * src/http/app.ts). With AUTH_MODE=smart the new tenant gets its administrator client at once;
 * its secret is in this response only (Cache-Control: no-store).
 */
import express, { type Request } from 'express';
import type { Config } from '../config.js';
import { issueTenantAdministrator } from '../auth/index.js';
import { conflict } from '../fhir/outcome.js';
import { DEFAULT_TENANT, type Tenants } from '../store/tenants.js';
import { checkTenantName, createTenant, listTenants } from './directory.js';

function fhirBase(req: Request, config: Pick<Config, 'baseUrl'>, name: string): string {
  const origin = config.baseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
  return name === DEFAULT_TENANT ? `${origin}/fhir` : `${origin}/t/${name}/fhir`;
}

export function tenantAdminRouter(deps: { config: Config; tenants: Tenants }): express.Router {
  const { config, tenants } = deps;
  const router = express.Router();
  router.get('/', async (req, res, next) => {
    try {
      const names = new Set([DEFAULT_TENANT, ...(await listTenants(tenants))]);
      res.json({ tenants: [...names].sort().map((name) => ({ name, fhirBase: fhirBase(req, config, name) })) });
    } catch (error) {
      next(error);
    }
  });
  router.post('/', express.json({ limit: '16kb', type: ['application/json', 'application/fhir+json'] }), async (req, res, next) => {
    try {
      const name = checkTenantName((req.body as { name?: unknown } | undefined)?.name);
      if (!(await createTenant(tenants, name))) throw conflict(`The tenant '${name}' already exists`);
      const base = fhirBase(req, config, name);
      const administrator = await issueTenantAdministrator(await tenants.store(name), base, config);
      res.status(201).setHeader('Location', base).setHeader('Cache-Control', 'no-store').json({ name, fhirBase: base, ...(administrator ? { administrator } : {}) });
    } catch (error) {
      next(error);
    }
  });
  return router;
}
