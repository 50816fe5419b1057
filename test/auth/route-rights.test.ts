/**
 * Every route of the FHIR router has a scope mapping (src/auth/route-rights.ts): a new operation
 * without one fails here instead of going live administrator-only or unchecked. Then a few
 * operations through HTTP with patient/ and user/ tokens: the types they touch are checked, and an
 * instance operation on another patient's resource is 404 like a read.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken } from '../../src/auth/tokens.js';
import { ADMIN_ONLY, rightsOf } from '../../src/auth/route-rights.js';
import { ROUTES } from '../../src/http/fhir-router.js';
import { Tenants } from '../../src/store/tenants.js';
import { call, ENGINES } from '../support/server.js';
import { adminToken, bearer, useAuthServer } from '../support/auth.js';
import { prescription } from '../workflows/medication-support.js';

describe('route rights table', () => {
  it('maps every interaction and operation in ROUTES', () => {
    const unmapped = [...new Set(ROUTES.map((r) => r.interaction))].filter((i) => rightsOf(i) === undefined);
    expect(unmapped, 'add these to ROUTE_RIGHTS in src/auth/route-rights.ts').toEqual([]);
  });

  it('gives every operation a need (or says administrator-only), and $reindex is administrator-only', () => {
    for (const route of ROUTES.filter((r) => r.interaction.startsWith('$'))) {
      const rights = rightsOf(route.interaction)!;
      expect(rights === ADMIN_ONLY || rights.length > 0, route.interaction).toBe(true);
    }
    expect(rightsOf('$reindex')).toBe(ADMIN_ONLY);
    expect(rightsOf('toString')).toBeUndefined(); // not fooled by Object.prototype
  });
});

describe.each(ENGINES)('operation scopes through HTTP (%s)', (engine) => {
  const t = useAuthServer(engine);
  const ids = {} as Record<'ann' | 'bob' | 'doc' | 'annRx' | 'bobRx' | 'bobTask', string>;
  /** A token as the authorization server would issue it (the flow itself is tested in oauth.test.ts). */
  const token = async (scope: string, claims: { patient?: string; fhirUser?: string } = {}) => {
    const store = await new Tenants(t.server.db).store('default');
    return bearer((await issueAccessToken(store, t.base, { clientId: 'test-app', scope, userId: claims.fhirUser ? 'u-1' : undefined, ...claims })).token);
  };
  const as = async (auth: Record<string, string>, method: string, path: string, body?: unknown) => call(t.base, method, path, body, auth);
  const expectStatus = (r: { status: number; text: string }, status: number, what: string) => expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBe(status);

  beforeAll(async () => {
    const adm = bearer(await adminToken(t.base));
    const create = async (resource: Record<string, unknown>) => {
      const r = await as(adm, 'POST', `/${resource.resourceType as string}`, resource);
      expect(r.status, r.text).toBe(201);
      return r.body as { id: string };
    };
    const ann = await create({ resourceType: 'Patient', name: [{ family: 'Ann' }] });
    const bob = await create({ resourceType: 'Patient', name: [{ family: 'Bob' }] });
    const doc = await create({ resourceType: 'Practitioner', name: [{ family: 'Doc' }] });
    Object.assign(ids, { ann: ann.id, bob: bob.id, doc: doc.id });
    ids.annRx = (await create(prescription({ patient: ann, practitioner: doc }))).id;
    ids.bobRx = (await create(prescription({ patient: bob, practitioner: doc }))).id;
    ids.bobTask = (await create({ resourceType: 'Task', status: 'requested', intent: 'order', for: { reference: `Patient/${bob.id}` }, owner: { reference: `Practitioner/${doc.id}` } })).id;
  });

  it('patient/ tokens: their own prescription PDF, not another patient’s; no $reindex, no Task answers, no booking with read scopes', async () => {
    const ann = await token('patient/*.rs', { patient: ids.ann });
    const pdf = await fetch(`${t.base}/MedicationRequest/${ids.annRx}/$pdf`, { method: 'POST', headers: { ...ann, accept: 'application/pdf' } });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toMatch(/application\/pdf/);
    expectStatus(await as(ann, 'POST', `/MedicationRequest/${ids.bobRx}/$pdf`), 404, "Bob's PDF");
    expectStatus(await as(ann, 'POST', `/MedicationRequest/${ids.bobRx}/$pdf-link`), 404, "a share link to Bob's PDF");
    expectStatus(await as(ann, 'POST', '/$reindex'), 403, '$reindex');
    expectStatus(await as(ann, 'POST', `/Task/${ids.bobTask}/$accept`), 403, '$accept with read scopes');
    expectStatus(await as(ann, 'POST', '/Appointment/$book', { resourceType: 'Parameters' }), 403, '$book with read scopes');
    // Finding free slots needs search on Appointment and Slot (availability, readable by patients).
    expect((await as(ann, 'GET', '/Appointment/$find?start=2030-01-01&end=2030-01-02')).status).not.toBe(403);
    expectStatus(await as(await token('patient/Appointment.rs', { patient: ids.ann }), 'GET', '/Appointment/$find?start=2030-01-01&end=2030-01-02'), 403, '$find without Slot');
    // Subscription operations are like reading a Subscription: not for patient-limited tokens.
    expectStatus(await as(ann, 'GET', '/Subscription/$status?id=x'), 403, '$status');
  });

  it('patient/ write tokens: no calendar feed for another patient; an operation still needs every type it touches', async () => {
    const annWrite = await token('patient/*.cruds', { patient: ids.ann });
    expectStatus(await as(annWrite, 'POST', `/Patient/${ids.bob}/$calendar-token`), 404, "a calendar feed of Bob's");
    // Task is outside the patient compartment: patient tokens never answer Tasks.
    expectStatus(await as(annWrite, 'POST', `/Task/${ids.bobTask}/$accept`), 403, "accepting Bob's Task");
    expectStatus(await as(await token('patient/Task.u', { patient: ids.ann }), 'POST', `/Task/${ids.bobTask}/$approve-renewal`), 403, '$approve-renewal without MedicationRequest create');
    expectStatus(await as(await token('patient/MedicationRequest.c', { patient: ids.ann }), 'POST', '/ActivityDefinition/x/$apply'), 403, '$apply without ActivityDefinition read');
  });

  it('user/ tokens of a practitioner: any prescription PDF; Task answers need update rights; $reindex stays administrator-only', async () => {
    const doctor = await token('openid fhirUser user/*.rs', { fhirUser: `Practitioner/${ids.doc}` });
    const pdf = await fetch(`${t.base}/MedicationRequest/${ids.bobRx}/$pdf`, { method: 'POST', headers: { ...doctor, accept: 'application/pdf' } });
    expect(pdf.status).toBe(200);
    expectStatus(await as(doctor, 'POST', `/Task/${ids.bobTask}/$accept`), 403, '$accept with read scopes');
    expectStatus(await as(doctor, 'POST', '/$reindex'), 403, '$reindex');
    const writer = await token('openid fhirUser user/Task.u', { fhirUser: `Practitioner/${ids.doc}` });
    const accepted = await as(writer, 'POST', `/Task/${ids.bobTask}/$accept`);
    expectStatus(accepted, 200, '$accept with Task update');
    expect(accepted.body.status).toBe('accepted');
    expectStatus(await as(await token('system/*.cruds'), 'POST', '/$reindex', { resourceType: 'Parameters' }), 202, '$reindex as system/*.*');
  });
});
