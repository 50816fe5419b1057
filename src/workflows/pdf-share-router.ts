/**
 * GET /share/[token] (default tenant) and /share/[tenant]/[token]: the PDF behind a prescription
 * share link (pdf-share.ts). The token is the credential; errors are OperationOutcomes (404 for
 * unknown tenants and tokens, 410 for expired or revoked links).
 */
import express from 'express';
import { notFound } from '../fhir/outcome.js';
import type { Tenants } from '../store/tenants.js';
import { DEFAULT_TENANT } from '../store/tenants.js';
import { tenantExists } from '../tenants/directory.js';
import { openShareLink } from './pdf-share.js';

export function shareLinkRouter(tenants: Tenants): express.Router {
  const router = express.Router();
  const serve = async (req: express.Request, res: express.Response, next: express.NextFunction) => {
    try {
      const tenant = req.params.tenant === undefined ? DEFAULT_TENANT : String(req.params.tenant);
      // Never creates a tenant: an unknown one is simply not found.
      if (!(await tenantExists(tenants, tenant))) throw notFound('This link is not valid');
      const pdf = await openShareLink(await tenants.store(tenant), String(req.params.token));
      res.status(200).type(pdf.contentType).setHeader('Cache-Control', 'private, no-store').send(pdf.data);
    } catch (error) {
      next(error);
    }
  };
  router.get('/:token', serve);
  router.get('/:tenant/:token', serve);
  return router;
}
