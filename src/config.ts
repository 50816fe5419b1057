/** Configuration from environment variables (documented in README.md). */
import { availableParallelism } from 'node:os';
import { loadAppointmentsConfig, type AppointmentsConfig } from './workflows/appointments-config.js';
import { loadOutboundSettings, type OutboundSettings } from './hl7v2/outbound/settings.js';

export interface Config {
  port: number;
  host: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Key prefix of the job queues in Redis (several deployments can share one Redis). */
  redisPrefix: string;
  dataDir: string;
  logLevel: string;
  /** Public base URL written into links; derived from each request when unset. */
  baseUrl?: string;
  maxBodyBytes: number;
  /** HTTP worker processes in server mode (DATABASE_URL); the embedded store is single-process. */
  workers: number;
  dbPoolSize: number;
  /** DB_PREPARED_STATEMENTS: keep the store's fixed statements prepared per connection (off behind a transaction-pooling proxy). */
  dbPreparedStatements: boolean;
  shutdownTimeoutMs: number;
  /** HL7 v2 MLLP listener port (MLLP_PORT; 'off' → undefined, no listener). */
  mllpPort?: number;
  mllpMaxMessageBytes: number;
  mllpIdleTimeoutMs: number;
  /** SMART-on-FHIR authorization (src/auth/): 'smart' (default) requires access tokens; 'open' turns it off. */
  authMode: 'smart' | 'open';
  /** Secret of the bootstrap administrator client made on first start (AUTH_ADMIN_SECRET); unset = random, printed once. */
  authAdminSecret?: string;
  /** Hosts rest-hook Subscription endpoints may name (SUBSCRIPTION_ALLOWED_HOSTS, `*.x` wildcards); undefined = any. */
  subscriptionAllowedHosts?: string[];
  /** Delivered subscription events are kept this long (for $events), then pruned (a PostgreSQL interval). */
  subscriptionEventRetention: string;
  /** Audit trail: AuditEvent per request, Provenance per write (AUDIT=on|off; off only for benchmarks). */
  audit: boolean;
  /** Requests per minute per OAuth client (or per IP without a token); 0 = no limit (RATE_LIMIT_PER_MINUTE). */
  rateLimitPerMinute: number;
  /** Requests per minute per IP address to /fhir, /t/… and /admin, before authentication; 0 = no limit. */
  rateLimitIpPerMinute: number;
  /** Origins browser apps may call from (CORS_ORIGINS, comma separated, or '*'); empty = no CORS. */
  corsOrigins: string[];
  /**
   * TRUST_PROXY: which X-Forwarded-* headers to believe (client address for rate limits and
   * AuditEvent, protocol and host for links). Unset/false: none — a client cannot choose its own
   * address; true, a hop count or a list of proxy addresses/CIDRs as express's 'trust proxy'.
   */
  trustProxy: boolean | number | string;
  /** Appointments workflow: slots, reminders (src/workflows/appointments-config.ts). */
  appointments: AppointmentsConfig;
  /** HL7 v2 outbound feeds: attempts, backoff, ACK timeout, MSH-3/4 (src/hl7v2/outbound/settings.ts). */
  hl7v2Outbound: OutboundSettings;
  /** HMAC key of shareable prescription links (SHARE_LINK_SECRET); unset → generated per tenant and stored. */
  shareLinkSecret?: string;
}

/** Comma-separated host names, lower-cased; empty or unset → undefined. */
function parseHostList(raw: string | undefined): string[] | undefined {
  const list = (raw ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  return list.length > 0 ? list : undefined;
}

function int(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (got '${raw}')`);
  return n;
}

function onOff(name: string, fallback: boolean, env: NodeJS.ProcessEnv): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['on', 'true', '1', 'yes'].includes(raw)) return true;
  if (['off', 'false', '0', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be on or off (got '${env[name]}')`);
}

function authMode(raw: string | undefined): 'smart' | 'open' {
  const mode = (raw ?? '').trim().toLowerCase() || 'smart';
  if (mode !== 'smart' && mode !== 'open') throw new Error(`AUTH_MODE must be smart or open (got '${raw}')`);
  return mode;
}

function bytes(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (!raw) return fallback;
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(raw.trim());
  if (!m) throw new Error(`${name} must be a size such as 16mb (got '${raw}')`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * unit;
}

/** A PostgreSQL interval such as '7 days' or '12 hours'. */
function interval(name: string, fallback: string, env: NodeJS.ProcessEnv): string {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+\s*(seconds?|minutes?|hours?|days?)$/i.test(raw)) throw new Error(`${name} must be a duration such as '7 days' or '12 hours' (got '${raw}')`);
  return raw;
}

function trustProxy(raw: string | undefined): boolean | number | string {
  const v = raw?.trim() ?? '';
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  return /^\d+$/.test(v) ? Number(v) : v;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  return {
    port: int('PORT', 8080, env),
    host: env.HOST || '0.0.0.0',
    databaseUrl,
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX || 'carebridge',
    dataDir: env.DATA_DIR || './data',
    logLevel: env.LOG_LEVEL || 'info',
    baseUrl: env.BASE_URL ? env.BASE_URL.replace(/\/+$/, '') : undefined,
    maxBodyBytes: bytes('MAX_BODY_SIZE', 16 * 1024 * 1024, env),
    workers: databaseUrl ? int('WORKERS', availableParallelism(), env) || 1 : 1,
    dbPoolSize: int('DB_POOL_SIZE', 10, env),
    dbPreparedStatements: onOff('DB_PREPARED_STATEMENTS', true, env),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, env),
    mllpPort: env.MLLP_PORT?.trim().toLowerCase() === 'off' ? undefined : int('MLLP_PORT', 2575, env),
    mllpMaxMessageBytes: bytes('MLLP_MAX_MESSAGE_SIZE', 16 * 1024 * 1024, env),
    mllpIdleTimeoutMs: int('MLLP_IDLE_TIMEOUT_MS', 600_000, env),
    authMode: authMode(env.AUTH_MODE),
    authAdminSecret: env.AUTH_ADMIN_SECRET || undefined,
    subscriptionAllowedHosts: parseHostList(env.SUBSCRIPTION_ALLOWED_HOSTS),
    subscriptionEventRetention: interval('SUBSCRIPTION_EVENT_RETENTION', '7 days', env),
    audit: onOff('AUDIT', true, env),
    rateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 0, env),
    rateLimitIpPerMinute: int('RATE_LIMIT_IP_PER_MINUTE', 0, env),
    trustProxy: trustProxy(env.TRUST_PROXY),
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean),
    appointments: loadAppointmentsConfig(env),
    hl7v2Outbound: loadOutboundSettings(env),
    shareLinkSecret: env.SHARE_LINK_SECRET || undefined,
  };
}
