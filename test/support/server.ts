/**
 * Test servers through the real HTTP stack: on PGlite (always) and on the PostgreSQL server named
 * by DATABASE_URL (when set), each in a database of its own that is dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';

export type Engine = 'pglite' | 'postgres';

/** The engines this run can test: PGlite always, PostgreSQL when DATABASE_URL is set. */
export const ENGINES: Engine[] = process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

if (!process.env.DATABASE_URL && !process.env.CAREBRIDGE_SKIP_NOTICE_SHOWN) {
  process.env.CAREBRIDGE_SKIP_NOTICE_SHOWN = '1';
  console.warn('DATABASE_URL is not set: the PostgreSQL-server variants of the suites are skipped (PGlite variants run).');
}

export interface TestServer {
  engine: Engine;
  /** FHIR base, e.g. http://127.0.0.1:43123/fhir */
  base: string;
  server: RunningServer;
  /** Connection string of this server's own database (postgres engine only). */
  databaseUrl?: string;
  close(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.DATABASE_URL!;
  const name = `carebridge_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  return {
    url: withDatabase(admin, name),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startTestServer(engine: Engine, env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = engine === 'pglite' ? mkdtempSync(join(tmpdir(), 'carebridge-test-')) : undefined;
  const database = engine === 'postgres' ? await createTestDatabase() : undefined;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    MLLP_PORT: 'off', // HL7 v2 suites pass MLLP_PORT: '0'
    AUTH_MODE: 'open', // suites about authorization pass AUTH_MODE: 'smart' (test/support/auth.ts)
    ...(dataDir ? { DATA_DIR: dataDir } : { DATABASE_URL: database!.url }),
    ...env,
  });
  const server = await startServer(config, pino({ level: 'silent' }));
  return {
    engine,
    base: `${server.url}/fhir`,
    server,
    databaseUrl: database?.url,
    async close() {
      await server.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    },
  };
}

/**
 * A test server for the enclosing describe block: started before its tests, closed after them.
 * The returned object is filled in by beforeAll, so read its fields inside tests only.
 */
export function useTestServer(engine: Engine, env: Record<string, string> = {}): TestServer {
  const holder = {} as TestServer;
  beforeAll(async () => {
    Object.assign(holder, await startTestServer(engine, env));
  });
  afterAll(async () => {
    await holder.close?.();
  });
  return holder;
}

export const FHIR_JSON = 'application/fhir+json';

/** fetch with FHIR JSON defaults; returns status, headers and the parsed body. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': FHIR_JSON } : {}), accept: FHIR_JSON, ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** GET a search and return the resources of its entries (asserting 200). */
export async function searchResources(base: string, query: string): Promise<any[]> {
  const r = await call(base, 'GET', `/${query}`);
  expect(r.status, query).toBe(200);
  return (r.body.entry ?? []).map((e: { resource: unknown }) => e.resource);
}
