/**
 * The express application: request ids and logs, security headers, body limits, the FHIR
 * endpoint for the default tenant at /fhir, health probes, and OperationOutcome for every error.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { FhirError, notFound } from '../fhir/outcome.js';
import type { InteractionContext } from '../interactions/context.js';
import type { Tenants } from '../store/tenants.js';
import { DEFAULT_TENANT } from '../store/tenants.js';
import { matchRoute } from './fhir-router.js';
import { checkAcceptable } from './negotiate.js';
import { internalError, respond, respondError } from './respond.js';
import { notModified } from './conditional-read.js';

export interface AppDeps {
  config: Config;
  tenants: Tenants;
  logger: Logger;
  /** Whether the server accepts traffic (false while shutting down). */
  isReady?: () => boolean;
}

function baseUrlOf(req: Request, config: Config, mount: string): string {
  const origin = config.baseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
  return `${origin}${mount}`;
}

export function createApp(deps: AppDeps): express.Express {
  const { config, tenants, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
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

  const fhir = express.Router();
  fhir.use(express.raw({ type: () => true, limit: config.maxBodyBytes }));
  fhir.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      checkAcceptable(req);
      const store = await tenants.store(DEFAULT_TENANT);
      const baseUrl = baseUrlOf(req, config, '/fhir');
      const ctx: InteractionContext = { store, baseUrl };
      const segments = req.path.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
      const { route, match } = matchRoute(req.method, segments, undefined);
      const result = await route.handle(ctx, req, match);
      if (route.interaction === 'read' && notModified(req, result)) {
        res.status(304).setHeader('ETag', `W/"${result.version!.versionId}"`);
        res.end();
        return;
      }
      respond(req, res, result, baseUrl, route.write === true);
    } catch (error) {
      next(error);
    }
  });
  app.use('/fhir', fhir);
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
