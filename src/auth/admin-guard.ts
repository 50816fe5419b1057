/**
 * THE guard of every administration surface — /admin/tenants, /admin/hl7v2, /admin/jobs (server
 * wide, guarded with the default tenant's tokens) and {fhir base}/admin/clients|users|launch
 * (guarded with that tenant's tokens):
 *
 * - AUTH_MODE=smart: a Bearer access token of the guarding tenant carrying the `admin` scope (the
 *   bootstrap administrator client has it). No token, a malformed, expired, revoked or foreign one
 *   (another tenant's): 401 OperationOutcome + WWW-Authenticate. A valid token without `admin`:
 *   403 OperationOutcome (insufficient_scope).
 * - AUTH_MODE=open: authorization is off, for the admin surfaces as for the FHIR API, EXCEPT the
 *   ones that hand out credentials (client and user registration, launch contexts): those answer
 *   403, because credentials made while nothing is checked would stay valid once AUTH_MODE=smart.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../config.js';
import type { ResourceStore } from '../store/resource-store.js';
import { bearerToken, unauthorized } from './middleware.js';
import { forbidden } from './policy.js';
import { ADMIN_SCOPE } from './scopes.js';
import { InvalidTokenError, verifyAccessToken } from './tokens.js';

export interface AdminGuardOptions {
  /** The store whose tokens are accepted: the default tenant's for server-wide surfaces. */
  storeOf: (req: Request) => Promise<ResourceStore>;
  /** The surface hands out credentials: closed (403) with AUTH_MODE=open. */
  issuesCredentials?: boolean;
}

export function adminGuard(config: Pick<Config, 'authMode'>, options: AdminGuardOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (config.authMode === 'open') {
      return next(options.issuesCredentials ? forbidden('AUTH_MODE=open: no credentials are issued while authorization is off (they would stay valid with AUTH_MODE=smart)') : undefined);
    }
    const token = bearerToken(req);
    if (!token) return next(unauthorized(req.headers.authorization ? 'The Authorization header is not a Bearer token' : `The admin API needs an access token with the ${ADMIN_SCOPE} scope (Authorization: Bearer ...)`));
    options
      .storeOf(req)
      .then((store) => verifyAccessToken(store, token))
      .then((access) => {
        if (!access.scopes.includes(ADMIN_SCOPE)) return next(forbidden(`The admin API needs a token with the ${ADMIN_SCOPE} scope`));
        res.locals.access = access;
        next();
      })
      .catch((error: unknown) => next(error instanceof InvalidTokenError ? unauthorized(error.message) : error));
  };
}
