/** The embedded store: persisted under DATA_DIR, locked against a second process, migrations idempotent. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { PgliteDatabase } from '../../src/store/engines.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { migrations } from '../../src/store/schema.js';
import { Tenants } from '../../src/store/tenants.js';
import { createResource } from '../../src/interactions/create.js';
import { readResource } from '../../src/interactions/read.js';
import { call } from '../support/server.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'carebridge-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const config = (dataDir: string) => loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent', MLLP_PORT: 'off', AUTH_MODE: 'open' });

describe('embedded store (PGlite)', () => {
  it('keeps resources across a restart', async () => {
    const dir = tempDir();
    const a = await startServer(config(dir), pino({ level: 'silent' }));
    const created = await call(`${a.url}/fhir`, 'POST', '/Patient', { resourceType: 'Patient', gender: 'male' });
    await a.close();
    const b = await startServer(config(dir), pino({ level: 'silent' }));
    try {
      const read = await call(`${b.url}/fhir`, 'GET', `/Patient/${created.body.id}`);
      expect(read.status).toBe(200);
      expect(read.body.gender).toBe('male');
    } finally {
      await b.close();
    }
  });

  it('a second open of the same directory fails with a clear message, in this and another process', async () => {
    const dir = tempDir();
    const db = await PgliteDatabase.open(dir);
    try {
      await expect(PgliteDatabase.open(dir)).rejects.toThrow(/already open/);
      const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
        const { PgliteDatabase } = await import(${JSON.stringify(new URL('../../src/store/engines.ts', import.meta.url).pathname)});
        try { await PgliteDatabase.open(${JSON.stringify(dir)}); console.log('OPENED'); } catch (e) { console.log('REFUSED: ' + e.message); }
      `], { encoding: 'utf8', timeout: 60_000 });
      expect(child.stdout).toMatch(/REFUSED: .*in use by another CareBridge process \(pid \d+\)/);
    } finally {
      await db.close();
    }
    // Released on close: it opens again.
    const again = await PgliteDatabase.open(dir);
    await again.close();
  });

  it('migrations are idempotent', async () => {
    const db = await PgliteDatabase.open();
    try {
      const store = new ResourceStore(db, 'tenant_idem');
      await store.migrate();
      await store.migrate();
      const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tenant_idem.schema_migrations');
      expect(r.rows[0]!.n).toBe(migrations('tenant_idem').length);
    } finally {
      await db.close();
    }
  });

  it('tenants are isolated in their own schemas', async () => {
    const db = await PgliteDatabase.open();
    try {
      const tenants = new Tenants(db);
      const [a, b] = [await tenants.store('clinic_a'), await tenants.store('clinic_b')];
      const ctxA = { store: a, baseUrl: 'http://x/fhir' };
      const created = await createResource(ctxA, 'Patient', { resourceType: 'Patient', gender: 'female' });
      const id = (created.body as { id: string }).id;
      expect((await readResource(ctxA, 'Patient', id)).status).toBe(200);
      await expect(readResource({ store: b, baseUrl: 'http://x/fhir' }, 'Patient', id)).rejects.toMatchObject({ status: 404 });
      const schemas = await db.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%' ORDER BY 1");
      expect(schemas.rows.map((r) => r.nspname)).toEqual(['tenant_clinic_a', 'tenant_clinic_b']);
    } finally {
      await db.close();
    }
  });
});
