/**
 * The administration API of a tenant's authorization server (JSON in, JSON out; errors as
 * OperationOutcome), behind the admin guard (admin-guard.ts) with this tenant's tokens: a token
 * with the `admin` scope (the bootstrap administrator has it); closed with AUTH_MODE=open:
 *
 *   POST {fhir base}/admin/clients   register an app or backend service
 *   POST {fhir base}/admin/users     create a user linked to a Practitioner, Patient or RelatedPerson
 *   POST {fhir base}/admin/launch    an EHR launch context {patient, encounter} → { launch }
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config.js';
import { adminGuard } from './admin-guard.js';
import { AuthStore } from './auth-store.js';
import { jsonOf, noStore, type TenantResolver } from './http-util.js';
import { registerClient, registerUser } from './registration.js';
import { badRequest } from '../fhir/outcome.js';

type Handler = (req: Request, res: Response) => Promise<unknown>;

export function adminRouter(tenantOf: TenantResolver, config: Pick<Config, 'authMode'>): express.Router {
  const router = express.Router();
  // Registration hands out credentials: closed with AUTH_MODE=open (admin-guard.ts).
  router.use('/admin', adminGuard(config, { storeOf: async (req) => (await tenantOf(req)).store, issuesCredentials: true }));
  const post = (path: string, handler: Handler) =>
    router.post(path, (req: Request, res: Response, next: NextFunction) => {
      handler(req, res)
        .then((body) => noStore(res).status(201).json(body))
        .catch(next);
    });
  post('/admin/clients', async (req) => registerClient((await tenantOf(req)).store, jsonOf(req)));
  post('/admin/users', async (req) => registerUser((await tenantOf(req)).store, jsonOf(req)));
  post('/admin/launch', async (req) => {
    const t = await tenantOf(req);
    const body = jsonOf(req);
    const patient = typeof body.patient === 'string' ? body.patient : undefined;
    const encounter = typeof body.encounter === 'string' ? body.encounter : undefined;
    if (!patient && !encounter) throw badRequest('A launch context needs patient and/or encounter (ids)', ['patient']);
    if (patient && !(await t.store.current(t.store.db, 'Patient', patient))) throw badRequest(`Patient/${patient} does not exist`, ['patient']);
    if (encounter && !(await t.store.current(t.store.db, 'Encounter', encounter))) throw badRequest(`Encounter/${encounter} does not exist`, ['encounter']);
    return { launch: await new AuthStore(t.store).insertLaunch({ patient, encounter }), patient, encounter };
  });
  return router;
}
