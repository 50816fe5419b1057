/** REST interactions and headers through HTTP (hl7.org/fhir/R4/http.html), on each engine. */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, startTestServer, useTestServer } from '../support/server.js';

const patient = (family: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family, given: ['Ada'] }],
  gender: 'female',
  birthDate: '1970-01-02',
  ...extra,
});

describe.each(ENGINES)('REST interactions on %s', (engine) => {
  const t = useTestServer(engine);

  it('create assigns id and meta, returns 201 with Location, ETag and Last-Modified', async () => {
    const r = await call(t.base, 'POST', '/Patient', patient('Lovelace', { id: 'client-chosen' }));
    expect(r.status).toBe(201);
    expect(r.body.resourceType).toBe('Patient');
    expect(r.body.id).not.toBe('client-chosen'); // http.html#create: the server ignores a given id
    expect(r.body.meta.versionId).toBe('1');
    expect(r.headers.get('etag')).toBe('W/"1"');
    expect(r.headers.get('location')).toBe(`${t.base}/Patient/${r.body.id}/_history/1`);
    expect(new Date(r.headers.get('last-modified')!).getTime()).toBe(Math.floor(Date.parse(r.body.meta.lastUpdated) / 1000) * 1000);
    expect(r.headers.get('content-type')).toContain('application/fhir+json');
  });

  it('read, vread, update, history and delete keep every version', async () => {
    const created = await call(t.base, 'POST', '/Patient', patient('Hopper'));
    const id = created.body.id;
    const read = await call(t.base, 'GET', `/Patient/${id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
    expect(read.headers.get('etag')).toBe('W/"1"');

    const updated = await call(t.base, 'PUT', `/Patient/${id}`, { ...created.body, gender: 'other' });
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');
    expect(updated.headers.get('etag')).toBe('W/"2"');
    expect(updated.headers.get('content-location')).toBe(`${t.base}/Patient/${id}/_history/2`);

    const v1 = await call(t.base, 'GET', `/Patient/${id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('female');
    const v2 = await call(t.base, 'GET', `/Patient/${id}/_history/2`);
    expect(v2.body.gender).toBe('other');

    const del = await call(t.base, 'DELETE', `/Patient/${id}`);
    expect(del.status).toBe(204);
    expect(del.headers.get('etag')).toBe('W/"3"');
    const gone = await call(t.base, 'GET', `/Patient/${id}`);
    expect(gone.status).toBe(410);
    expect(gone.body.resourceType).toBe('OperationOutcome');
    // The deleted version is still readable by vread of older versions; the deletion itself is 410.
    expect((await call(t.base, 'GET', `/Patient/${id}/_history/2`)).status).toBe(200);
    expect((await call(t.base, 'GET', `/Patient/${id}/_history/3`)).status).toBe(410);
    expect((await call(t.base, 'GET', `/Patient/${id}/_history/4`)).status).toBe(404);

    const h = await call(t.base, 'GET', `/Patient/${id}/_history`);
    expect(h.status).toBe(200);
    expect(h.body.type).toBe('history');
    expect(h.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"', 'W/"2"', 'W/"1"']);
    expect(h.body.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'PUT', 'POST']);
    expect(h.body.entry[0].resource).toBeUndefined();

    // Deleting again changes nothing (no new version).
    expect((await call(t.base, 'DELETE', `/Patient/${id}`)).status).toBe(204);
    expect((await call(t.base, 'GET', `/Patient/${id}/_history`)).body.entry).toHaveLength(3);
    // Update after delete brings it back as a new version, 201.
    const back = await call(t.base, 'PUT', `/Patient/${id}`, { ...created.body, meta: undefined });
    expect(back.status).toBe(201);
    expect(back.body.meta.versionId).toBe('4');
  });

  it('update-as-create with a client id gives 201 and version 1', async () => {
    const r = await call(t.base, 'PUT', '/Patient/chosen-id-1', { ...patient('Curie'), id: 'chosen-id-1' });
    expect(r.status).toBe(201);
    expect(r.body.id).toBe('chosen-id-1');
    expect(r.headers.get('location')).toBe(`${t.base}/Patient/chosen-id-1/_history/1`);
  });

  it('If-Match: matching version updates, stale version is 412 and writes nothing', async () => {
    const c = await call(t.base, 'POST', '/Patient', patient('Noether'));
    const id = c.body.id;
    const ok = await call(t.base, 'PUT', `/Patient/${id}`, { ...c.body, gender: 'male' }, { 'if-match': 'W/"1"' });
    expect(ok.status).toBe(200);
    const stale = await call(t.base, 'PUT', `/Patient/${id}`, { ...c.body, gender: 'unknown' }, { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    expect((await call(t.base, 'GET', `/Patient/${id}`)).body.gender).toBe('male');
    const staleDelete = await call(t.base, 'DELETE', `/Patient/${id}`, undefined, { 'if-match': 'W/"1"' });
    expect(staleDelete.status).toBe(412);
  });

  it('conditional read: If-None-Match and If-Modified-Since give 304', async () => {
    const c = await call(t.base, 'POST', '/Patient', patient('Meitner'));
    const id = c.body.id;
    expect((await call(t.base, 'GET', `/Patient/${id}`, undefined, { 'if-none-match': 'W/"1"' })).status).toBe(304);
    expect((await call(t.base, 'GET', `/Patient/${id}`, undefined, { 'if-none-match': 'W/"7"' })).status).toBe(200);
    const later = new Date(Date.now() + 60_000).toUTCString();
    const earlier = new Date(Date.now() - 3_600_000).toUTCString();
    expect((await call(t.base, 'GET', `/Patient/${id}`, undefined, { 'if-modified-since': later })).status).toBe(304);
    expect((await call(t.base, 'GET', `/Patient/${id}`, undefined, { 'if-modified-since': earlier })).status).toBe(200);
  });

  it('Prefer: return=minimal and return=OperationOutcome', async () => {
    const minimal = await call(t.base, 'POST', '/Patient', patient('Franklin'), { prefer: 'return=minimal' });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    const oo = await call(t.base, 'POST', '/Patient', patient('Franklin'), { prefer: 'return=OperationOutcome' });
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
    expect(oo.body.issue[0].severity).toBe('information');
  });

  it('conditional create: If-None-Exist returns the existing resource with 200', async () => {
    const body = patient('Germain', { identifier: [{ system: 'urn:mrn', value: 'cc-1' }] });
    const first = await call(t.base, 'POST', '/Patient', body, { 'if-none-exist': 'identifier=urn:mrn|cc-1' });
    expect(first.status).toBe(201);
    const second = await call(t.base, 'POST', '/Patient', body, { 'if-none-exist': 'identifier=urn:mrn|cc-1' });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    await call(t.base, 'POST', '/Patient', body); // a second match, created without a condition
    const multiple = await call(t.base, 'POST', '/Patient', body, { 'if-none-exist': 'identifier=urn:mrn|cc-1' });
    expect(multiple.status).toBe(412);
  });

  it('conditional update: creates when nothing matches, updates one match, 412 on several', async () => {
    const body = patient('Kovalevskaya', { identifier: [{ system: 'urn:mrn', value: 'cu-1' }] });
    const created = await call(t.base, 'PUT', '/Patient?identifier=urn:mrn|cu-1', body);
    expect(created.status).toBe(201);
    const updated = await call(t.base, 'PUT', '/Patient?identifier=urn:mrn|cu-1', { ...body, gender: 'other' });
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');
    const wrongId = await call(t.base, 'PUT', '/Patient?identifier=urn:mrn|cu-1', { ...body, id: 'someone-else' });
    expect(wrongId.status).toBe(400);
    await call(t.base, 'POST', '/Patient', body);
    expect((await call(t.base, 'PUT', '/Patient?identifier=urn:mrn|cu-1', body)).status).toBe(412);
  });

  it('conditional delete: one match deleted, several 412', async () => {
    const body = patient('Somerville', { identifier: [{ system: 'urn:mrn', value: 'cd-1' }] });
    const c = await call(t.base, 'POST', '/Patient', body);
    expect((await call(t.base, 'DELETE', '/Patient?identifier=urn:mrn|cd-1')).status).toBe(204);
    expect((await call(t.base, 'GET', `/Patient/${c.body.id}`)).status).toBe(410);
    expect((await call(t.base, 'DELETE', '/Patient?identifier=urn:mrn|cd-1')).status).toBe(204);
    await call(t.base, 'POST', '/Patient', body);
    await call(t.base, 'POST', '/Patient', body);
    expect((await call(t.base, 'DELETE', '/Patient?identifier=urn:mrn|cd-1')).status).toBe(412);
  });

  it('type and system history with _since, _count paging and _at', async () => {
    const before = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call(t.base, 'POST', '/Practitioner', { resourceType: 'Practitioner', name: [{ family: `P${i}` }] })).body.id);
    const between = (await call(t.base, 'GET', `/Practitioner/${ids[0]}`)).body.meta.lastUpdated;
    await call(t.base, 'PUT', `/Practitioner/${ids[0]}`, { resourceType: 'Practitioner', id: ids[0], name: [{ family: 'P0-renamed' }] });

    const page1 = await call(t.base, 'GET', `/Practitioner/_history?_since=${encodeURIComponent(before)}&_count=4`);
    expect(page1.status).toBe(200);
    expect(page1.body.entry).toHaveLength(4);
    const next = page1.body.link.find((l: any) => l.relation === 'next').url as string;
    // A write between pages must not shift the pages (keyset paging).
    await call(t.base, 'POST', '/Practitioner', { resourceType: 'Practitioner' });
    const page2 = await call(t.base, 'GET', next.slice(t.base.length));
    expect(page2.body.entry).toHaveLength(2);
    const seen = [...page1.body.entry, ...page2.body.entry].map((e: any) => `${e.resource.id}/${e.resource.meta.versionId}`);
    expect(new Set(seen).size).toBe(6);
    expect(seen.sort()).toEqual([...ids.map((id) => `${id}/1`), `${ids[0]}/2`].sort());

    const at = await call(t.base, 'GET', `/Practitioner/${ids[0]}/_history?_at=${encodeURIComponent(between)}`);
    expect(at.body.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['1']);

    const system = await call(t.base, 'GET', `/_history?_since=${encodeURIComponent(before)}&_count=100`);
    expect(system.body.entry.length).toBeGreaterThanOrEqual(7);
    expect((await call(t.base, 'GET', '/_history?_since=not-a-date')).status).toBe(400);
  });

  it('errors are OperationOutcomes with the spec status codes', async () => {
    const bad = await call(t.base, 'POST', '/Patient', '{"resourceType": "Patient", ');
    expect(bad.status).toBe(400);
    expect(bad.body.resourceType).toBe('OperationOutcome');
    expect(bad.text).not.toMatch(/\n\s+at /); // no stack traces

    expect((await call(t.base, 'GET', '/Bogus/1')).status).toBe(404);
    expect((await call(t.base, 'POST', '/Bogus', { resourceType: 'Bogus' })).status).toBe(404);
    expect((await call(t.base, 'GET', '/Patient/does-not-exist')).status).toBe(404);

    const bogusBody = await call(t.base, 'POST', '/Patient', { resourceType: 'Bogus' });
    expect(bogusBody.status).toBe(400);
    const project = await call(t.base, 'POST', '/Patient', { resourceType: 'Project', name: 'x' });
    expect(project.status).toBe(400);
    expect((await call(t.base, 'POST', '/Project', { resourceType: 'Project', name: 'x' })).status).toBe(404);

    const xml = await call(t.base, 'POST', '/Patient', '<Patient xmlns="http://hl7.org/fhir"/>', { 'content-type': 'application/fhir+xml' });
    expect(xml.status).toBe(415);
    expect(xml.body.resourceType).toBe('OperationOutcome');
    expect((await call(t.base, 'GET', '/metadata', undefined, { accept: 'application/fhir+xml' })).status).toBe(406);

    const invalid = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', gender: 'banana', foo: 1 });
    expect(invalid.status).toBe(400);
    const expressions = invalid.body.issue.flatMap((i: any) => i.expression ?? []);
    expect(expressions).toContain('Patient.gender');
    expect(expressions).toContain('Patient.foo');

    const mismatch = await call(t.base, 'PUT', '/Patient/abc', { ...patient('X'), id: 'xyz' });
    expect(mismatch.status).toBe(400);
    const noId = await call(t.base, 'PUT', '/Patient/abc', patient('X'));
    expect(noId.status).toBe(400);
    expect((await call(t.base, 'GET', '/Patient/abc')).status).toBe(404); // nothing half-written

    const badRef = await call(t.base, 'POST', '/Observation', {
      resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/has space' },
    });
    expect(badRef.status).toBe(400);
    expect(badRef.body.issue.flatMap((i: any) => i.expression ?? [])).toContain('Observation.subject.reference');

    // U+0000 cannot be stored (PostgreSQL text) and is not a FHIR string character: 400, not 500.
    const nul = await call(t.base, 'POST', '/Patient', '{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}');
    expect(nul.status).toBe(400);
    expect(nul.body.resourceType).toBe('OperationOutcome');
    const nulSearch = await call(t.base, 'GET', '/Patient?family=%00x');
    expect(nulSearch.status).toBe(400);
    expect(nulSearch.body.issue[0].expression).toEqual(['family']);

    expect((await call(t.base, 'DELETE', '/Patient')).status).toBe(400); // conditional delete needs a condition
    expect((await call(t.base, 'PATCH', '/Patient/abc', 'x', { 'content-type': 'text/plain' })).status).toBe(415);
  });

  it('a body over the configured limit is 413', async () => {
    const small = await startTestServer('pglite', { MAX_BODY_SIZE: '1kb' });
    try {
      const big = await call(small.base, 'POST', '/Patient', patient('Big', { text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(4000)}</div>` } }));
      expect(big.status).toBe(413);
      expect(big.body.resourceType).toBe('OperationOutcome');
    } finally {
      await small.close();
    }
  });

  it('$validate on type and instance reports issues without writing', async () => {
    const ok = await call(t.base, 'POST', '/Patient/$validate', patient('Valid'));
    expect(ok.status).toBe(200);
    expect(ok.body.issue.every((i: any) => i.severity === 'information')).toBe(true);
    const bad = await call(t.base, 'POST', '/Patient/$validate', { resourceType: 'Patient', gender: 'banana' });
    expect(bad.status).toBe(200);
    expect(bad.body.issue.some((i: any) => i.severity === 'error' && i.expression?.includes('Patient.gender'))).toBe(true);
    const wrapped = await call(t.base, 'POST', '/Patient/some-id/$validate', {
      resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...patient('Valid'), id: 'other-id' } }, { name: 'mode', valueCode: 'update' }],
    });
    expect(wrapped.body.issue.some((i: any) => i.severity === 'error')).toBe(true);
    expect((await call(t.base, 'GET', '/Patient/some-id')).status).toBe(404);
  });

  it('CapabilityStatement lists R4 types, interactions and search parameters', async () => {
    const r = await call(t.base, 'GET', '/metadata');
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe('CapabilityStatement');
    expect(r.body.fhirVersion).toBe('4.0.1');
    const types = r.body.rest[0].resource.map((x: any) => x.type);
    expect(types).toContain('Patient');
    expect(types).not.toContain('Project');
    expect(types.length).toBeGreaterThan(140);
    const p = r.body.rest[0].resource.find((x: any) => x.type === 'Patient');
    expect(p.interaction.map((i: any) => i.code).sort()).toEqual(
      ['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread'].sort(),
    );
    expect(p.searchParam.map((s: any) => s.name)).toEqual(expect.arrayContaining(['identifier', 'name', 'birthdate']));
    expect(p.searchInclude).toEqual(expect.arrayContaining(['Patient:general-practitioner', 'Patient:organization']));
    expect(p.searchRevInclude).toEqual(expect.arrayContaining(['Observation:subject', 'Encounter:patient']));
    const obs = r.body.rest[0].resource.find((x: any) => x.type === 'Observation');
    expect(obs.searchParam.find((s: any) => s.name === 'code-value-quantity')?.type).toBe('composite');
    expect(r.body.rest[0].interaction.map((i: any) => i.code).sort()).toEqual(['batch', 'history-system', 'search-system', 'transaction']);
  });

  it('health and readiness probes', async () => {
    const origin = t.base.replace(/\/fhir$/, '');
    expect((await fetch(`${origin}/healthz`)).status).toBe(200);
    const ready = await fetch(`${origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { store: string }).store).toBe(engine);
    expect(ready.headers.get('x-request-id')).toBeTruthy();
  });
});
