/**
 * `authenticate`: the express middleware in front of a tenant's FHIR endpoint. With AUTH_MODE=smart
 * every request needs a valid Bearer access token for that tenant, except the public discovery
 * documents (/metadata, /.well-known/*); the checked token becomes `res.locals.access` (read it
 * with accessOf) and the HTTP layer puts it on InteractionContext.access, where the policy
 * (src/auth/policy.ts) applies it. Bad, expired, revoked or foreign tokens: 401 OperationOutcome
 * with WWW-Authenticate: Bearer error="invalid_token".
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../config.js';
import { FhirError } from '../fhir/outcome.js';
import type { Access } from './access.js';
import type { TenantResolver } from './http-util.js';
import { InvalidTokenError, verifyAccessToken } from './tokens.js';

const PUBLIC_PATHS = [/^\/metadata\/?$/, /^\/\.well-known\//];

export function unauthorized(description: string): FhirError {
  // Header values are ASCII: no quotes, backslashes or other characters that would break it.
  const quoted = description.replace(/[^\x20-\x7e]|["\\]/g, '');
  return new FhirError(
    401,
    { severity: 'error', code: 'login', diagnostics: description },
    { 'WWW-Authenticate': `Bearer realm="CareBridge", error="invalid_token", error_description="${quoted}"` },
  );
}

/** The Bearer token of a request, if it sent one. */
export function bearerToken(req: Request): string | undefined {
  const m = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

export function authenticate(config: Pick<Config, 'authMode'>, tenantOf: TenantResolver): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (config.authMode === 'open' || PUBLIC_PATHS.some((re) => re.test(req.path))) return next();
    const token = bearerToken(req);
    if (!token) return next(unauthorized(req.headers.authorization ? 'The Authorization header is not a Bearer token' : 'An access token is required (Authorization: Bearer ...)'));
    tenantOf(req)
      .then((t) => verifyAccessToken(t.store, token))
      .then((access) => {
        res.locals.access = access;
        next();
      })
      .catch((error: unknown) => next(error instanceof InvalidTokenError ? unauthorized(error.message) : error));
  };
}

/** The checked access of this request (undefined with AUTH_MODE=open). */
export function accessOf(res: Response): Access | undefined {
  return res.locals.access as Access | undefined;
}
