/**
 * Chaining, _has, _revinclude, _sort and paging on Synthea data. Two copies of the fixture patient
 * are loaded (the second with other identifiers), so every search must tell them apart. Expected
 * results are computed from the fixture Bundle itself, not from the engine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

const dir = join(import.meta.dirname, '../../fixtures/synthea');
const bundle = JSON.parse(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!), 'utf8'));
const resources = (type: string) => bundle.entry.map((e: any) => e.resource).filter((r: any) => r.resourceType === type);
const patient = resources('Patient')[0];
const mrn = patient.identifier.find((i: any) => i.type?.coding?.[0]?.code === 'MR');
const observations = resources('Observation');
const encounters = resources('Encounter');

/** The same patient record under other identifiers (a second, distinct patient). */
function twin(): any {
  const copy = structuredClone(bundle);
  for (const e of copy.entry) {
    if (e.resource.resourceType === 'Patient') e.resource.identifier = e.resource.identifier.map((i: any) => ({ ...i, value: `${i.value}-twin` }));
  }
  return copy;
}

async function allPages(base: string, path: string): Promise<any[]> {
  const entries: any[] = [];
  let next: string | undefined = path;
  for (let guard = 0; next && guard < 100; guard++) {
    const page = await call(base, 'GET', next);
    expect(page.status).toBe(200);
    entries.push(...(page.body.entry ?? []));
    const link = page.body.link?.find((l: any) => l.relation === 'next')?.url as string | undefined;
    next = link?.slice(base.length);
  }
  return entries;
}

describe.each(ENGINES)('search on Synthea data on %s', (engine) => {
  const t = useTestServer(engine);
  let patientId: string;

  beforeAll(async () => {
    const first = await call(t.base, 'POST', '', bundle);
    expect(first.status).toBe(200);
    expect((await call(t.base, 'POST', '', twin())).status).toBe(200);
    const index = bundle.entry.findIndex((e: any) => e.resource.resourceType === 'Patient');
    patientId = first.body.entry[index].response.location.split('/')[1];
  });

  it('chained search: Observation?subject:Patient.identifier finds only that patient\'s observations', async () => {
    const entries = await allPages(t.base, `/Observation?subject:Patient.identifier=${encodeURIComponent(`${mrn.system}|${mrn.value}`)}&_count=20`);
    expect(entries).toHaveLength(observations.length);
    expect(new Set(entries.map((e) => e.resource.subject.reference))).toEqual(new Set([`Patient/${patientId}`]));
  });

  it('reverse chaining: Patient?_has:Observation:subject:code finds both copies, and only them', async () => {
    const code = observations[0].code.coding[0];
    const r = await call(t.base, 'GET', `/Patient?_has:Observation:subject:code=${encodeURIComponent(`${code.system}|${code.code}`)}`);
    expect(r.body.entry).toHaveLength(2);
    const none = await call(t.base, 'GET', '/Patient?_has:Observation:subject:code=http://loinc.org|no-such-code');
    expect(none.body.entry ?? []).toHaveLength(0);
  });

  it('_sort=-date on Encounter by patient gives the fixture\'s start dates, newest first', async () => {
    const r = await call(t.base, 'GET', `/Encounter?subject=Patient/${patientId}&_sort=-date&_count=100`);
    const expected = encounters.map((e: any) => Date.parse(e.period.start)).sort((a: number, b: number) => b - a);
    expect(r.body.entry.map((e: any) => Date.parse(e.resource.period.start))).toEqual(expected);
  });

  it('_revinclude and _include bring the related resources once each', async () => {
    const r = await call(t.base, 'GET', `/Patient?_id=${patientId}&_revinclude=Encounter:subject`);
    const modes = r.body.entry.map((e: any) => `${e.search.mode}:${e.resource.resourceType}`);
    expect(modes.filter((m: string) => m === 'match:Patient')).toHaveLength(1);
    expect(modes.filter((m: string) => m === 'include:Encounter')).toHaveLength(encounters.length);
    const inc = await call(t.base, 'GET', `/Encounter?subject=Patient/${patientId}&_include=Encounter:subject`);
    expect(inc.body.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.id)).toEqual([patientId]);
  });

  it('paging with _count walks every observation of the patient exactly once', async () => {
    const entries = await allPages(t.base, `/Observation?subject=Patient/${patientId}&_count=7&_sort=date`);
    const ids = entries.map((e) => e.resource.id);
    expect(ids).toHaveLength(observations.length);
    expect(new Set(ids).size).toBe(observations.length);
    const dates = entries.map((e) => Date.parse(e.resource.effectiveDateTime));
    expect(dates).toEqual([...dates].sort((a, b) => a - b));
  });

  it('compartment search equals the subject search', async () => {
    const viaCompartment = await allPages(t.base, `/Patient/${patientId}/Encounter?_count=50`);
    expect(viaCompartment).toHaveLength(encounters.length);
  });
});
