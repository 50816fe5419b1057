/**
 * Printable prescriptions over HTTP: $pdf answers a PDF naming the patient, prescriber and
 * medication, stored as Binary + DocumentReference with a Provenance recording its SHA-256; share
 * links serve it until they expire or are revoked.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { expectOutcome } from '../support/outcome.js';
import { create, people, pdfText, prescription, prescriptionEnv, type People } from './medication-support.js';

const fetchPdf = async (url: string, accept = 'application/pdf') => {
  const res = await fetch(url, { method: 'POST', headers: { accept } });
  return { status: res.status, type: res.headers.get('content-type'), location: res.headers.get('content-location'), bytes: Buffer.from(await res.arrayBuffer()) };
};

describe.each(ENGINES)('prescriptions: PDF and share links on %s', (engine) => {
  const t = useTestServer(engine, prescriptionEnv());
  let who: People;
  let mr: any;

  it('$pdf renders the prescription and stores it as Binary + DocumentReference with its SHA-256 in a Provenance', async () => {
    who = await people(t.base);
    mr = await create(t.base, prescription(who, { dispenseRequest: { quantity: { value: 21, unit: 'capsule' }, numberOfRepeatsAllowed: 1 } }));
    const pdf = await fetchPdf(`${t.base}/MedicationRequest/${mr.id}/$pdf`);
    expect(pdf.status).toBe(200);
    expect(pdf.type).toBe('application/pdf');
    expect(pdf.bytes.subarray(0, 5).toString()).toBe('%PDF-');
    const text = pdfText(pdf.bytes);
    for (const expected of ['Amoxicillin 250 mg capsule', 'Ada Lovelace', 'Dr John Snow', '1 capsule 3 times a day for 7 days', '2026-01-05', '21 capsule, 1 repeat']) expect(text).toContain(expected);

    const binaryId = pdf.location!.split('/Binary/')[1]!;
    const binary = (await call(t.base, 'GET', `/Binary/${binaryId}`)).body;
    expect(binary.contentType).toBe('application/pdf');
    expect(Buffer.from(binary.data, 'base64').equals(pdf.bytes)).toBe(true);
    const [doc] = await searchResources(t.base, `DocumentReference?related=MedicationRequest/${mr.id}`);
    expect(doc).toMatchObject({ status: 'current', subject: { reference: `Patient/${who.patient.id}` }, type: { coding: [{ code: '57833-6' }] } });
    expect(doc.content[0].attachment).toMatchObject({ contentType: 'application/pdf', url: `Binary/${binaryId}`, size: pdf.bytes.length, hash: createHash('sha1').update(pdf.bytes).digest('base64') });
    // (Other Provenances may target it too, e.g. the audit trail's: take the one with the digest.)
    const prov = (await searchResources(t.base, `Provenance?target=DocumentReference/${doc.id}`)).find((p) => p.extension?.length);
    expect(prov.extension[0]).toEqual({ url: 'https://carebridge.dev/fhir/StructureDefinition/content-sha256', valueString: createHash('sha256').update(pdf.bytes).digest('hex') });
    expect(prov.target).toContainEqual({ reference: `Binary/${binaryId}` });
    expect(prov.agent[0].who).toEqual({ reference: `Practitioner/${who.practitioner.id}` });
  });

  it('refuses drafts (422), unknown requests (404), GET (405), and Accept types it cannot give (406), storing nothing', async () => {
    const draft = await create(t.base, prescription(who, { status: 'draft' }));
    expectOutcome(await call(t.base, 'POST', `/MedicationRequest/${draft.id}/$pdf`), 422);
    expect(await searchResources(t.base, `DocumentReference?related=MedicationRequest/${draft.id}`)).toHaveLength(0);
    expectOutcome(await call(t.base, 'POST', '/MedicationRequest/unknown-rx/$pdf'), 404);
    expectOutcome(await call(t.base, 'GET', `/MedicationRequest/${mr.id}/$pdf`), 405);
    expect((await fetchPdf(`${t.base}/MedicationRequest/${mr.id}/$pdf`, 'text/html')).status).toBe(406);
    // A FHIR client asking for JSON still gets the PDF bytes as the operation's answer.
    expect((await fetchPdf(`${t.base}/MedicationRequest/${mr.id}/$pdf`, 'application/fhir+json')).type).toBe('application/pdf');
  });

  it('a share link serves the PDF without a login; a forged one is 404; it expires (410)', async () => {
    const link = await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link?expires-in=2`);
    expect(link.status, link.text).toBe(200);
    const url: string = link.body.parameter.find((p: any) => p.name === 'url').valueUri;
    expect(url).toMatch(new RegExp(`^${t.server.url}/share/[\\w-]+\\.[\\w-]+$`));
    const expires = Date.parse(link.body.parameter.find((p: any) => p.name === 'expires').valueInstant);
    expect(expires - Date.now()).toBeLessThanOrEqual(2000);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(pdfText(Buffer.from(await res.arrayBuffer()))).toContain('Amoxicillin 250 mg capsule');

    const [body, mac] = url.split('/share/')[1]!.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString());
    const longer = Buffer.from(JSON.stringify({ ...payload, e: payload.e + 3600 })).toString('base64url');
    const forged = await fetch(`${t.server.url}/share/${longer}.${mac}`);
    expect(forged.status).toBe(404);
    expect(((await forged.json()) as any).resourceType).toBe('OperationOutcome');
    expect((await fetch(`${t.server.url}/share/garbage`)).status).toBe(404);

    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now()) + 200));
    const expired = await fetch(url);
    expect(expired.status).toBe(410);
    expect(((await expired.json()) as any).issue[0].diagnostics).toContain('expired');
  });

  it('revokes one link by token, or all links of the prescription (410 afterwards); bad input → OperationOutcome', async () => {
    const make = async () => (await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link`)).body.parameter[0].valueUri as string;
    const one = await make();
    const two = await make();
    const three = await make();
    const revoked = await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link-revoke`, { resourceType: 'Parameters', parameter: [{ name: 'token', valueString: one }] });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.parameter[0]).toEqual({ name: 'revoked', valueInteger: 1 });
    expect((await fetch(one)).status).toBe(410);
    expect((await fetch(two)).status).toBe(200);
    const all = await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link-revoke`);
    expect(all.body.parameter[0].valueInteger).toBeGreaterThanOrEqual(2);
    expect((await fetch(two)).status).toBe(410);
    expect((await fetch(three)).status).toBe(410);

    expectOutcome(await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link?expires-in=0`), 400);
    expectOutcome(await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link?expires-in=99999999`), 400);
    expectOutcome(await call(t.base, 'POST', `/MedicationRequest/${mr.id}/$pdf-link-revoke?token=not-a-token`), 400);
    const other = await create(t.base, prescription(who));
    expectOutcome(await call(t.base, 'POST', `/MedicationRequest/${other.id}/$pdf-link-revoke?token=${encodeURIComponent(two)}`), 422);
    expectOutcome(await call(t.base, 'POST', '/MedicationRequest/unknown-rx/$pdf-link'), 404);
  });

  it("another tenant's links are /share/{tenant}/{token}, signed with that tenant's key", async () => {
    const made = await fetch(`${t.server.url}/admin/tenants`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'rx_clinic' }) });
    expect(made.status).toBe(201);
    const base = `${t.server.url}/t/rx_clinic/fhir`;
    const local = await people(base);
    const rx = await create(base, prescription(local));
    const url: string = (await call(base, 'POST', `/MedicationRequest/${rx.id}/$pdf-link`)).body.parameter[0].valueUri;
    expect(url).toMatch(new RegExp(`^${t.server.url}/share/rx_clinic/[\\w-]+\\.[\\w-]+$`));
    expect((await fetch(url)).status).toBe(200);
    const token = url.split('/').pop();
    expect((await fetch(`${t.server.url}/share/${token}`)).status).toBe(404); // not a link of the default tenant
    expect((await fetch(`${t.server.url}/share/nowhere/${token}`)).status).toBe(404);
  });
});
