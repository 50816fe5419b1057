/** scripts/tools/reindex.ts as users run it: its own process, on the store the server uses. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { call, createTestDatabase, ENGINES } from '../support/server.js';

const ROOT = join(import.meta.dirname, '../..');
const EXT = 'http://example.org/fhir/StructureDefinition/pet-name';

function runCli(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/tools/reindex.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'silent', AUTH_MODE: 'open', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

describe.each(ENGINES)('reindex CLI on %s', (engine) => {
  it('reindexes existing resources with a new SearchParameter, printing progress, and exits 0', async () => {
    let env: Record<string, string>;
    if (engine === 'pglite') {
      const dir = mkdtempSync(join(tmpdir(), 'carebridge-reindex-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      env = { DATA_DIR: dir };
    } else {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      env = { DATABASE_URL: database.url };
    }
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', MLLP_PORT: 'off', AUTH_MODE: 'open', ...env });
    const start = async () => {
      const server = await startServer(config, pino({ level: 'silent' }));
      return { server, base: `${server.url}/fhir` };
    };

    let { server, base } = await start();
    const pets = ['Rex', 'Tom', 'Felix'];
    const ids: string[] = [];
    for (const name of pets) ids.push((await call(base, 'POST', '/Patient', { resourceType: 'Patient', extension: [{ url: EXT, valueString: name }] })).body.id);
    await call(base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    const sp = await call(base, 'POST', '/SearchParameter', {
      resourceType: 'SearchParameter',
      url: 'http://example.org/fhir/SearchParameter/pet-name',
      name: 'PetName',
      status: 'active',
      description: 'pet name',
      code: 'pet-name',
      base: ['Patient'],
      type: 'string',
      expression: `Patient.extension.where(url='${EXT}').value`,
    });
    expect(sp.status).toBe(201);
    expect(((await call(base, 'GET', '/Patient?pet-name=rex')).body.entry ?? []).filter((e: any) => e.search.mode === 'match')).toHaveLength(0);
    if (engine === 'pglite') await server.close(); // the embedded store is locked by the server

    const run = runCli(['--type', 'Patient', '--batch', '2'], env);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^reindex [0-9a-f-]{36}: tenant default, Patient, batches of 2 \((pglite|postgres)\)$/);
    expect(lines).toContainEqual(expect.stringMatching(/: running 2\/3 \(66\.7%\) [\d.]+\/s$/));
    expect(lines.at(-1)).toMatch(/: completed 3\/3 \(100\.0%\) [\d.]+\/s$/);

    if (engine === 'pglite') ({ server, base } = await start());
    const found = await call(base, 'GET', '/Patient?pet-name=rex');
    expect(found.body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id)).toEqual([ids[0]]);
    await server.close();
  }, 180_000);
});

describe('reindex CLI arguments', () => {
  it('rejects unknown types and arguments with exit status 2', () => {
    const bad = runCli(['--type', 'Bogus'], { DATA_DIR: '/nonexistent-never-opened' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/'Bogus' is not an R4 resource type/);
    expect(runCli(['--frobnicate'], { DATA_DIR: '/nonexistent-never-opened' }).status).toBe(2);
  });
});
