/**
 * /admin/jobs: the dead list of background jobs (jobs whose attempts ran out), across queues.
 * A plain Router like /admin/hl7v2, behind the admin guard of every /admin surface
 * (src/auth/admin-guard.ts, mounted in src/http/app.ts); JSON out, errors as OperationOutcome.
 *
 *   GET  /failed?queue=<name>        → 200 {"queue":"…","jobs":[{id,name,data,attemptsMade,failedReason}]}
 *   POST /{queue}/{id}/retry         → 200 {"queue":"…","id":"…","retried":true}; 404 if not on that queue's dead list
 *
 * Subscription notifications are retried forever and never land here; change jobs (fhir-change
 * and other consumers' queues) do after CHANGE_JOB_ATTEMPTS.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { badRequest, FhirError, notFound } from '../fhir/outcome.js';
import type { JobQueue } from '../jobs/queue.js';
import { internalError, respondError } from './respond.js';

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function queueName(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw badRequest('queue is required (e.g. ?queue=fhir-change), once');
  if (!QUEUE_NAME.test(value)) throw badRequest(`'${value}' is not a queue name`);
  return value;
}

export function createJobsAdminRouter(queue: JobQueue): express.Router {
  const router = express.Router();
  const handle = (fn: (req: Request) => Promise<unknown>) => async (req: Request, res: Response, next: NextFunction) => {
    try {
      res.status(200).json(await fn(req));
    } catch (error) {
      next(error);
    }
  };
  router.get(
    '/failed',
    handle(async (req) => {
      const name = queueName(req.query.queue);
      return { queue: name, jobs: await queue.listFailed(name) };
    }),
  );
  router.post(
    '/:queue/:id/retry',
    handle(async (req) => {
      const name = queueName(req.params.queue);
      const id = String(req.params.id);
      // Only a job on this queue's dead list (listFailed also opens the queue in this process).
      const failed = await queue.listFailed(name);
      if (!failed.some((j) => j.id === id) || !(await queue.retry(id))) throw notFound(`No failed job '${id}' on queue '${name}'`);
      return { queue: name, id, retried: true };
    }),
  );
  router.use((_req: Request, _res: Response, next: NextFunction) => next(notFound('Not found')));
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof FhirError) return respondError(res, error);
    req.log?.error({ err: error }, 'jobs admin error');
    internalError(res);
  });
  return router;
}
