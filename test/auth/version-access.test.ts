/**
 * Older versions under a patient limit, through HTTP: a resource moved from Bob to Ann must not
 * show Bob's version to Ann, by vread or instance history; one moved away from Ann is gone for
 * her entirely. Under a granular (query) limit only the current version is readable.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken } from '../../src/auth/tokens.js';
import { Tenants } from '../../src/store/tenants.js';
import { call, ENGINES } from '../support/server.js';
import { adminToken, bearer, useAuthServer } from '../support/auth.js';

const LAB = { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' };
const observation = (patient: string, text: string) => ({
  resourceType: 'Observation', status: 'final', category: [{ coding: [LAB] }], code: { text }, subject: { reference: `Patient/${patient}` },
});

describe.each(ENGINES)('versions under a patient limit (%s)', (engine) => {
  const t = useAuthServer(engine);
  const ids = {} as Record<'ann' | 'bob' | 'movedToAnn' | 'movedFromAnn', string>;
  let adm: Record<string, string>;
  const token = async (scope: string, patient: string) => {
    const store = await new Tenants(t.server.db).store('default');
    return bearer((await issueAccessToken(store, t.base, { clientId: 'test-app', scope, patient })).token);
  };

  beforeAll(async () => {
    adm = bearer(await adminToken(t.base));
    const post = async (body: Record<string, unknown>) => (await call(t.base, 'POST', `/${body.resourceType as string}`, body, adm)).body.id as string;
    const put = async (id: string, body: Record<string, unknown>) => expect((await call(t.base, 'PUT', `/Observation/${id}`, { ...body, id }, adm)).status).toBe(200);
    ids.ann = await post({ resourceType: 'Patient', name: [{ family: 'Ann' }] });
    ids.bob = await post({ resourceType: 'Patient', name: [{ family: 'Bob' }] });
    // v1 Bob's (with Bob's secret), v2 filed to Ann after correction.
    ids.movedToAnn = await post(observation(ids.bob, 'bob-secret'));
    await put(ids.movedToAnn, observation(ids.ann, 'now-ann'));
    // v1 Ann's, v2 Bob's.
    ids.movedFromAnn = await post(observation(ids.ann, 'was-ann'));
    await put(ids.movedFromAnn, observation(ids.bob, 'bob-now'));
  });

  it("vread of an older version is checked against that version's own compartment", async () => {
    const ann = await token('patient/*.rs', ids.ann);
    const at = (path: string) => call(t.base, 'GET', path, undefined, ann);
    expect((await at(`/Observation/${ids.movedToAnn}`)).status).toBe(200);
    expect((await at(`/Observation/${ids.movedToAnn}/_history/2`)).status).toBe(200);
    const old = await at(`/Observation/${ids.movedToAnn}/_history/1`);
    expect(old.status).toBe(404);
    expect(old.text).not.toContain('bob-secret');
    // Moved away from Ann: not hers any more, no version of it is readable.
    for (const v of ['', '/_history/1', '/_history/2']) expect((await at(`/Observation/${ids.movedFromAnn}${v}`)).status, v).toBe(404);
    // The administrator still reads every version.
    expect((await call(t.base, 'GET', `/Observation/${ids.movedToAnn}/_history/1`, undefined, adm)).body.code.text).toBe('bob-secret');
  });

  it("instance history leaves out versions in another patient's compartment", async () => {
    const ann = await token('patient/*.rs', ids.ann);
    const h = await call(t.base, 'GET', `/Observation/${ids.movedToAnn}/_history`, undefined, ann);
    expect(h.status).toBe(200);
    expect(h.body.entry.map((e: any) => e.resource?.meta?.versionId)).toEqual(['2']);
    expect(h.text).not.toContain('bob-secret');
    const all = await call(t.base, 'GET', '/Observation/_history', undefined, ann);
    expect(all.text).not.toContain('bob-secret');
  });

  it('under a granular scope only the current version is readable', async () => {
    const lab = await token(`patient/Observation.rs?category=${LAB.system}|${LAB.code}`, ids.ann);
    expect((await call(t.base, 'GET', `/Observation/${ids.movedToAnn}/_history/2`, undefined, lab)).status).toBe(200);
    expect((await call(t.base, 'GET', `/Observation/${ids.movedToAnn}/_history/1`, undefined, lab)).status).toBe(404);
  });
});
