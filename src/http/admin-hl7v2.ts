/**
 * /admin/hl7v2 for the default tenant: the operator view of HL7 v2 messages (src/hl7v2/admin.ts).
 * A plain Router; src/http/app.ts puts the admin guard (src/auth/admin-guard.ts) in front of
 * every /admin surface. JSON out, errors as OperationOutcome.
 *
 *   GET  /messages?direction=in|out&status=&type=&_count=&_cursor=   newest first, paged
 *   GET  /messages/{id}                                                raw message, ACK, error, resources
 *   POST /messages/{id}/replay                                         409 unless failed/dead (out) or error/rejected (in)
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { badRequest, FhirError } from '../fhir/outcome.js';
import type { Hl7v2Admin } from '../hl7v2/admin.js';
import { DEFAULT_TENANT } from '../store/tenants.js';
import { internalError, respondError } from './respond.js';

function one(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`${name} must be given once`);
  return v;
}

export function createHl7v2AdminRouter(admin: Hl7v2Admin): express.Router {
  const router = express.Router();
  const handle = (fn: (req: Request) => Promise<{ status?: number; body: unknown }>) => async (req: Request, res: Response, next: NextFunction) => {
    try {
      const { status = 200, body } = await fn(req);
      res.status(status).json(body);
    } catch (error) {
      next(error);
    }
  };
  router.get(
    '/messages',
    handle(async (req) => {
      const q = { direction: one(req, 'direction'), status: one(req, 'status'), type: one(req, 'type'), count: one(req, '_count'), before: one(req, '_cursor') };
      const page = await admin.list(DEFAULT_TENANT, q);
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined && k !== 'before') params.set(k === 'count' ? '_count' : k, v);
      if (page.next) params.set('_cursor', page.next);
      return { body: { messages: page.messages, ...(page.next ? { next: `${req.baseUrl}/messages?${params}` } : {}) } };
    }),
  );
  router.get('/messages/:id', handle(async (req) => ({ body: await admin.get(DEFAULT_TENANT, String(req.params.id)) })));
  router.post('/messages/:id/replay', handle(async (req) => ({ body: await admin.replay(DEFAULT_TENANT, String(req.params.id)) })));
  router.use((_req: Request, _res: Response, next: NextFunction) => next(new FhirError(404, { severity: 'error', code: 'not-found', diagnostics: 'Not found' })));
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof FhirError) return respondError(res, error);
    req.log?.error({ err: error }, 'HL7 v2 admin error');
    internalError(res);
  });
  return router;
}
