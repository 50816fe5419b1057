/**
 * AuditEvent per request and Provenance per write, through HTTP on each engine: what each
 * interaction records, that failures record a failure and nothing claiming success, and that
 * the API cannot create, change or delete AuditEvents (directly or in Bundles).
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

const RESTFUL = 'http://hl7.org/fhir/restful-interaction';

describe.each(ENGINES)('audit trail on %s', (engine) => {
  const t = useTestServer(engine);

  /** AuditEvents naming a resource (any version), oldest first. */
  async function auditsOf(ref: string, extra = ''): Promise<any[]> {
    const r = await call(t.base, 'GET', `/AuditEvent?entity=${encodeURIComponent(ref)}&_count=100&_sort=date${extra}`);
    expect(r.status).toBe(200);
    return (r.body.entry ?? []).map((e: any) => e.resource);
  }
  const subtype = (a: any) => a.subtype.find((c: any) => c.system === RESTFUL)?.code;
  const entityRefs = (a: any) => (a.entity ?? []).map((e: any) => e.what?.reference).filter(Boolean);
  async function total(query: string): Promise<number> {
    const r = await call(t.base, 'GET', `/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
    expect(r.status).toBe(200);
    return r.body.total;
  }
  async function newPatient(family: string): Promise<string> {
    const r = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family }] });
    expect(r.status).toBe(201);
    return r.body.id;
  }

  it('the CapabilityStatement offers AuditEvent for reading and searching only', async () => {
    const meta = await call(t.base, 'GET', '/metadata');
    const codes = (type: string) => meta.body.rest[0].resource.find((r: { type: string }) => r.type === type).interaction.map((i: { code: string }) => i.code);
    expect(codes('AuditEvent')).toEqual(expect.arrayContaining(['read', 'vread', 'search-type']));
    for (const write of ['create', 'update', 'patch', 'delete']) expect(codes('AuditEvent')).not.toContain(write);
    expect(codes('Patient')).toEqual(expect.arrayContaining(['create', 'update', 'patch', 'delete']));
  });

  it('create, read, update, delete: one AuditEvent each (BALP shape) and a Provenance per write', async () => {
    const id = await newPatient('Audited');
    expect((await call(t.base, 'GET', `/Patient/${id}`)).status).toBe(200);
    expect((await call(t.base, 'PUT', `/Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: 'Audited2' }] })).status).toBe(200);
    expect((await call(t.base, 'DELETE', `/Patient/${id}`)).status).toBe(204);

    const audits = await auditsOf(`Patient/${id}`);
    expect(audits.map((a) => [subtype(a), a.action, a.outcome])).toEqual([
      ['create', 'C', '0'],
      ['read', 'R', '0'],
      ['update', 'U', '0'],
      ['delete', 'D', '0'],
    ]);
    const [created, read] = audits;
    expect(created.type).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' });
    expect(entityRefs(created)).toContain(`Patient/${id}/_history/1`);
    expect(entityRefs(read)).toContain(`Patient/${id}/_history/1`);
    // The patient entity (BALP: type Person, role Patient), who (anonymous: auth is off) and from where.
    expect(read.entity.some((e: any) => e.what?.reference === `Patient/${id}` && e.role?.code === '1')).toBe(true);
    const requestor = read.agent.find((a: any) => a.requestor);
    expect(requestor.who.display).toMatch(/^anonymous/);
    expect(requestor.network.address).toMatch(/127\.0\.0\.1|::1/);
    expect(read.source.observer.display).toBe('CareBridge FHIR server');
    expect(read.source.site).toBe('default');

    // Provenance: one per write, the written version as target, the DataOperation activity.
    const provenances = (await call(t.base, 'GET', `/Provenance?target=Patient/${id}&_count=10`)).body.entry.map((e: any) => e.resource);
    const byVersion = new Map(provenances.map((p: any) => [p.target[0].reference, p]));
    expect([...byVersion.keys()].sort()).toEqual([`Patient/${id}/_history/1`, `Patient/${id}/_history/2`, `Patient/${id}/_history/3`]);
    expect((byVersion.get(`Patient/${id}/_history/1`) as any).activity.coding[0].code).toBe('CREATE');
    expect((byVersion.get(`Patient/${id}/_history/2`) as any).activity.coding[0].code).toBe('UPDATE');
    expect((byVersion.get(`Patient/${id}/_history/3`) as any).activity.coding[0].code).toBe('DELETE');
    // The write's AuditEvent names its Provenance (both committed in the write's transaction).
    const provenanceOfCreate = (byVersion.get(`Patient/${id}/_history/1`) as any).id;
    expect(entityRefs(created)).toContain(`Provenance/${provenanceOfCreate}/_history/1`);
    // Our records are valid R4.
    for (const resource of [read, byVersion.get(`Patient/${id}/_history/2`)]) {
      const v = await call(t.base, 'POST', `/${(resource as any).resourceType}/$validate`, resource);
      expect(v.body.issue.filter((i: any) => i.severity === 'error'), JSON.stringify(v.body)).toEqual([]);
    }
  });

  it('search, history, vread, operation and a 404 read are audited', async () => {
    const id = await newPatient('Searched');
    await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${id}` } });
    expect((await call(t.base, 'GET', `/Observation?subject=Patient/${id}`)).status).toBe(200);
    expect((await call(t.base, 'GET', `/Patient/${id}/_history`)).status).toBe(200);
    expect((await call(t.base, 'GET', `/Patient/${id}/_history/1`)).status).toBe(200);
    expect((await call(t.base, 'POST', `/Patient/${id}/$validate`, { resourceType: 'Patient', id, name: [{ family: 'V' }] })).status).toBe(200);
    const audits = await auditsOf(`Patient/${id}`);
    const codes = audits.map((a) => subtype(a));
    expect(codes).toEqual(expect.arrayContaining(['create', 'search-type', 'history-instance', 'vread', 'operation']));
    const search = audits.find((a) => subtype(a) === 'search-type');
    expect(search.action).toBe('E');
    const query = search.entity.find((e: any) => e.role?.code === '24');
    expect(Buffer.from(query.query, 'base64').toString()).toBe(`subject=Patient/${id}`);
    expect(audits.find((a) => subtype(a) === 'operation').entity.some((e: any) => e.name === '$validate')).toBe(true);
    // The search by patient is also found through the patient search parameter.
    const byPatient = (await call(t.base, 'GET', `/AuditEvent?patient=Patient/${id}&subtype=${RESTFUL}|search-type`)).body;
    expect(byPatient.entry?.length ?? 0).toBeGreaterThanOrEqual(1);

    expect((await call(t.base, 'GET', '/Patient/no-such-patient')).status).toBe(404);
    const missing = await auditsOf('Patient/no-such-patient');
    expect(missing.map((a) => [subtype(a), a.outcome])).toEqual([['read', '4']]);
    expect(missing[0].outcomeDesc).toMatch(/not known|not found/i);
  });

  it('a transaction: one AuditEvent with every entity and one Provenance with every target', async () => {
    const r = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111', resource: { resourceType: 'Patient', name: [{ family: 'Tx' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'tx' }, subject: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    expect(r.status).toBe(200);
    const [patient, observation] = r.body.entry.map((e: any) => e.response.location as string);
    const audits = await auditsOf(patient.replace(/\/_history\/1$/, ''));
    expect(audits.map((a) => subtype(a))).toEqual(['transaction']);
    expect(entityRefs(audits[0])).toEqual(expect.arrayContaining([patient, observation]));
    const provenance = (await call(t.base, 'GET', `/Provenance?target=${patient.replace(/\/_history\/1$/, '')}`)).body.entry.map((e: any) => e.resource);
    expect(provenance).toHaveLength(1);
    expect(provenance[0].target.map((x: any) => x.reference).sort()).toEqual([patient, observation].sort());
  });

  it('a batch: each entry is audited on its own, a failed entry as a failure without Provenance', async () => {
    const provenanceBefore = await total('Provenance');
    const failedBefore = await total(`AuditEvent?subtype=${RESTFUL}|batch&outcome=4`);
    const r = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Batched' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'banana' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(r.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '400 Bad Request']);
    const created = r.body.entry[0].response.location as string;
    const audits = await auditsOf(created.replace(/\/_history\/1$/, ''));
    expect(audits.map((a) => [subtype(a), a.action, a.outcome])).toEqual([['batch', 'E', '0']]);
    expect(entityRefs(audits[0])).toContain(created);
    expect(await total('Provenance')).toBe(provenanceBefore + 1);
    expect(await total(`AuditEvent?subtype=${RESTFUL}|batch&outcome=4`)).toBe(failedBefore + 1);
  });

  it('failed writes record a failure AuditEvent and no success AuditEvent or Provenance', async () => {
    const before = {
      provenance: await total('Provenance'),
      createOk: await total(`AuditEvent?subtype=${RESTFUL}|create&outcome=0`),
      createFailed: await total(`AuditEvent?subtype=${RESTFUL}|create&outcome=4`),
      txOk: await total(`AuditEvent?subtype=${RESTFUL}|transaction&outcome=0`),
      txFailed: await total(`AuditEvent?subtype=${RESTFUL}|transaction&outcome=4`),
    };
    const invalid = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', gender: 'banana' });
    expect(invalid.status).toBe(400);
    const tx = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'RolledBack' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'not-a-status', code: { text: 'x' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    expect(tx.status).toBe(400);
    expect(await total('Patient?family=RolledBack')).toBe(0);
    expect(await total('Provenance')).toBe(before.provenance);
    expect(await total(`AuditEvent?subtype=${RESTFUL}|create&outcome=0`)).toBe(before.createOk);
    expect(await total(`AuditEvent?subtype=${RESTFUL}|transaction&outcome=0`)).toBe(before.txOk);
    expect(await total(`AuditEvent?subtype=${RESTFUL}|create&outcome=4`)).toBe(before.createFailed + 1);
    expect(await total(`AuditEvent?subtype=${RESTFUL}|transaction&outcome=4`)).toBe(before.txFailed + 1);
  });

  it('AuditEvents cannot be created, updated, patched or deleted through the API, nor in Bundles', async () => {
    const id = await newPatient('Guarded');
    const [audit] = await auditsOf(`Patient/${id}`);
    const before = await total('AuditEvent');
    const copy = { ...audit, id: undefined, meta: undefined };
    const attempts = [
      await call(t.base, 'POST', '/AuditEvent', copy),
      await call(t.base, 'PUT', `/AuditEvent/${audit.id}`, { ...audit, outcome: '8' }),
      await call(t.base, 'PUT', `/AuditEvent?_id=${audit.id}`, { ...audit, outcome: '8' }),
      await call(t.base, 'PATCH', `/AuditEvent/${audit.id}`, [{ op: 'replace', path: '/outcome', value: '8' }], { 'content-type': 'application/json-patch+json' }),
      await call(t.base, 'DELETE', `/AuditEvent/${audit.id}`),
      await call(t.base, 'DELETE', `/AuditEvent?_id=${audit.id}`),
    ];
    for (const a of attempts) {
      expect(a.status).toBe(405);
      expect(a.body.resourceType).toBe('OperationOutcome');
    }
    const inTransaction = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'TxGuard' }] }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `AuditEvent/${audit.id}` } },
      ],
    });
    expect(inTransaction.status).toBe(405);
    expect(inTransaction.body.resourceType).toBe('OperationOutcome');
    expect(await total('Patient?family=TxGuard')).toBe(0);
    const createInTransaction = await call(t.base, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: copy, request: { method: 'POST', url: 'AuditEvent' } }] });
    expect(createInTransaction.status).toBe(405);
    const batch = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { ...audit, outcome: '8' }, request: { method: 'PUT', url: `AuditEvent/${audit.id}` } },
        { resource: copy, request: { method: 'POST', url: 'AuditEvent' } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.entry.map((e: any) => e.response.status)).toEqual(['405 Method Not Allowed', '405 Method Not Allowed']);
    // Nothing changed: the AuditEvent is still version 1 with its outcome, and no AuditEvent was
    // added except the server's own records of these requests (none of them a success).
    const still = await call(t.base, 'GET', `/AuditEvent/${audit.id}`);
    expect(still.body.meta.versionId).toBe('1');
    expect(still.body.outcome).toBe('0');
    const added = (await call(t.base, 'GET', `/AuditEvent?_lastUpdated=gt${encodeURIComponent(audit.meta.lastUpdated)}&outcome=0&subtype=${RESTFUL}|create,${RESTFUL}|update,${RESTFUL}|patch,${RESTFUL}|delete,${RESTFUL}|transaction,${RESTFUL}|batch&_count=100`)).body;
    expect((added.entry ?? []).filter((e: any) => entityRefs(e.resource).some((r: string) => r.startsWith('AuditEvent/')))).toEqual([]);
    expect(await total('AuditEvent')).toBeGreaterThan(before);
  });
});
