/** PATCH with JSON Patch and FHIRPath Patch through HTTP (http.html#patch). */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

const JSON_PATCH = { 'content-type': 'application/json-patch+json' };

describe.each(ENGINES)('PATCH on %s', (engine) => {
  const t = useTestServer(engine);

  const newPatient = async () =>
    (await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', active: true, gender: 'female', identifier: [{ system: 'urn:mrn', value: `p-${Math.random()}` }], name: [{ family: 'Patch', given: ['Ann'] }] })).body;

  it('JSON Patch makes a new version', async () => {
    const p = await newPatient();
    const r = await call(t.base, 'PATCH', `/Patient/${p.id}`, [{ op: 'replace', path: '/gender', value: 'male' }, { op: 'add', path: '/birthDate', value: '1990-05-06' }], JSON_PATCH);
    expect(r.status).toBe(200);
    expect(r.body.gender).toBe('male');
    expect(r.body.birthDate).toBe('1990-05-06');
    expect(r.body.meta.versionId).toBe('2');
    expect(r.headers.get('etag')).toBe('W/"2"');
  });

  it('FHIRPath Patch (Parameters) replaces and deletes', async () => {
    const p = await newPatient();
    const r = await call(t.base, 'PATCH', `/Patient/${p.id}`, {
      resourceType: 'Parameters',
      parameter: [
        { name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.gender' }, { name: 'value', valueCode: 'other' }] },
        { name: 'operation', part: [{ name: 'type', valueCode: 'delete' }, { name: 'path', valueString: 'Patient.active' }] },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.gender).toBe('other');
    expect(r.body.active).toBeUndefined();
  });

  it('bad patches: 400 malformed, 422 unappliable, 412 stale If-Match, 404 missing, and no new version', async () => {
    const p = await newPatient();
    expect((await call(t.base, 'PATCH', `/Patient/${p.id}`, { op: 'replace' }, JSON_PATCH)).status).toBe(400);
    expect((await call(t.base, 'PATCH', `/Patient/${p.id}`, [{ op: 'test', path: '/gender', value: 'male' }], JSON_PATCH)).status).toBe(422);
    expect((await call(t.base, 'PATCH', `/Patient/${p.id}`, [{ op: 'replace', path: '/id', value: 'other' }], JSON_PATCH)).status).toBe(422);
    const invalid = await call(t.base, 'PATCH', `/Patient/${p.id}`, [{ op: 'replace', path: '/gender', value: 'banana' }], JSON_PATCH);
    expect(invalid.status).toBe(400);
    expect(invalid.body.issue.flatMap((i: any) => i.expression ?? [])).toContain('Patient.gender');
    expect((await call(t.base, 'PATCH', `/Patient/${p.id}`, [{ op: 'replace', path: '/gender', value: 'male' }], { ...JSON_PATCH, 'if-match': 'W/"5"' })).status).toBe(412);
    expect((await call(t.base, 'PATCH', '/Patient/nobody-here', [{ op: 'replace', path: '/gender', value: 'male' }], JSON_PATCH)).status).toBe(404);
    expect((await call(t.base, 'GET', `/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  it('conditional patch finds the resource by search', async () => {
    const p = await newPatient();
    const value = p.identifier[0].value;
    const r = await call(t.base, 'PATCH', `/Patient?identifier=urn:mrn|${encodeURIComponent(value)}`, [{ op: 'replace', path: '/gender', value: 'unknown' }], JSON_PATCH);
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(p.id);
    expect(r.body.gender).toBe('unknown');
  });

  it('PATCH inside a transaction (Binary JSON Patch and Parameters)', async () => {
    const p = await newPatient();
    const jsonPatch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }])).toString('base64');
    const r = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: jsonPatch }, request: { method: 'PATCH', url: `Patient/${p.id}` } }],
    });
    expect(r.status).toBe(200);
    expect(r.body.entry[0].response.status).toBe('200 OK');
    expect((await call(t.base, 'GET', `/Patient/${p.id}`)).body.gender).toBe('male');
  });
});
