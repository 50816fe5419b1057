/**
 * Search result shaping through HTTP (search.html): _include / _revinclude (:iterate, *, typed),
 * _summary / _elements, compartment search, system search, POST _search, ignored parameters.
 * On a small hand-made graph and on the Synthea fixture, on each engine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, startTestServer, type TestServer } from '../support/server.js';

const SYNTHEA_DIR = join(import.meta.dirname, '../../fixtures/synthea');
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const LOINC = 'http://loinc.org';

/**
 * The graph: p1 (managed by org1, GP pr1), p2; e1 (subject p1, serviceProvider org1, participant pr1);
 * o1 (subject p1, encounter e1, performer pr1), o2 (subject p1, hasMember o1), o3 (subject p2, hasMember o2).
 */
const GRAPH: any[] = [
  { resourceType: 'Organization', id: 'org1', name: 'General Hospital' },
  { resourceType: 'Practitioner', id: 'pr1', name: [{ family: 'Who' }] },
  {
    resourceType: 'Patient',
    id: 'p1',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ada</div>' },
    name: [{ family: 'Graph', given: ['Ada'] }],
    gender: 'female',
    contact: [{ name: { family: 'Kin' } }],
    communication: [{ language: { text: 'English' } }],
    managingOrganization: { reference: 'Organization/org1' },
    generalPractitioner: [{ reference: 'Practitioner/pr1' }],
  },
  { resourceType: 'Patient', id: 'p2', name: [{ family: 'Graph', given: ['Bob'] }] },
  { resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' }, serviceProvider: { reference: 'Organization/org1' }, participant: [{ individual: { reference: 'Practitioner/pr1' } }] },
  {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '8867-4' }] },
    subject: { reference: 'Patient/p1' },
    encounter: { reference: 'Encounter/e1' },
    performer: [{ reference: 'Practitioner/pr1' }],
    valueQuantity: { value: 60, unit: '/min' },
    interpretation: [{ text: 'normal' }],
    referenceRange: [{ text: '50-90' }],
    component: [{ code: { text: 'part' }, valueString: 'x', interpretation: [{ text: 'n' }] }],
  },
  { resourceType: 'Observation', id: 'o2', status: 'final', code: { coding: [{ system: LOINC, code: '85354-9' }] }, subject: { reference: 'Patient/p1' }, hasMember: [{ reference: 'Observation/o1' }] },
  { resourceType: 'Observation', id: 'o3', status: 'final', code: { coding: [{ system: LOINC, code: '85354-9' }] }, subject: { reference: 'Patient/p2' }, hasMember: [{ reference: 'Observation/o2' }] },
];

