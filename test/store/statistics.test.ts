/**
 * Planner statistics are kept by the server itself (src/store/statistics.ts): tables that grew
 * are analyzed without autovacuum (off on the CI server, absent in PGlite). `last_analyze` is set
 * only by an explicit ANALYZE, so it shows the server's own work, not autovacuum's.
 */
import { describe, expect, it } from 'vitest';
import { analyzeDueTables } from '../../src/store/statistics.js';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { until } from '../support/wait.js';

describe.each(ENGINES)('planner statistics (%s)', (engine) => {
  const t = useTestServer(engine);

  const analyzedAt = async (table: string) => {
    const r = await t.server.db.query<{ at: string | null; mods: number }>(
      `SELECT last_analyze AS at, n_mod_since_analyze::int AS mods FROM pg_stat_user_tables WHERE schemaname = 'tenant_default' AND relname = $1`,
      [table],
    );
    return r.rows[0];
  };

  it('analyzes the index tables once enough rows changed, and not again until more do', async () => {
    expect((await analyzedAt('sp_token'))?.at).toBeNull();
    const entry = (i: number) => ({
      request: { method: 'POST', url: 'Patient' },
      resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test:mrn', value: `S-${i}` }], gender: i % 2 ? 'male' : 'female' },
    });
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: Array.from({ length: 800 }, (_, i) => entry(i)) };
    expect((await call(t.base, 'POST', '', bundle)).status).toBe(200);

    // The server's own round (every 5 s) analyzes them; PostgreSQL publishes a connection's
    // counters when it goes idle, up to 10 s later.
    const token = await until(async () => ((await analyzedAt('sp_token'))?.at ? await analyzedAt('sp_token') : undefined), 'sp_token analyzed', 45_000);
    expect(token!.mods).toBeLessThan(800);
    expect((await analyzedAt('resource'))?.at).not.toBeNull();
    // Nothing changed since: nothing is due.
    expect(await analyzeDueTables(t.server.db)).not.toContain('tenant_default.sp_token');
  }, 60_000);
});
