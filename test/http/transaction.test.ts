/** batch and transaction Bundles (bundle.html#transaction) with Synthea data, on each engine. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

const SYNTHEA_DIR = join(import.meta.dirname, '../../fixtures/synthea');

function syntheaBundle(): any {
  const file = readdirSync(SYNTHEA_DIR).find((f) => f.endsWith('.json'))!;
  return JSON.parse(readFileSync(join(SYNTHEA_DIR, file), 'utf8'));
}

/** Every reference string anywhere in a resource. */
function references(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => references(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'reference' && typeof v === 'string') out.push(v);
      else references(v, out);
    }
  }
  return out;
}

describe.each(ENGINES)('Bundles on %s', (engine) => {
  const t = useTestServer(engine);

  /** The newest version in system history that is not the server's own audit record (every request writes an AuditEvent). */
  async function newestUserVersion(): Promise<string | undefined> {
    const entries: any[] = (await call(t.base, 'GET', '/_history?_count=100')).body.entry ?? [];
    const e = entries.find((x) => !/\/(AuditEvent|Provenance)\//.test(x.fullUrl ?? x.request?.url ?? ''));
    return e ? `${e.fullUrl ?? e.request?.url} ${e.response?.etag}` : undefined;
  }

  it('a Synthea patient transaction creates every entry and resolves urn:uuid references', async () => {
    const bundle = syntheaBundle();
    const r = await call(t.base, 'POST', '', bundle);
    expect(r.status).toBe(200);
    expect(r.body.type).toBe('transaction-response');
    expect(r.body.entry).toHaveLength(bundle.entry.length);
    for (const e of r.body.entry) {
      expect(e.response.status).toBe('201 Created');
      expect(e.response.location).toMatch(/^[A-Za-z]+\/[^/]+\/_history\/1$/);
    }
    // Map each fullUrl to the id the server gave it, in entry order.
    const idOf = new Map<string, string>();
    bundle.entry.forEach((e: any, i: number) => idOf.set(e.fullUrl, r.body.entry[i].response.location.replace(/\/_history\/1$/, '')));

    const patientEntry = bundle.entry.findIndex((e: any) => e.resource.resourceType === 'Patient');
    const patientRef = idOf.get(bundle.entry[patientEntry].fullUrl)!;
    // Every stored resource's references point at the new ids (never at urn:uuid).
    let checked = 0;
    for (const [i, e] of bundle.entry.entries()) {
      const stored = await call(t.base, 'GET', `/${r.body.entry[i].response.location.replace(/\/_history\/1$/, '')}`);
      expect(stored.status).toBe(200);
      const expected = references(e.resource).map((ref) => idOf.get(ref) ?? ref);
      expect(references(stored.body)).toEqual(expected);
      checked += expected.length;
      if (i > 40) break;
    }
    expect(checked).toBeGreaterThan(20);
    const obs = bundle.entry.find((e: any) => e.resource.resourceType === 'Observation');
    const storedObs = await call(t.base, 'GET', `/${idOf.get(obs.fullUrl)}`);
    expect(storedObs.body.subject.reference).toBe(patientRef);
  });

  it('a failing entry rolls the whole transaction back and names the entry', async () => {
    const bundle = syntheaBundle();
    const before = await newestUserVersion();
    expect(before).toBeDefined();
    const marker = `rollback-${Date.now()}`;
    const broken = structuredClone(bundle);
    broken.entry[0].resource.identifier = [{ system: 'urn:test', value: marker }];
    broken.entry[5].resource.status = 'not-a-status';
    const r = await call(t.base, 'POST', '', broken);
    expect(r.status).toBe(400);
    expect(r.body.resourceType).toBe('OperationOutcome');
    expect(r.body.issue[0].diagnostics).toContain('Bundle.entry[5]');
    expect(r.body.issue[0].expression).toContain('Bundle.entry[5].resource');
    const search = await call(t.base, 'GET', `/${broken.entry[0].resource.resourceType}?identifier=urn:test|${marker}`);
    expect(search.body.total ?? search.body.entry?.length ?? 0).toBe(0);
    const after = await newestUserVersion();
    expect(after).toBe(before);
  });

  it('processes DELETE, POST, PUT, GET in the spec order and rewrites conditional references', async () => {
    const org = await call(t.base, 'POST', '/Organization', { resourceType: 'Organization', name: 'Lab', identifier: [{ system: 'urn:org', value: 'lab-1' }] });
    const doomed = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Doomed' }] });
    const r = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: `Patient/${doomed.body.id}` } },
        { fullUrl: 'urn:uuid:4f6a1c2e-1111-4222-8333-444455556666', resource: { resourceType: 'Patient', managingOrganization: { reference: 'Organization?identifier=urn:org|lab-1' } }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `Patient/${doomed.body.id}` } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:4f6a1c2e-1111-4222-8333-444455556666' } }, request: { method: 'PUT', url: 'Observation/obs-in-tx' } },
      ],
    }, { prefer: 'return=representation' });
    expect(r.status).toBe(200);
    // GET runs after DELETE, so it sees the deletion.
    expect(r.body.entry[0].response.status).toMatch(/^410/);
    expect(r.body.entry[1].response.status).toBe('201 Created');
    expect(r.body.entry[1].resource.managingOrganization.reference).toBe(`Organization/${org.body.id}`);
    expect(r.body.entry[2].response.status).toMatch(/^204/);
    const newPatient = r.body.entry[1].resource.id;
    expect(r.body.entry[3].resource.subject.reference).toBe(`Patient/${newPatient}`);
  });

  it('fails a transaction with an unresolvable reference or two entries on one resource', async () => {
    const unresolved = await call(t.base, 'POST', '', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:00000000-0000-4000-8000-000000000000' } }, request: { method: 'POST', url: 'Observation' } }],
    });
    expect(unresolved.status).toBe(400);
    const noMatch = await call(t.base, 'POST', '', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient?identifier=urn:none|nobody' } }, request: { method: 'POST', url: 'Observation' } }],
    });
    expect(noMatch.status).toBe(412);
    const twice = await call(t.base, 'POST', '', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'dup-1' }, request: { method: 'PUT', url: 'Patient/dup-1' } },
        { request: { method: 'DELETE', url: 'Patient/dup-1' } },
      ],
    });
    expect(twice.status).toBe(400);
    expect((await call(t.base, 'GET', '/Patient/dup-1')).status).toBe(404);
    const stale = await call(t.base, 'POST', '', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'tx-new-1' }, request: { method: 'PUT', url: 'Patient/tx-new-1' } },
        { resource: { resourceType: 'Patient', id: 'tx-new-2' }, request: { method: 'PUT', url: 'Patient/tx-new-2', ifMatch: 'W/"9"' } },
      ],
    });
    expect(stale.status).toBe(412);
    expect((await call(t.base, 'GET', '/Patient/tx-new-1')).status).toBe(404);
    expect((await call(t.base, 'POST', '', { resourceType: 'Bundle', type: 'collection' })).status).toBe(400);
    const badRequests = [{ request: { method: 42, url: 'Patient' } }, { request: { method: 'GET', url: 7 } }, { request: 'GET Patient' }];
    for (const entry of [[null], 'x', [[]], [42], ...badRequests.map((e) => [e])]) {
      const malformed = await call(t.base, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry });
      expect(malformed.status).toBe(400);
      expect(malformed.body.resourceType).toBe('OperationOutcome');
    }
    expect((await call(t.base, 'POST', '', { resourceType: 'Patient' })).status).toBe(400);
  });

  it('conditional create inside a transaction reuses the existing resource', async () => {
    const entry = {
      fullUrl: 'urn:uuid:7b0e4a52-2222-4333-8444-555566667777',
      resource: { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: 'tx-cc-1' }] },
      request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:mrn|tx-cc-1' },
    };
    const obs = { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: entry.fullUrl } }, request: { method: 'POST', url: 'Observation' } };
    const first = await call(t.base, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [entry, obs] });
    expect(first.body.entry[0].response.status).toBe('201 Created');
    const second = await call(t.base, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [entry, obs] }, { prefer: 'return=representation' });
    expect(second.body.entry[0].response.status).toBe('200 OK');
    expect(second.body.entry[0].response.location).toBe(first.body.entry[0].response.location);
    expect(second.body.entry[1].resource.subject.reference).toBe(first.body.entry[0].response.location.replace(/\/_history\/1$/, ''));
  });

  it('batch entries succeed or fail independently', async () => {
    const r = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Batch' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'banana' }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/not-there' } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.type).toBe('batch-response');
    expect(r.body.entry[0].response.status).toBe('201 Created');
    expect(r.body.entry[1].response.status).toMatch(/^400/);
    expect(r.body.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(r.body.entry[2].response.status).toMatch(/^404/);
    const created = r.body.entry[0].response.location.replace(/\/_history\/1$/, '');
    expect((await call(t.base, 'GET', `/${created}`)).status).toBe(200);
  });
});