const byMode = (body: any, mode: string) => (body.entry ?? []).filter((e: any) => e.search.mode === mode).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();
/** The user's resources among search results: the server's AuditEvents and Provenances naming a patient are in its compartment too. */
const userRecords = (refs: string[]) => refs.filter((r) => !/^(AuditEvent|Provenance)\//.test(r));
const outcomeOf = (body: any) => body.entry?.find((e: any) => e.search.mode === 'outcome')?.resource;
const tags = (r: any) => r.meta?.tag ?? [];

describe.each(ENGINES)('search results on %s', (engine) => {
  let t: TestServer;
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await call(t.base, 'GET', path, undefined, headers);
    expect(r.status, `${path}: ${r.text.slice(0, 300)}`).toBe(200);
    return r.body;
  };
  beforeAll(async () => {
    t = await startTestServer(engine);
    for (const r of GRAPH) expect((await call(t.base, 'PUT', `/${r.resourceType}/${r.id}`, r)).status).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('_include adds each referenced resource once, as include, never a match again', async () => {
    const b = await get('/Observation?_id=o1,o2&_include=Observation:subject');
    expect(byMode(b, 'match')).toEqual(['Observation/o1', 'Observation/o2']);
    expect(byMode(b, 'include')).toEqual(['Patient/p1']);
    expect(b.entry.find((e: any) => e.search.mode === 'include').fullUrl).toBe(`${t.base}/Patient/p1`);
    // o2 has o1 as member, but o1 is a match.
    expect(byMode(await get('/Observation?_id=o1,o2&_include=Observation:has-member'), 'include')).toEqual([]);
    // Typed, wildcard, several parameters.
    expect(byMode(await get('/Observation?_id=o1&_include=Observation:subject:Patient'), 'include')).toEqual(['Patient/p1']);
    expect(byMode(await get('/Observation?_id=o1&_include=Observation:performer:Organization'), 'include')).toEqual([]);
    expect(byMode(await get('/Observation?_id=o1&_include=Observation:*'), 'include')).toEqual(['Encounter/e1', 'Patient/p1', 'Practitioner/pr1']);
    expect(byMode(await get('/Patient?_id=p1&_include=Patient:organization&_include=Patient:general-practitioner'), 'include')).toEqual(['Organization/org1', 'Practitioner/pr1']);
  });

  it('_revinclude finds the resources that refer to the matches', async () => {
    const b = await get('/Patient?_id=p1&_revinclude=Observation:subject&_revinclude=Encounter:subject');
    expect(byMode(b, 'match')).toEqual(['Patient/p1']);
    expect(byMode(b, 'include')).toEqual(['Encounter/e1', 'Observation/o1', 'Observation/o2']);
    expect(byMode(await get('/Patient?_id=p2&_revinclude=Observation:subject:Patient'), 'include')).toEqual(['Observation/o3']);
    expect(byMode(await get('/Practitioner?_id=pr1&_revinclude=Observation:*'), 'include')).toEqual(['Observation/o1']);
  });

  it(':iterate (and R4 :recurse) follows includes of included resources to a fixed point', async () => {
    expect(byMode(await get('/Observation?_id=o3&_include=Observation:has-member'), 'include')).toEqual(['Observation/o2']);
    expect(byMode(await get('/Observation?_id=o3&_include:iterate=Observation:has-member'), 'include')).toEqual(['Observation/o1', 'Observation/o2']);
    expect(byMode(await get('/Observation?_id=o3&_include:recurse=Observation:has-member'), 'include')).toEqual(['Observation/o1', 'Observation/o2']);
    // Patient → (rev) Observations → their Encounter → its Organization; the non-iterate one applies to matches only.
    const b = await get('/Patient?_id=p1&_revinclude=Observation:subject&_include:iterate=Observation:encounter&_include:iterate=Encounter:service-provider');
    expect(byMode(b, 'include')).toEqual(['Encounter/e1', 'Observation/o1', 'Observation/o2', 'Organization/org1']);
    const once = await get('/Patient?_id=p1&_revinclude=Observation:subject&_include=Observation:encounter');
    expect(byMode(once, 'include')).toEqual(['Observation/o1', 'Observation/o2']);
    // A cycle stops: o3 → o2 → o1, and revinclude back from each.
    const cyc = await get('/Observation?_id=o1&_revinclude:iterate=Observation:has-member&_include:iterate=Observation:has-member');
    expect(byMode(cyc, 'include')).toEqual(['Observation/o2', 'Observation/o3']);
  });

  it('bad _include values: a warning, or 400 with handling=strict', async () => {
    const b = await get('/Observation?_id=o1&_include=Observation:nope&_include=Observation:subject');
    expect(byMode(b, 'include')).toEqual(['Patient/p1']);
    expect(outcomeOf(b).issue[0].diagnostics).toMatch(/Observation:nope/);
    expect(b.link.find((l: any) => l.relation === 'self').url).not.toContain('nope');
    const strict = await call(t.base, 'GET', '/Observation?_include=Observation:nope', undefined, { prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    expect((await call(t.base, 'GET', '/Observation?_include:bad=Observation:subject', undefined, { prefer: 'handling=strict' })).status).toBe(400);
  });

  it('_summary=true keeps summary and mandatory elements, recursively in backbone elements, and marks SUBSETTED', async () => {
    const p = (await get('/Patient?_id=p1&_summary=true')).entry[0].resource;
    // Patient.generalPractitioner and .communication are not summary elements, nor is DomainResource.text.
    expect(Object.keys(p).sort()).toEqual(['gender', 'id', 'managingOrganization', 'meta', 'name', 'resourceType']);
    expect(p.contact).toBeUndefined();
    expect(p.text).toBeUndefined();
    expect(tags(p)).toContainEqual(expect.objectContaining(SUBSETTED));
    expect(p.meta.versionId).toBe('1');
    const o = (await get('/Observation?_id=o1&_summary=true')).entry[0].resource;
    expect(o.status).toBe('final');
    expect(o.valueQuantity.value).toBe(60);
    expect(o.interpretation).toBeUndefined();
    expect(o.referenceRange).toBeUndefined();
    expect(o.component).toEqual([{ code: { text: 'part' }, valueString: 'x' }]);
    // The whole resource without _summary: nothing is tagged.
    const whole = (await get('/Patient?_id=p1')).entry[0].resource;
    expect(whole.contact).toBeDefined();
    expect(tags(whole)).toEqual([]);
  });

  it('_summary=text / data / false and _elements', async () => {
    const text = (await get('/Patient?_id=p1&_summary=text')).entry[0].resource;
    expect(Object.keys(text).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    const data = (await get('/Patient?_id=p1&_summary=data')).entry[0].resource;
    expect(data.text).toBeUndefined();
    expect(data.contact).toBeDefined();
    expect(tags(data)).toContainEqual(expect.objectContaining(SUBSETTED));
    expect((await get('/Patient?_id=p1&_summary=false')).entry[0].resource.text).toBeDefined();

    const el = await get('/Patient?_id=p1&_elements=name&_include=Patient:organization');
    const p = el.entry.find((e: any) => e.search.mode === 'match').resource;
    expect(Object.keys(p).sort()).toEqual(['id', 'meta', 'name', 'resourceType']);
    expect(tags(p)).toContainEqual(expect.objectContaining(SUBSETTED));
    // _elements shapes the matches only: the included Organization is whole.
    expect(el.entry.find((e: any) => e.search.mode === 'include').resource.name).toBe('General Hospital');
    expect(el.link[0].url).toContain('_elements=name');
    // Mandatory elements stay; a choice element by its name.
    const o = (await get('/Observation?_id=o1&_elements=subject,value')).entry[0].resource;
    expect(Object.keys(o).sort()).toEqual(['code', 'id', 'meta', 'resourceType', 'status', 'subject', 'valueQuantity']);
    // On read and vread too.
    const read = await get('/Patient/p1?_summary=true');
    expect(read.contact).toBeUndefined();
    expect(tags(read)).toContainEqual(expect.objectContaining(SUBSETTED));
    expect(Object.keys(await get('/Patient/p1?_elements=gender')).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
    expect(Object.keys(await get('/Patient/p1/_history/1?_summary=text')).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    expect((await get('/Patient/p1')).contact).toBeDefined();
    expect((await call(t.base, 'GET', '/Patient/p1?_summary=bogus')).status).toBe(400);
  });

  it('compartment search: GET /Patient/[id]/[type] and /Patient/[id]/*', async () => {
    const obs = await get('/Patient/p1/Observation');
    expect(byMode(obs, 'match')).toEqual(['Observation/o1', 'Observation/o2']);
    expect(obs.link[0].url).toBe(`${t.base}/Patient/p1/Observation?_count=20`);
    expect(byMode(await get(`/Patient/p1/Observation?code=${LOINC}|85354-9`), 'match')).toEqual(['Observation/o2']);
    expect(byMode(await get('/Patient/p2/Observation'), 'match')).toEqual(['Observation/o3']);
    expect(byMode(await get('/Patient/p1/Encounter?_include=Encounter:service-provider'), 'include')).toEqual(['Organization/org1']);
    expect(byMode(await get('/Patient/p1/Patient'), 'match')).toEqual(['Patient/p1']);
    expect(userRecords(byMode(await get('/Patient/p1/*?_count=500'), 'match'))).toEqual(['Encounter/e1', 'Observation/o1', 'Observation/o2', 'Patient/p1']);
    expect((await call(t.base, 'GET', '/Patient/p1/Organization')).status).toBe(400);
    expect((await call(t.base, 'GET', '/Encounter/e1/Observation')).status).toBe(404);
    expect((await call(t.base, 'GET', '/Patient/p1/NotAType')).status).toBe(404);
    // _history and POST .../_search still route as before.
    expect((await get('/Patient/p1/_history')).type).toBe('history');
    const post = await call(t.base, 'POST', '/Patient/p1/Observation/_search', 'code=85354-9', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(byMode(post.body, 'match')).toEqual(['Observation/o2']);
  });

  it('system search: GET [base]?_type=..., all types with common parameters, POST [base]/_search', async () => {
    const b = await get('/?_type=Patient,Observation&_id=p1,o1,e1&_sort=_id');
    expect(b.entry.map((e: any) => e.resource.id)).toEqual(['o1', 'p1']);
    expect(b.link[0].url).toMatch(new RegExp(`^${t.base}\\?_type=Patient%2CObservation&`));
    expect(byMode(await get('/?_id=e1,org1'), 'match')).toEqual(['Encounter/e1', 'Organization/org1']);
    const since = (await get('/Observation?_id=o3')).entry[0].resource.meta.lastUpdated;
    expect(byMode(await get(`/?_type=Patient,Observation&_lastUpdated=ge${encodeURIComponent(since)}`), 'match')).toEqual(['Observation/o3']);
    const ignored = await get('/?_id=p1&family=Graph');
    expect(byMode(ignored, 'match')).toEqual(['Patient/p1']);
    expect(outcomeOf(ignored).issue[0].diagnostics).toMatch(/family/);
    expect((await call(t.base, 'GET', '/?family=Graph', undefined, { prefer: 'handling=strict' })).status).toBe(400);
    expect((await call(t.base, 'GET', '/?_type=Nope')).status).toBe(400);
    const post = await call(t.base, 'POST', '/_search', '_type=Observation&_id=o1,p1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(post.status).toBe(200);
    expect(byMode(post.body, 'match')).toEqual(['Observation/o1']);
  });

  it('POST [type]/_search takes the query string and the form body together', async () => {
    const r = await call(t.base, 'POST', '/Observation/_search?_id=o1,o2', `code=${encodeURIComponent(`${LOINC}|8867-4`)}&_include=Observation:subject`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(r.status).toBe(200);
    expect(byMode(r.body, 'match')).toEqual(['Observation/o1']);
    expect(byMode(r.body, 'include')).toEqual(['Patient/p1']);
    // The self link is a GET url with every parameter used.
    const self = new URL(r.body.link[0].url);
    expect(self.pathname).toMatch(/\/Observation$/);
    expect(self.searchParams.get('_id')).toBe('o1,o2');
    expect(self.searchParams.get('code')).toBe(`${LOINC}|8867-4`);
  });

  it('ignored parameters: an outcome entry and no echo in links; 400 with handling=strict', async () => {
    const b = await get('/Patient?family=Graph&foo=bar&_count=5');
    expect(b.total).toBe(2);
    expect(outcomeOf(b).issue).toEqual([expect.objectContaining({ severity: 'warning', diagnostics: expect.stringMatching(/'foo'/) })]);
    const self = b.link.find((l: any) => l.relation === 'self').url;
    expect(self).toBe(`${t.base}/Patient?family=Graph&_count=5`);
    const strict = await call(t.base, 'GET', '/Patient?family=Graph&foo=bar', undefined, { prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
  });

  it('Synthea: includes and compartments on a real patient record', async () => {
    const bundle = JSON.parse(readFileSync(join(SYNTHEA_DIR, readdirSync(SYNTHEA_DIR).find((f) => f.endsWith('.json'))!), 'utf8'));
    const tx = await call(t.base, 'POST', '', bundle);
    expect(tx.status).toBe(200);
    const ref = new Map<string, string>();
    bundle.entry.forEach((e: any, i: number) => ref.set(e.fullUrl, tx.body.entry[i].response.location.replace(/\/_history\/1$/, '')));
    const of = (type: string) => bundle.entry.filter((e: any) => e.resource.resourceType === type).map((e: any) => e.resource);
    const patient = ref.get(bundle.entry.find((e: any) => e.resource.resourceType === 'Patient').fullUrl)!;
    const pid = patient.split('/')[1];

    const enc = await get(`/Encounter?subject=${patient}&_include=Encounter:subject&_count=100`);
    expect(byMode(enc, 'match')).toHaveLength(of('Encounter').length);
    expect(byMode(enc, 'include')).toEqual([patient]);
    const providers = [...new Set(of('Encounter').map((e: any) => ref.get(e.serviceProvider.reference)))].sort();
    const participants = [...new Set(of('Encounter').flatMap((e: any) => e.participant.map((p: any) => ref.get(p.individual.reference))))].sort();
    expect(byMode(await get(`/Encounter?subject=${patient}&_include=Encounter:service-provider&_include=Encounter:participant`), 'include')).toEqual(
      [...providers, ...participants].sort(),
    );

    // MedicationRequest: Synthea uses medicationCodeableConcept, so follow requester and encounter.
    const mrs = of('MedicationRequest');
    const mr = await get(`/MedicationRequest?subject=${patient}&_include=MedicationRequest:requester&_include=MedicationRequest:encounter&_include:iterate=Encounter:service-provider`);
    const mrEncounters = mrs.map((m: any) => ref.get(m.encounter.reference));
    const expected = new Set<string>([...mrs.map((m: any) => ref.get(m.requester.reference)), ...mrEncounters]);
    for (const e of bundle.entry) {
      if (e.resource.resourceType === 'Encounter' && mrEncounters.includes(ref.get(e.fullUrl))) expected.add(ref.get(e.resource.serviceProvider.reference)!);
    }
    expect(byMode(mr, 'match')).toHaveLength(mrs.length);
    expect(byMode(mr, 'include')).toEqual([...expected].sort());

    const rev = await get(`/Patient?_id=${pid}&_revinclude=Encounter:subject&_revinclude=Condition:subject`);
    expect(byMode(rev, 'include')).toHaveLength(of('Encounter').length + of('Condition').length);

    // The patient compartment: everything but the Organizations and Practitioners.
    const compartment = userRecords(byMode(await get(`/Patient/${pid}/*?_count=1000`), 'match'));
    expect(compartment).toHaveLength(bundle.entry.length - of('Organization').length - of('Practitioner').length);
    expect((await get(`/Patient/${pid}/Observation?_summary=count`)).total).toBe(of('Observation').length);
    expect((await get(`/Patient/${pid}/Claim?_total=accurate&_count=1`)).total).toBe(of('Claim').length);
  });

  it('includes stop at 1,000 resources, with a warning', async () => {
    expect((await call(t.base, 'PUT', '/Patient/cap', { resourceType: 'Patient', id: 'cap' })).status).toBe(201);
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'cap' }, subject: { reference: 'Patient/cap' } };
    const entry = Array.from({ length: 1003 }, () => ({ resource: obs, request: { method: 'POST', url: 'Observation' } }));
    expect((await call(t.base, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry })).status).toBe(200);
    const b = await get('/Patient?_id=cap&_revinclude=Observation:subject');
    expect(byMode(b, 'include')).toHaveLength(1000);
    expect(new Set(byMode(b, 'include')).size).toBe(1000);
    expect(outcomeOf(b).issue).toEqual([expect.objectContaining({ severity: 'warning', code: 'incomplete' })]);
    expect(outcomeOf(await get('/Patient?_id=cap&_revinclude=Observation:subject:Patient&_count=1'))).toBeDefined();
  });
});
