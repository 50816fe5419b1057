/** Configuration from environment variables (documented in README.md). */
import { availableParallelism } from 'node:os';

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
  shutdownTimeoutMs: number;
  /** HL7 v2 MLLP listener port (MLLP_PORT; 'off' → undefined, no listener). */
  mllpPort?: number;
  mllpMaxMessageBytes: number;
  mllpIdleTimeoutMs: number;
}

function int(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (got '${raw}')`);
  return n;
}

function bytes(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (!raw) return fallback;
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(raw.trim());
  if (!m) throw new Error(`${name} must be a size such as 16mb (got '${raw}')`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * unit;
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
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, env),
    mllpPort: env.MLLP_PORT?.trim().toLowerCase() === 'off' ? undefined : int('MLLP_PORT', 2575, env),
    mllpMaxMessageBytes: bytes('MLLP_MAX_MESSAGE_SIZE', 16 * 1024 * 1024, env),
    mllpIdleTimeoutMs: int('MLLP_IDLE_TIMEOUT_MS', 600_000, env),
  };
}
