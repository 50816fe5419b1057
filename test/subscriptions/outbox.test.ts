/** The transactional outbox: one change_event per committed version, none for a rolled-back write. */
import type { Patient } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { Writer } from '../../src/interactions/writer.js';
import { Tenants } from '../../src/store/tenants.js';
import { call, ENGINES, useTestServer } from '../support/server.js';

interface EventRow {
  seq: string;
  resource_type: string;
  id: string;
  version_id: number;
  action: string;
}

describe.each(ENGINES)('change_event outbox on %s', (engine) => {
  const t = useTestServer(engine);

  async function eventsOf(id: string): Promise<EventRow[]> {
    const r = await t.server.db.query<EventRow>(
      'SELECT seq, resource_type, id, version_id, action FROM tenant_default.change_event WHERE id = $1 ORDER BY seq',
      [id],
    );
    return r.rows;
  }

  async function eventCount(): Promise<number> {
    const r = await t.server.db.query<{ n: string }>('SELECT count(*) AS n FROM tenant_default.change_event');
    return Number(r.rows[0]!.n);
  }

  it('records create, update and delete, one row per version', async () => {
    const created = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Outbox' }] });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await call(t.base, 'PUT', `/Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: 'Outbox2' }] })).status).toBe(200);
    expect((await call(t.base, 'DELETE', `/Patient/${id}`)).status).toBe(204);
    const events = await eventsOf(id);
    expect(events.map((e) => [e.resource_type, e.version_id, e.action])).toEqual([
      ['Patient', 1, 'create'],
      ['Patient', 2, 'update'],
      ['Patient', 3, 'delete'],
    ]);
  });

  it('a committed transaction Bundle (batched creates) leaves exactly one event per version', async () => {
    const before = await eventCount();
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: Array.from({ length: 20 }, (_, i) => ({
        fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        resource: { resourceType: 'Patient', name: [{ family: `Batch${i}` }] },
        request: { method: 'POST', url: 'Patient' },
      })),
    };
    const r = await call(t.base, 'POST', '', bundle);
    expect(r.status).toBe(200);
    expect(await eventCount()).toBe(before + 20);
    const ids = r.body.entry.map((e: any) => String(e.response.location).split('/')[1]);
    for (const id of ids.slice(0, 3)) expect((await eventsOf(id)).map((e) => e.action)).toEqual(['create']);
  });

  it('a failed transaction Bundle leaves no events', async () => {
    const before = await eventCount();
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Doomed' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'not-a-code' }, request: { method: 'POST', url: 'Patient' } },
      ],
    };
    const r = await call(t.base, 'POST', '', bundle);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(await eventCount()).toBe(before);
  });

  it('a Writer transaction rolled back after writing leaves no events', async () => {
    const before = await eventCount();
    const store = await new Tenants(t.server.db).store();
    await expect(
      t.server.db.transaction(async (tx) => {
        const w = new Writer({ store, baseUrl: 'http://x/fhir' }, tx);
        await w.create({ resourceType: 'Patient', name: [{ family: 'Rollback' }] } as Patient);
        const [a, b] = [w.prepareCreate({ resourceType: 'Patient' }), w.prepareCreate({ resourceType: 'Patient' })];
        await w.insertPrepared([a, b]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await eventCount()).toBe(before);
  });
});
