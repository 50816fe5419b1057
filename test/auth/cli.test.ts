/**
 * scripts/tools/auth.ts: a backend client registered from the shell (RS384 key in a JWKS file)
 * gets a token from a server started on the same store afterwards; bad input exits 1 or 2.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { AUTH_ENV, backendToken, bearer } from '../support/auth.js';
import { call, startTestServer } from '../support/server.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'carebridge-auth-cli-'));
const dataDir = join(dir, 'data');

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('npx', ['tsx', 'scripts/tools/auth.ts', ...args], { env: { ...process.env, DATABASE_URL: '', DATA_DIR: dataDir, ...env }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('auth CLI (pglite)', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('create-client (backend, RS384 JWKS file) → the server issues it a token; bad input is refused', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS384');
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'cli-key', alg: 'RS384' };
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [publicJwk] }));
    const created = await cli(['create-client', '--name', 'Lab feed', '--kind', 'backend', '--scope', 'system/Observation.rs', '--jwks-file', join(dir, 'jwks.json'), '--client-id', 'lab-feed']);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ client_id: 'lab-feed', kind: 'backend' });

    const refused = await cli(['create-client', '--name', 'x', '--kind', 'public', '--scope', 'patient/*.rs']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/redirectUris/); // a public client needs them
    expect((await cli(['create-user', '--username', 'someone', '--fhir-user', 'Practitioner/x'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);

    const t = await startTestServer('pglite', { ...AUTH_ENV, DATA_DIR: dataDir });
    try {
      const token = await backendToken(t.base, { clientId: 'lab-feed', privateKey, publicJwk }, 'system/Observation.rs');
      expect((await call(t.base, 'GET', '/Observation', undefined, bearer(token.access_token))).status).toBe(200);
      expect((await call(t.base, 'GET', '/Patient', undefined, bearer(token.access_token))).status).toBe(403);
    } finally {
      await t.close();
    }
  }, 120_000);
});
