/**
 * First start with authorization on: the administrator client's secret is printed once, with the
 * curl command that gets a token, and works; a second start on the same store prints nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { call, startTestServer } from '../support/server.js';
import { bearer, tokenRequest } from '../support/auth.js';

describe('bootstrap administrator (pglite)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'carebridge-bootstrap-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  async function startCapturing(): Promise<{ printed: string; close(): Promise<void>; base: string }> {
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (chunks.push(String(chunk)), true));
    try {
      const t = await startTestServer('pglite', { AUTH_MODE: 'smart', DATA_DIR: dataDir });
      return { printed: chunks.join(''), close: () => t.close(), base: t.base };
    } finally {
      spy.mockRestore();
    }
  }

  it('prints the secret and the token command once; the secret works', async () => {
    const first = await startCapturing();
    try {
      const secret = /client_secret: (\S+)/.exec(first.printed)?.[1];
      expect(secret, first.printed).toBeTruthy();
      expect(first.printed).toContain(`curl -s -u 'carebridge-admin:${secret}' -d grant_type=client_credentials`);
      const r = await tokenRequest(first.base, { grant_type: 'client_credentials', scope: 'admin system/*.cruds' }, { authorization: `Basic ${Buffer.from(`carebridge-admin:${secret}`).toString('base64')}` });
      expect(r.status, r.text).toBe(200);
      expect((await call(first.base, 'GET', '/Patient', undefined, bearer(r.body.access_token))).status).toBe(200);
    } finally {
      await first.close();
    }
    const second = await startCapturing();
    try {
      expect(second.printed).not.toContain('client_secret');
    } finally {
      await second.close();
    }
  }, 60_000);
});
