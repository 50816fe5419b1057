/**
 * On a PostgreSQL server the store's fixed statements stay prepared per connection (db.ts
 * QueryOptions.prepared), unless DB_PREPARED_STATEMENTS=off (a transaction-pooling proxy). With
 * one pooled connection, pg_prepared_statements (per session) shows what the server kept.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { call, startTestServer, type TestServer } from '../support/server.js';

const runIt = process.env.DATABASE_URL ? describe : describe.skip;
if (!process.env.DATABASE_URL) console.warn('DATABASE_URL is not set: the prepared-statement suite (PostgreSQL server only) is skipped.');

runIt('prepared store statements (postgres)', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  const preparedAfterWrites = async (env: Record<string, string>) => {
    const t = await startTestServer('postgres', { DB_POOL_SIZE: '1', ...env });
    servers.push(t);
    for (let i = 0; i < 3; i++) {
      const created = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:p', value: `P${i}` }] });
      expect(created.status).toBe(201);
      expect((await call(t.base, 'GET', `/Patient/${created.body.id}`)).status).toBe(200);
    }
    // A search, so that "searches are never prepared" below has one to find.
    expect((await call(t.base, 'GET', '/Patient?identifier=urn:p|P0')).body.total ?? 1).toBeGreaterThan(0);
    const r = await t.server.db.query<{ statement: string }>(`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'cb\\_%'`);
    return r.rows.map((row) => row.statement);
  };

  it('keeps the write statement and the read by id prepared', async () => {
    const statements = await preparedAfterWrites({});
    expect(statements.some((s) => s.includes('INSERT INTO "tenant_default".resource'))).toBe(true);
    expect(statements.some((s) => /FROM "tenant_default"\.resource WHERE resource_type = \$1 AND id = \$2/.test(s))).toBe(true);
    // Searches are never prepared: their shapes are open-ended.
    expect(statements.some((s) => s.includes('EXISTS'))).toBe(false);
  });

  it('prepares nothing with DB_PREPARED_STATEMENTS=off', async () => {
    expect(await preparedAfterWrites({ DB_PREPARED_STATEMENTS: 'off' })).toEqual([]);
  });
});
