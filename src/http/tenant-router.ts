/**
 * The FHIR endpoint of a tenant. ONE router serves every mount — /fhir (the default tenant) and
 * /t/{tenant}/fhir — and everything in it works on the tenant resolved from the url:
 *
 *   raw body → tenant (404 if never created) → hooks (authorization: SMART endpoints, token
 *   checks setting res.locals.access) → per-client rate limit → FHIR interaction → failure audit
 *
 * res.locals after the tenant step: `tenant` (TenantState); hooks may set `access` (Access),
 * which becomes InteractionContext.access. Links (fullUrl, Location, paging) use the tenant's
 * base url.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Access } from '../auth/access.js';
import { checkRoute } from '../auth/policy.js';
import type { Config } from '../config.js';
import { FhirError } from '../fhir/outcome.js';
import { readEntities } from '../audit/read-audit.js';
import { recordAudit, recordFailure } from '../audit/record.js';
import type { AuditRequest } from '../audit/types.js';
import { auditEventWriteRefused } from '../audit/write-audit.js';
import type { InteractionContext } from '../interactions/context.js';
import type { ResourceStore } from '../store/resource-store.js';
import { DEFAULT_TENANT, type Tenants } from '../store/tenants.js';
import { existingTenantStore } from '../tenants/directory.js';
import { notModified } from './conditional-read.js';
import { matchRoute, type Route, type RouteMatch } from './fhir-router.js';
import { checkAcceptable } from './negotiate.js';
import { respond } from './respond.js';
import { clientRateLimit } from './traffic.js';

export interface TenantRouterDeps {
  config: Config;
  tenants: Tenants;
}

/** What the tenant step leaves in res.locals.tenant. */
export interface TenantState {
  /** The tenant named by the url ('default' at /fhir). */
  name: string;
  store: ResourceStore;
  /** This tenant's FHIR base, e.g. https://fhir.example.org/t/clinic_a/fhir. */
  baseUrl: string;
}

/** Adds routes or middleware to a tenant's router, after the tenant is known and before the FHIR handler. */
export type TenantRouterHook = (router: Router) => void;

export function tenantOf(res: Response): TenantState {
  const state = res.locals.tenant as TenantState | undefined;
  if (!state) throw new Error('tenantOf: used outside a tenant router');
  return state;
}

/** The checked access token's result, set by the authorization hook (undefined: auth off). */
export function accessOf(res: Response): Access | undefined {
  return res.locals.access as Access | undefined;
}

export function tenantBaseUrl(req: Request, config: Pick<Config, 'baseUrl'>): string {
  const origin = config.baseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
  const tenant = tenantParam(req);
  return tenant === undefined ? `${origin}/fhir` : `${origin}/t/${tenant}/fhir`;
}

/** The {tenant} of /t/{tenant}/fhir; undefined at /fhir. */
function tenantParam(req: Request): string | undefined {
  const value: unknown = req.params.tenant;
  return typeof value === 'string' ? value : undefined;
}

const METHOD_INTERACTIONS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

function segmentsOf(req: Request): string[] {
  return req.path.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
}

/** The AuditEvent's view of a request; the route when it could be matched. */
function auditRequest(req: Request, state: TenantState, found?: { route: Route; match: RouteMatch }): AuditRequest {
  const q = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
  const form = req.method === 'POST' && req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') && Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  const interaction = found?.route.interaction ?? METHOD_INTERACTIONS[req.method] ?? 'read';
  const m = found?.match;
  return {
    tenant: state.name,
    interaction: interaction.startsWith('$') ? 'operation' : interaction,
    ...(interaction.startsWith('$') ? { operation: interaction.slice(1) } : {}),
    method: req.method,
    path: req.path.replace(/^\/+/, ''),
    query: [q, form].filter(Boolean).join('&'),
    ip: req.ip,
    requestId: typeof req.id === 'string' ? req.id : undefined,
    baseUrl: state.baseUrl,
    ...(m?.type ? { target: { type: m.type, id: m.id, vid: m.vid } } : {}),
  };
}

function contextOf(config: Config, req: Request, res: Response, found?: { route: Route; match: RouteMatch }): InteractionContext {
  const state = tenantOf(res);
  // The metadata endpoint is public and polled: not audited.
  const audited = config.audit && found?.route.interaction !== 'capabilities';
  return { store: state.store, baseUrl: state.baseUrl, access: accessOf(res), audit: audited ? auditRequest(req, state, found) : undefined };
}

export function tenantRouter(deps: TenantRouterDeps, hooks: TenantRouterHook[] = []): Router {
  const { config, tenants } = deps;
  const router = express.Router({ mergeParams: true });
  router.use(express.raw({ type: () => true, limit: config.maxBodyBytes }));
  router.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      const name = tenantParam(req) ?? DEFAULT_TENANT;
      const store = await existingTenantStore(tenants, name);
      res.locals.tenant = { name, store, baseUrl: tenantBaseUrl(req, config) } satisfies TenantState;
      next();
    } catch (error) {
      next(error);
    }
  });
  for (const hook of hooks) hook(router);
  const limit = clientRateLimit(config);
  if (limit) router.use(limit);

  router.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      const found = matchRoute(req.method, segmentsOf(req), undefined);
      const { route, match } = found;
      checkAcceptable(req, route.produces);
      // Only the server writes AuditEvents (transactions and batches: a write rule, write-audit.ts).
      if (route.write && match.type === 'AuditEvent') throw auditEventWriteRefused();
      const ctx = contextOf(config, req, res, found);
      await checkRoute(ctx, route, match, req); // scopes (src/auth/policy.ts, route-rights.ts)
      res.locals.ctx = ctx;
      const result = await route.handle(ctx, req, match);
      // Writes recorded their AuditEvent in their own transaction; the rest (reads, searches, and
      // operations that write without Writer.recordRequest) are recorded now, before the response.
      if (ctx.audit && !ctx.audit.recorded) await recordAudit(ctx, result.status, readEntities(ctx.audit, result));
      if (route.interaction === 'read' && notModified(req, result)) {
        res.status(304).setHeader('ETag', `W/"${result.version!.versionId}"`);
        res.end();
        return;
      }
      respond(req, res, result, ctx.baseUrl, route.write === true);
    } catch (error) {
      next(error);
    }
  });

  // Every failure inside a known tenant — refused token (401/403), unknown type, validation error,
  // rolled-back write — is audited (after any rollback) before the error is rendered.
  router.use(async (error: unknown, req: Request, res: Response, next: NextFunction) => {
    try {
      if (config.audit && res.locals.tenant && !(error instanceof FhirError && error.status === 429)) {
        let ctx = res.locals.ctx as InteractionContext | undefined;
        if (!ctx) {
          let found: { route: Route; match: RouteMatch } | undefined;
          try {
            found = matchRoute(req.method, segmentsOf(req), undefined);
          } catch {
            found = undefined;
          }
          ctx = contextOf(config, req, res, found);
        }
        await recordFailure(ctx, error);
      }
    } catch (auditError) {
      req.log?.error({ err: auditError }, 'could not record the AuditEvent of a failed request');
    }
    next(error);
  });
  return router;
}
