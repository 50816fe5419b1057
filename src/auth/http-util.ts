/** Small HTTP helpers of the authorization server's express routers. */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { badRequest } from '../fhir/outcome.js';
import type { ResourceStore } from '../store/resource-store.js';
import { OAuthError } from './client-auth.js';

/**
 * The tenant a request is for: its store and its FHIR base URL (which is also the OAuth issuer and
 * the audience of its tokens). The default tenant's resolver is in src/http/app.ts; tenant routing
 * under /t/{tenant}/fhir passes its own.
 */
export interface AuthTenant {
  store: ResourceStore;
  baseUrl: string;
}
export type TenantResolver = (req: Request) => Promise<AuthTenant>;

/** The request body as form fields (the FHIR router has read it raw already; plain express gives an object). */
export function formOf(req: Request): URLSearchParams {
  if (Buffer.isBuffer(req.body)) return new URLSearchParams(req.body.toString('utf8'));
  if (req.body && typeof req.body === 'object') return new URLSearchParams(req.body as Record<string, string>);
  return new URLSearchParams();
}

/** The request body as JSON (admin API). */
export function jsonOf(req: Request): Record<string, unknown> {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : typeof req.body === 'string' ? req.body : undefined;
  if (text === undefined) return (req.body ?? {}) as Record<string, unknown>;
  try {
    const value: unknown = JSON.parse(text || '{}');
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw badRequest('The body must be a JSON object');
}

export function queryOf(req: Request): URLSearchParams {
  const i = req.originalUrl.indexOf('?');
  return new URLSearchParams(i >= 0 ? req.originalUrl.slice(i + 1) : '');
}

/** OAuth responses are never cached (RFC 6749 §5.1). */
export function noStore(res: Response): Response {
  return res.setHeader('Cache-Control', 'no-store').setHeader('Pragma', 'no-cache');
}

/** Wrap an async handler: OAuthError → { error, error_description } JSON; anything else to express. */
export function oauth(handler: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    handler(req, res).catch((error: unknown) => {
      if (!(error instanceof OAuthError)) return next(error);
      noStore(res).status(error.status);
      if (error.status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="CareBridge"');
      res.json({ error: error.error, error_description: error.message });
    });
  };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
