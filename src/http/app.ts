/**
 * The express application: request ids and logs, security headers, CORS, rate limits, the FHIR
 * endpoint of every tenant (/fhir for the default one, /t/{tenant}/fhir), the tenant admin API,
 * health probes, and OperationOutcome for every error.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { FhirError, notFound } from '../fhir/outcome.js';
import type { Tenants } from '../store/tenants.js';
import { DEFAULT_TENANT } from '../store/tenants.js';
import { internalError, respondError } from './respond.js';
import { tenantRouter, type TenantRouterHook } from './tenant-router.js';
import { corsPolicy, ipRateLimit } from './traffic.js';
import { tenantAdminRouter } from '../tenants/admin-router.js';
import { adminGuard } from '../auth/admin-guard.js';
import { calendarRouter } from '../workflows/calendar-feed.js';
import { shareLinkRouter } from '../workflows/pdf-share-router.js';

export interface AppDeps {
  config: Config;
  tenants: Tenants;
  logger: Logger;
  /** Whether the server accepts traffic (false while shutting down). */
  isReady?: () => boolean;
  /** The HL7 v2 operator view (src/http/admin-hl7v2.ts), mounted at /admin/hl7v2 when given. */
  hl7v2Admin?: express.Router;
  /** The dead list of background jobs (src/http/admin-jobs.ts), mounted at /admin/jobs when given. */
  jobsAdmin?: express.Router;
  /**
   * Added to every tenant's FHIR router after the tenant is resolved (res.locals.tenant) and
   * before rate limiting and the FHIR handler: authorization sets res.locals.access there.
   */
  tenantHooks?: TenantRouterHook[];
}

export function createApp(deps: AppDeps): express.Express {
  const { config, tenants, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);
  app.use(
    pinoHttp({
      logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : 'info'),
      // One short line per request: headers may carry tokens and patient identifiers.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );
  app.use(helmet({ contentSecurityPolicy: false, crossOriginResourcePolicy: false }));
  // CORS for browser apps (CORS_ORIGINS) and the per-IP rate limit: src/http/traffic.ts.
  const corsHandler = corsPolicy(config);
  if (corsHandler) app.use(corsHandler);
  const ipLimit = ipRateLimit(config);
  if (ipLimit) app.use(['/fhir', '/t', '/admin'], ipLimit);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      if (deps.isReady && !deps.isReady()) throw new Error('shutting down');
      await tenants.db.query('SELECT 1');
      res.json({ status: 'ready', store: tenants.db.engine });
    } catch (error) {
      res.status(503).json({ status: 'unavailable', reason: (error as Error).message });
    }
  });

  // The FHIR endpoint: one router serves every tenant (src/http/tenant-router.ts), the default
  // tenant at /fhir and every tenant at /t/{tenant}/fhir; tenants are created at /admin/tenants.
  const fhir = tenantRouter({ config, tenants }, deps.tenantHooks);
  app.use('/fhir', fhir);
  app.use('/t/:tenant/fhir', fhir);
  // Every /admin surface (tenants, HL7 v2 messages, jobs) behind ONE guard: the default tenant's
  // access token with the admin scope (src/auth/admin-guard.ts).
  app.use('/admin', adminGuard(config, { storeOf: () => tenants.store(DEFAULT_TENANT) }));
  app.use('/admin/tenants', tenantAdminRouter({ config, tenants }));
  // iCal feeds behind secret token URLs (src/workflows/calendar-feed.ts): the token is the credential.
  app.use('/calendar', calendarRouter(tenants, config.baseUrl));
  if (deps.hl7v2Admin) app.use('/admin/hl7v2', deps.hl7v2Admin);
  if (deps.jobsAdmin) app.use('/admin/jobs', deps.jobsAdmin);
  // Shared prescription PDFs behind signed, expiring, revocable links (src/workflows/pdf-share.ts).
  app.use('/share', shareLinkRouter(tenants));
  app.use((_req, _res, next) => next(notFound('Not found; the FHIR endpoint is /fhir')));

  // Errors: FhirError as its OperationOutcome; body-parser's as 400/413; anything else 500, logged.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof FhirError) return respondError(res, error);
    const e = error as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      return respondError(res, new FhirError(413, { severity: 'error', code: 'too-costly', diagnostics: `The request body is larger than the limit of ${config.maxBodyBytes} bytes` }));
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      return respondError(res, new FhirError(e.status, { severity: 'error', code: 'invalid', diagnostics: e.message ?? 'Bad request' }));
    }
    req.log?.error({ err: error }, 'unhandled error');
    internalError(res);
  });
  return app;
}
