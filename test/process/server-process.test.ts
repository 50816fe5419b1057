/**
 * The server as users run it: `src/main.ts` in its own process. Graceful shutdown lets in-flight
 * requests finish; in server mode (DATABASE_URL) the primary runs WORKERS worker processes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/server.js';

const ROOT = join(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startProcess(env: Record<string, string>): Promise<{ child: ChildProcess; origin: string; exited: Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', MLLP_PORT: 'off', AUTH_MODE: 'open', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`${origin}/readyz`)).ok) return { child, origin, exited };
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not become ready:\n${output}`);
}

const syntheaBundle = () => {
  const dir = join(ROOT, 'fixtures/synthea');
  return readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!), 'utf8');
};

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('server process', () => {
  it('SIGTERM drains an in-flight transaction, then exits 0 (embedded store)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-proc-'));
    dirs.push(dir);
    const { child, origin, exited } = await startProcess({ DATA_DIR: dir });
    const inflight = fetch(`${origin}/fhir`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: syntheaBundle() });
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await exited).toBe(0);
  });

  it.skipIf(!process.env.DATABASE_URL)('server mode runs WORKERS worker processes on one port', async () => {
    const db = await createTestDatabase();
    const { child, origin, exited } = await startProcess({ DATABASE_URL: db.url, WORKERS: '2' });
    try {
      const workers = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).trim().split(/\s+/);
      expect(workers).toHaveLength(2);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => fetch(`${origin}/fhir/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Patient"}' })),
      );
      expect(results.every((r) => r.status === 201)).toBe(true);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await db.drop();
    }
  });
});
