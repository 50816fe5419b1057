/**
 * Traffic policy: rate limits and CORS.
 *
 * Rate limits (express-rate-limit) count requests per minute in this process's memory: with
 * WORKERS > 1 or several nodes each process counts on its own, so the effective limit is the
 * configured one times the number of processes. A shared count needs a store such as
 * rate-limit-redis on REDIS_URL (not installed). Two limits, both off at 0:
 * - RATE_LIMIT_IP_PER_MINUTE: per client IP, before authentication (also guards token endpoints);
 * - RATE_LIMIT_PER_MINUTE: per OAuth client (access.clientId) once the token is known, per IP
 *   for requests without one.
 * Refused requests get 429 with Retry-After and an OperationOutcome.
 *
 * CORS (cors package): CORS_ORIGINS lists the origins of browser apps ('*' for any); the
 * response headers a FHIR client reads are exposed.
 */
import cors from 'cors';
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Access } from '../auth/access.js';
import type { Config } from '../config.js';
import { FhirError } from '../fhir/outcome.js';
import { respondError } from './respond.js';

const clientIp = (req: Request) => ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? 'unknown');

function limiter(perMinute: number, key: (req: Request, res: Response) => string, what: string): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-6',
    legacyHeaders: false,
    keyGenerator: key,
    // The app trusts X-Forwarded-For (it runs behind a proxy); the check would only log a warning.
    validate: { trustProxy: false },
    handler: (req, res) => {
      const reset = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + 60_000) - Date.now()) / 1000));
      respondError(
        res,
        new FhirError(429, { severity: 'error', code: 'throttled', diagnostics: `Too many requests ${what}: at most ${perMinute} a minute; retry after ${seconds} s` }, { 'Retry-After': String(seconds) }),
      );
    },
  });
}

/** Per-IP limit for everything under the FHIR and admin mounts; undefined when off. */
export function ipRateLimit(config: Pick<Config, 'rateLimitIpPerMinute'>): RequestHandler | undefined {
  if (!config.rateLimitIpPerMinute) return undefined;
  return limiter(config.rateLimitIpPerMinute, (req) => `ip:${clientIp(req)}`, 'from this address');
}

/** Per-client limit, after authentication set res.locals.access; undefined when off. */
export function clientRateLimit(config: Pick<Config, 'rateLimitPerMinute'>): RequestHandler | undefined {
  if (!config.rateLimitPerMinute) return undefined;
  return limiter(
    config.rateLimitPerMinute,
    (req, res) => {
      const access = res.locals.access as Access | undefined;
      return access ? `client:${access.tenant}:${access.clientId}` : `ip:${clientIp(req)}`;
    },
    'from this client',
  );
}

/** Headers a browser FHIR client must be able to read from responses. */
export const EXPOSED_HEADERS = ['ETag', 'Location', 'Content-Location', 'Last-Modified', 'X-Request-Id', 'Retry-After', 'X-Progress', 'WWW-Authenticate'];

/** CORS for the configured origins (preflight answered here); undefined when none are configured. */
export function corsPolicy(config: Pick<Config, 'corsOrigins'>): RequestHandler | undefined {
  if (config.corsOrigins.length === 0) return undefined;
  const any = config.corsOrigins.includes('*');
  return cors({
    origin: any ? '*' : config.corsOrigins,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}
