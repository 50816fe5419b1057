/**
 * Custom SearchParameter resources, $reindex and UCUM quantity search through HTTP, on each engine
 * (searchparameter.html, search.html#quantity).
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

const MMN_URL = 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName';
const UCUM = 'http://unitsofmeasure.org';

const mothersMaidenName = {
  resourceType: 'SearchParameter',
  url: 'http://example.org/fhir/SearchParameter/patient-mothers-maiden-name',
  name: 'MothersMaidenName',
  status: 'active',
  description: "Search by the patient's mother's maiden name",
  code: 'mothers-maiden-name',
  base: ['Patient'],
  type: 'string',
  expression: `Patient.extension.where(url='${MMN_URL}').value`,
};

const patient = (family: string, maidenName: string) => ({
  resourceType: 'Patient',
  name: [{ family }],
  extension: [{ url: MMN_URL, valueString: maidenName }],
});

const ids = (bundle: any): string[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id).sort();

async function waitForJob(base: string, statusUrl: string): Promise<any> {
  const path = statusUrl.slice(base.length);
  for (let i = 0; i < 200; i++) {
    const r = await call(base, 'GET', path);
    if (r.status === 200) return r;
    expect(r.status).toBe(202);
    expect(r.headers.get('x-progress')).toMatch(/^(queued|running): \d+\/\d+/);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('reindex job did not finish');
}

const param = (p: any, name: string) => p.parameter.find((x: any) => x.name === name);

describe.each(ENGINES)('custom search parameters on %s', (engine) => {
  const t = useTestServer(engine);

  it('a SearchParameter makes new writes searchable at once, existing ones after $reindex, none after its deletion', async () => {
    const before = await call(t.base, 'POST', '/Patient', patient('Early', 'Smithers'));
    expect(before.status).toBe(201);
    // Unknown for now: ignored with a warning, 400 in strict mode.
    const unknown = await call(t.base, 'GET', '/Patient?mothers-maiden-name=smithers');
    expect(unknown.status).toBe(200);
    expect(unknown.body.entry.some((e: any) => e.search?.mode === 'outcome')).toBe(true);

    const sp = await call(t.base, 'POST', '/SearchParameter', mothersMaidenName);
    expect(sp.status).toBe(201);
    const after = await call(t.base, 'POST', '/Patient', patient('Late', 'Smithson'));
    const other = await call(t.base, 'POST', '/Patient', patient('Other', 'Jones'));

    let found = await call(t.base, 'GET', '/Patient?mothers-maiden-name=smith', undefined, { prefer: 'handling=strict' });
    expect(found.status).toBe(200);
    expect(ids(found.body)).toEqual([after.body.id]); // the earlier Patient has no index rows for it yet
    expect(ids((await call(t.base, 'GET', '/Patient?mothers-maiden-name:exact=Jones')).body)).toEqual([other.body.id]);

    const started = await call(t.base, 'POST', '/Patient/$reindex');
    expect(started.status).toBe(202);
    expect(started.body.resourceType).toBe('OperationOutcome');
    const statusUrl = started.headers.get('content-location')!;
    expect(statusUrl).toMatch(new RegExp(`^${t.base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\$reindex/[0-9a-f-]{36}$`));
    const done = await waitForJob(t.base, statusUrl);
    expect(done.body.resourceType).toBe('Parameters');
    expect(param(done.body, 'status').valueCode).toBe('completed');
    expect(param(done.body, 'type').valueCode).toBe('Patient');
    expect(param(done.body, 'processed').valueInteger).toBe(param(done.body, 'total').valueInteger);
    expect(param(done.body, 'total').valueInteger).toBeGreaterThanOrEqual(3);

    found = await call(t.base, 'GET', '/Patient?mothers-maiden-name=smith');
    expect(ids(found.body)).toEqual([before.body.id, after.body.id].sort());

    // Updating the parameter (a new expression) applies to new writes; deleting it removes it.
    expect((await call(t.base, 'DELETE', `/SearchParameter/${sp.body.id}`)).status).toBe(204);
    const gone = await call(t.base, 'GET', '/Patient?mothers-maiden-name=smith');
    expect(gone.status).toBe(200);
    expect(gone.body.entry.find((e: any) => e.search?.mode === 'outcome').resource.issue[0].diagnostics).toMatch(/Unknown search parameter 'mothers-maiden-name'/);
    const strict = await call(t.base, 'GET', '/Patient?mothers-maiden-name=smith', undefined, { prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
  });

  it('an updated SearchParameter applies its new expression; a retired one is not searchable', async () => {
    const sp = await call(t.base, 'POST', '/SearchParameter', { ...mothersMaidenName, code: 'nick', type: 'string', expression: "Patient.name.where(use='nickname').given" });
    expect(sp.status).toBe(201);
    const p = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ use: 'nickname', given: ['Bobby'] }, { use: 'official', given: ['Robert'] }] });
    expect(ids((await call(t.base, 'GET', '/Patient?nick=bob')).body)).toEqual([p.body.id]);
    expect(ids((await call(t.base, 'GET', '/Patient?nick=rob')).body)).toEqual([]);
    const updated = await call(t.base, 'PUT', `/SearchParameter/${sp.body.id}`, { ...sp.body, expression: "Patient.name.where(use='official').given" });
    expect(updated.status).toBe(200);
    const q = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ use: 'official', given: ['Roberta'] }] });
    expect(ids((await call(t.base, 'GET', '/Patient?nick=rob')).body)).toEqual([q.body.id]);
    await call(t.base, 'PUT', `/SearchParameter/${sp.body.id}`, { ...updated.body, status: 'retired' });
    expect((await call(t.base, 'GET', '/Patient?nick=rob', undefined, { prefer: 'handling=strict' })).status).toBe(400);
  });

  it('parameters with one expression share index rows: phonetic is name, and so is a custom parameter with that expression, at once', async () => {
    const zed = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Sharedrowz', given: ['Zed'] }] });
    const amy = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Sharedrowa', given: ['Amy'] }] });
    const strict = { prefer: 'handling=strict' };
    const search = async (q: string) => {
      const r = await call(t.base, 'GET', `/Patient?${q}`, undefined, strict);
      expect(r.status).toBe(200);
      return (r.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id);
    };
    expect(await search('phonetic=sharedrow&_sort=phonetic')).toEqual([amy.body.id, zed.body.id]);
    expect(await search('phonetic=sharedrow&_sort=-phonetic')).toEqual([zed.body.id, amy.body.id]);
    expect(await search('phonetic:exact=Sharedrowz')).toEqual([zed.body.id]);
    expect(await search('phonetic:contains=redrowa')).toEqual([amy.body.id]);
    expect(await search('phonetic=sharedrowz,sharedrowa&given=zed')).toEqual([zed.body.id]);
    // A custom parameter with name's expression: the existing Patients are found without a reindex.
    const sp = await call(t.base, 'POST', '/SearchParameter', { ...mothersMaidenName, url: 'http://example.org/fhir/SearchParameter/patient-moniker', code: 'moniker', expression: 'Patient.name' });
    expect(sp.status).toBe(201);
    expect((await search('moniker=sharedrow')).sort()).toEqual([amy.body.id, zed.body.id].sort());
    expect(await search('moniker:exact=Amy')).toEqual([amy.body.id]);
  });

  it('combo-* parameters are searched through the plain and component parameters: every form, sort, chains, conditional create', async () => {
    const LOINC = 'http://loinc.org';
    const tag = { meta: { tag: [{ system: 'http://example.org/test', code: 'combo-union' }] } };
    const subject = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Combounion' }] });
    const weight = await call(t.base, 'POST', '/Observation', {
      resourceType: 'Observation', ...tag, status: 'final', subject: { reference: `Patient/${subject.body.id}` },
      code: { coding: [{ system: LOINC, code: '29463-7', display: 'Body weight' }] },
      valueQuantity: { value: 72.5, unit: 'kg', system: UCUM, code: 'kg' },
    });
    const pressure = await call(t.base, 'POST', '/Observation', {
      resourceType: 'Observation', ...tag, status: 'final',
      code: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }] },
      component: [
        { code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] }, valueQuantity: { value: 120, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
        { code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }] }, valueQuantity: { value: 80, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
      ],
    });
    const screen = await call(t.base, 'POST', '/Observation', {
      resourceType: 'Observation', ...tag, status: 'final',
      code: { coding: [{ system: LOINC, code: '94500-6', display: 'SARS-CoV-2 RNA' }] },
      dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed' }] },
      component: [{ code: { coding: [{ system: LOINC, code: '94309-2' }] }, valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '260385009' }] } }],
    });
    for (const r of [subject, weight, pressure, screen]) expect(r.status).toBe(201);
    const [w, p, s] = [weight.body.id, pressure.body.id, screen.body.id];
    const strict = { prefer: 'handling=strict' };
    const search = async (q: string, type = 'Observation') => {
      const r = await call(t.base, 'GET', `/${type}?${type === 'Observation' ? '_tag=combo-union&' : ''}${q}`, undefined, strict);
      expect(r.status).toBe(200);
      return (r.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id);
    };
    const sorted = (xs: string[]) => [...xs].sort();
    // The Observation's own code and its components' codes.
    expect(await search('combo-code=29463-7')).toEqual([w]);
    expect(await search('combo-code=http://loinc.org|8480-6')).toEqual([p]);
    expect(sorted(await search('combo-code=85354-9,94309-2'))).toEqual(sorted([p, s]));
    expect(await search('combo-code:text=diastolic')).toEqual([p]);
    expect(sorted(await search('combo-code:not=8462-4'))).toEqual(sorted([w, s]));
    expect(await search('combo-value-concept=http://snomed.info/sct|260385009')).toEqual([s]);
    expect(await search('combo-data-absent-reason=not-performed')).toEqual([s]);
    // Quantities: as given, in canonical UCUM units, :missing, and sorted over both.
    expect(await search('combo-value-quantity=gt100')).toEqual([p]);
    expect(await search(`combo-value-quantity=gt72000|${UCUM}|g`)).toEqual([w]);
    expect(await search('combo-value-quantity:missing=true')).toEqual([s]);
    expect(await search('_sort=combo-value-quantity')).toEqual([w, p, s]); // 72.5, then min(120, 80)
    expect(await search('_sort=-combo-value-quantity')).toEqual([p, w, s]); // max(120, 80), then 72.5
    // Composites: code and value of one element (the Observation or one component), never mixed.
    expect(await search('combo-code-value-quantity=29463-7$72.5')).toEqual([w]);
    expect(await search('combo-code-value-quantity=8462-4$80')).toEqual([p]);
    expect(await search('combo-code-value-quantity=8480-6$80')).toEqual([]);
    expect(await search('combo-code-value-quantity:missing=false&combo-code=85354-9')).toEqual([p]);
    // As the last link of a reverse chain, and as a conditional create's condition (one statement).
    expect(await search('_has:Observation:subject:combo-code=29463-7', 'Patient')).toEqual([subject.body.id]);
    const again = await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'duplicate' } }, { 'if-none-exist': 'combo-code=http://loinc.org|8462-4' });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(p);
    // A custom parameter with the same union (branches in another order): found at once, no reindex.
    const sp = await call(t.base, 'POST', '/SearchParameter', {
      ...mothersMaidenName, url: 'http://example.org/fhir/SearchParameter/observation-any-code', code: 'any-code', base: ['Observation'], type: 'token',
      expression: 'Observation.component.code | Observation.code',
    });
    expect(sp.status).toBe(201);
    expect(sorted(await search('any-code=8480-6,29463-7'))).toEqual(sorted([w, p]));
  });

  it('rejects a SearchParameter that cannot be used for search with 400', async () => {
    const bad = async (changes: Record<string, unknown>, pattern: RegExp) => {
      const r = await call(t.base, 'POST', '/SearchParameter', { ...mothersMaidenName, ...changes });
      expect(r.status).toBe(400);
      expect(r.body.resourceType).toBe('OperationOutcome');
      expect(r.body.issue.map((i: any) => i.diagnostics).join(' ')).toMatch(pattern);
    };
    await bad({ expression: 'Patient.extension.where(url=' }, /expression/);
    await bad({ base: ['Bogus'] }, /Bogus/);
    await bad({ type: 'special' }, /special/);
    await bad({ code: 'a.b' }, /code/);
    await bad({ expression: 'Observation.code' }, /base 'Patient'/);
    // Transactions too: nothing is written.
    const tx = await call(t.base, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { ...mothersMaidenName, base: ['Bogus'] }, request: { method: 'POST', url: 'SearchParameter' } }],
    });
    expect(tx.status).toBe(400);
    // A retired one is stored without search checks (it is never loaded).
    expect((await call(t.base, 'POST', '/SearchParameter', { ...mothersMaidenName, status: 'retired', type: 'special' })).status).toBe(201);
  });

  it('$reindex: system level with a Parameters body, unknown types and jobs, CapabilityStatement', async () => {
    const started = await call(t.base, 'POST', '/$reindex', { resourceType: 'Parameters', parameter: [{ name: 'type', valueCode: 'Patient,Observation' }] });
    expect(started.status).toBe(202);
    const done = await waitForJob(t.base, started.headers.get('content-location')!);
    expect(done.body.parameter.filter((p: any) => p.name === 'type').map((p: any) => p.valueCode)).toEqual(['Patient', 'Observation']);
    const all = await call(t.base, 'POST', '/$reindex');
    expect(all.status).toBe(202);
    expect(param((await waitForJob(t.base, all.headers.get('content-location')!)).body, 'status').valueCode).toBe('completed');
    expect((await call(t.base, 'POST', '/$reindex?type=Bogus')).status).toBe(400);
    expect((await call(t.base, 'GET', '/$reindex/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    const cs = await call(t.base, 'GET', '/metadata');
    expect(cs.body.rest[0].resource.find((r: any) => r.type === 'Patient').operation.map((o: any) => o.name)).toContain('reindex');
  });

  it('UCUM: quantities compare across commensurable units; other units match exactly', async () => {
    const obs = (value: number, code: string) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
      valueQuantity: { value, unit: code, system: UCUM, code },
    });
    const mg = await call(t.base, 'POST', '/Observation', obs(6000, 'mg'));
    const g = await call(t.base, 'POST', '/Observation', obs(4, 'g'));
    const iu = await call(t.base, 'POST', '/Observation', obs(5, '[IU]'));
    const search = async (q: string) => ids((await call(t.base, 'GET', `/Observation?code=2345-7&${q}`, undefined, { prefer: 'handling=strict' })).body);
    const u = encodeURIComponent(UCUM);
    expect(await search(`value-quantity=gt5|${u}|g`)).toEqual([mg.body.id]);
    expect(await search(`value-quantity=6|${u}|g`)).toEqual([mg.body.id]);
    expect(await search(`value-quantity=lt5000|${u}|mg`)).toEqual([g.body.id]);
    expect(await search(`value-quantity=ge0.004|${u}|kg`)).toEqual([g.body.id, mg.body.id].sort());
    expect(await search(`value-quantity=gt5|${u}|s`)).toEqual([]); // not commensurable
    // No conversion for arbitrary units: exact system and code.
    expect(await search(`value-quantity=5|${u}|${encodeURIComponent('[IU]')}`)).toEqual([iu.body.id]);
    expect(await search(`value-quantity=5000|${u}|${encodeURIComponent('m[IU]')}`)).toEqual([]);
    // Without units the stored values count, never the canonical ones.
    expect(await search('value-quantity=6000')).toEqual([mg.body.id]);
    expect(await search('value-quantity=6')).toEqual([]);
    expect(await search('value-quantity=gt4.5||mg')).toEqual([mg.body.id]);
  });
});
