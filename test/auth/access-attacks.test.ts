/**
 * Crafted requests by a signed-in patient (Ann) trying to reach another patient's (Bob's) data,
 * or to do more than her scopes allow. Every response must be a refusal (401/403/404) or a result
 * without Bob's data — and Bob's resource ids must appear nowhere in what comes back (links, which
 * only echo the request, are left out of that check).
 */
import type { Basic } from 'fhir/r4.js';
import { generateKeyPair, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { signingKey } from '../../src/auth/keys.js';
import { issueAccessToken } from '../../src/auth/tokens.js';
import { Tenants } from '../../src/store/tenants.js';
import { registerWriteRule, type WriteRule } from '../../src/interactions/write-rules.js';
import { call, ENGINES } from '../support/server.js';
import { admin, adminToken, bearer, registerApp, useAuthServer, userToken } from '../support/auth.js';

const PASSWORD = 'Correct-Horse-42';
const LAB = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';

/** The body without Bundle links (they echo the request's own parameters). */
function withoutLinks(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLinks);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k, v]) => !(k === 'link' && Array.isArray(v) && v.every((l) => l && typeof l === 'object' && 'relation' in l)))
        .map(([k, v]) => [k, withoutLinks(v)]),
    );
  }
  return value;
}

/** A rule like the appointment booking's (which marks the Slot busy): a Flag makes a Basic. */
const CONSEQUENCE_RULE: WriteRule = {
  name: 'test-consequence',
  types: ['Flag'],
  async apply(writer, change) {
    if (change.action === 'create') await writer.create({ resourceType: 'Basic', code: { text: `made for Flag/${change.id}` } } as Basic);
  },
};

const observation = (subject: string, category: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
  code: { text: category },
  subject: { reference: `Patient/${subject}` },
  ...extra,
});

describe.each(ENGINES)('access attacks (%s)', (engine) => {
  const t = useAuthServer(engine);
  const ids = {} as Record<'ann' | 'bob' | 'dan' | 'annLab' | 'annVital' | 'annFocus' | 'bobObs' | 'bobEnc' | 'bobCond' | 'pract', string>;
  const tokens = {} as Record<'all' | 'obsOnly' | 'v1read' | 'write' | 'granular' | 'doctor', string>;
  let adm: string;
  /** Bob's ids: none may leak. */
  let foreign: string[];

  const as = (token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => call(t.base, method, path, body, { ...bearer(token), ...headers });

  /** Assert the status is one of `statuses` and nothing of Bob's is in the body. */
  async function attack(token: string, method: string, path: string, statuses: number[], body?: unknown, headers?: Record<string, string>) {
    const r = await as(token, method, path, body, headers);
    expect(statuses, `${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`).toContain(r.status);
    const text = JSON.stringify(withoutLinks(r.body ?? r.text));
    for (const id of foreign) expect(text, `${method} ${path} leaks ${id}`).not.toContain(id);
    return r;
  }
  const entryIds = (r: { body: any }) => (r.body.entry ?? []).map((e: any) => e.resource?.id).filter(Boolean);

  beforeAll(async () => {
    adm = await adminToken(t.base);
    const create = async (resource: Record<string, unknown>) => {
      const r = await as(adm, 'POST', `/${resource.resourceType as string}`, resource);
      expect(r.status, r.text).toBe(201);
      return r.body.id as string;
    };
    ids.ann = await create({ resourceType: 'Patient', name: [{ family: 'Annfamily' }] });
    ids.bob = await create({ resourceType: 'Patient', name: [{ family: 'Bobfamily' }] });
    ids.dan = await create({ resourceType: 'Patient', name: [{ family: 'Danfamily' }] });
    ids.pract = await create({ resourceType: 'Practitioner', name: [{ family: 'Doc' }] });
    ids.annLab = await create(observation(ids.ann, 'laboratory', { performer: [{ reference: `Practitioner/${ids.pract}` }] }));
    ids.annVital = await create(observation(ids.ann, 'vital-signs'));
    ids.annFocus = await create(observation(ids.ann, 'survey', { focus: [{ reference: `Patient/${ids.dan}` }] }));
    ids.bobObs = await create(observation(ids.bob, 'laboratory', { performer: [{ reference: `Practitioner/${ids.pract}` }] }));
    ids.bobEnc = await create({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${ids.bob}` } });
    ids.bobCond = await create({ resourceType: 'Condition', subject: { reference: `Patient/${ids.bob}` }, code: { text: 'secret' } });
    foreign = [ids.bob, ids.bobObs, ids.bobEnc, ids.bobCond];

    await admin(t.base, 'users', { username: 'ann', password: PASSWORD, fhirUser: `Patient/${ids.ann}` }, adm);
    await admin(t.base, 'users', { username: 'doctor', password: PASSWORD, fhirUser: `Practitioner/${ids.pract}` }, adm);
    const scopes: Record<keyof typeof tokens, string> = {
      all: 'launch/patient patient/*.rs',
      obsOnly: 'launch/patient patient/Observation.rs',
      v1read: 'launch/patient patient/*.read',
      write: 'launch/patient patient/*.cruds',
      granular: `launch/patient patient/Observation.rs?category=${LAB}`,
      doctor: 'user/*.rs',
    };
    for (const [name, scope] of Object.entries(scopes) as Array<[keyof typeof tokens, string]>) {
      const app = await registerApp(t.base, scope);
      const username = name === 'doctor' ? 'doctor' : 'ann';
      tokens[name] = (await userToken(t.base, app, { username, password: PASSWORD, scope })).access_token;
    }
  });

  it('direct reads of the other patient are 404', async () => {
    await attack(tokens.all, 'GET', `/Patient/${ids.bob}`, [404]);
    await attack(tokens.all, 'GET', `/Observation/${ids.bobObs}`, [404]);
    await attack(tokens.all, 'GET', `/Observation/${ids.bobObs}/_history/1`, [404]);
    await attack(tokens.all, 'GET', `/Encounter/${ids.bobEnc}`, [404]);
    await attack(tokens.v1read, 'GET', `/Condition/${ids.bobCond}`, [404]);
    // The same answer as for an id that does not exist.
    const missing = await as(tokens.all, 'GET', '/Observation/does-not-exist');
    const hidden = await as(tokens.all, 'GET', `/Observation/${ids.bobObs}`);
    expect(hidden.body.issue[0].diagnostics).toBe(missing.body.issue[0].diagnostics);
    // Positive control: her own.
    expect((await as(tokens.all, 'GET', `/Patient/${ids.ann}`)).status).toBe(200);
  });

  it('searches are limited to her compartment (also chained, reverse-chained, system and POST _search)', async () => {
    const own = await attack(tokens.all, 'GET', '/Observation', [200]);
    expect(entryIds(own).sort()).toEqual([ids.annLab, ids.annVital, ids.annFocus].sort());
    expect(entryIds(await attack(tokens.all, 'GET', `/Observation?subject=Patient/${ids.bob}`, [200]))).toEqual([]);
    expect(entryIds(await attack(tokens.all, 'GET', '/Observation?subject:Patient.name=Bobfamily', [200]))).toEqual([]);
    expect(entryIds(await attack(tokens.all, 'GET', `/Patient?_has:Observation:subject:_id=${ids.bobObs}`, [200]))).toEqual([]);
    expect(entryIds(await attack(tokens.all, 'GET', '/Patient', [200]))).toEqual([ids.ann]);
    expect(entryIds(await attack(tokens.all, 'GET', `/Condition?patient=${ids.bob}`, [200]))).toEqual([]);
    expect(entryIds(await attack(tokens.all, 'GET', `/?_id=${ids.bobObs},${ids.bob}`, [200]))).toEqual([]);
    expect(entryIds(await attack(tokens.all, 'GET', '/?_type=Observation,Condition,Encounter', [200])).sort()).toEqual([ids.annLab, ids.annVital, ids.annFocus].sort());
    const post = await attack(tokens.all, 'POST', '/Observation/_search', [200], `subject=Patient/${ids.bob}`, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(entryIds(post)).toEqual([]);
    const total = await attack(tokens.all, 'GET', '/Observation?_summary=count', [200]);
    expect(total.body.total).toBe(3);
  });

  it('compartment search into the other patient is 404; her own works', async () => {
    await attack(tokens.all, 'GET', `/Patient/${ids.bob}/Observation`, [404]);
    await attack(tokens.all, 'GET', `/Patient/${ids.bob}/*`, [404]);
    const own = await attack(tokens.all, 'GET', `/Patient/${ids.ann}/Observation`, [200]);
    expect(entryIds(own)).toEqual(expect.arrayContaining([ids.annLab, ids.annVital, ids.annFocus]));
  });

  it('_include and _revinclude never reach outside her compartment', async () => {
    const focus = await attack(tokens.all, 'GET', `/Observation?_id=${ids.annFocus}&_include=Observation:focus`, [200]);
    expect(entryIds(focus)).toEqual([ids.annFocus]);
    const rev = await attack(tokens.all, 'GET', `/Practitioner?_id=${ids.pract}&_revinclude=Observation:performer`, [200]);
    expect(entryIds(rev).sort()).toEqual([ids.pract, ids.annLab].sort());
    const iterate = await attack(tokens.all, 'GET', `/Observation?_id=${ids.annLab}&_include=Observation:performer&_revinclude:iterate=Observation:performer`, [200]);
    expect(entryIds(iterate)).not.toContain(ids.bobObs);
    const wildcard = await attack(tokens.all, 'GET', `/Patient?_id=${ids.ann}&_revinclude=*&_include=*`, [200]);
    expect(entryIds(wildcard)).toContain(ids.ann);
  });

  it('history is filtered (system, type) and refused for her neighbour (instance)', async () => {
    // A large page: sign-ins and token requests are on the audit trail (AuditEvents, left out here).
    const system = await attack(tokens.all, 'GET', '/_history?_count=1000', [200]);
    expect(entryIds(system)).toContain(ids.annLab);
    const type = await attack(tokens.all, 'GET', '/Observation/_history', [200]);
    expect(entryIds(type)).toContain(ids.annVital);
    await attack(tokens.all, 'GET', `/Patient/${ids.bob}/_history`, [404]);
    await attack(tokens.all, 'GET', `/Observation/${ids.bobObs}/_history`, [404]);
  });

  it('transaction and batch entries are each checked; a denied entry fails the whole transaction', async () => {
    const batch = await attack(tokens.all, 'POST', '/', [200], {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'GET', url: `Patient/${ids.bob}` } }, { request: { method: 'GET', url: `Observation?subject=Patient/${ids.bob}` } }, { request: { method: 'GET', url: `Patient/${ids.ann}` } }],
    });
    expect(batch.body.entry[0].response.status).toMatch(/^404/);
    expect(batch.body.entry[2].response.status).toMatch(/^200/);
    const before = await as(adm, 'GET', '/Observation?_summary=count');
    await attack(tokens.write, 'POST', '/', [403], {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'Observation' }, resource: observation(ids.ann, 'laboratory') },
        { request: { method: 'POST', url: 'Observation' }, resource: observation(ids.bob, 'laboratory') },
      ],
    });
    await attack(tokens.write, 'POST', '/', [403, 404], {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'Observation' }, resource: observation(ids.ann, 'laboratory') },
        { request: { method: 'DELETE', url: `Observation/${ids.bobObs}` } },
      ],
    });
    await attack(tokens.all, 'POST', '/', [403], { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Observation' }, resource: observation(ids.ann, 'laboratory') }] });
    const after = await as(adm, 'GET', '/Observation?_summary=count');
    expect(after.body.total).toBe(before.body.total);
    expect((await as(adm, 'GET', `/Observation/${ids.bobObs}`)).status).toBe(200);
  });

  it('writes: read scopes cannot write; write scopes stay inside her compartment', async () => {
    await attack(tokens.all, 'POST', '/Observation', [403], observation(ids.ann, 'laboratory'));
    await attack(tokens.v1read, 'PUT', `/Observation/${ids.annLab}`, [403], { ...observation(ids.ann, 'laboratory'), id: ids.annLab });
    await attack(tokens.write, 'POST', '/Observation', [403], observation(ids.bob, 'laboratory'));
    await attack(tokens.write, 'PUT', `/Observation/${ids.bobObs}`, [404], { ...observation(ids.ann, 'laboratory'), id: ids.bobObs });
    await attack(tokens.write, 'PUT', `/Observation/${ids.annVital}`, [403], { ...observation(ids.bob, 'vital-signs'), id: ids.annVital });
    await attack(tokens.write, 'DELETE', `/Observation/${ids.bobObs}`, [404]);
    await attack(tokens.write, 'PATCH', `/Observation/${ids.bobObs}`, [404], [{ op: 'replace', path: '/status', value: 'cancelled' }], { 'content-type': 'application/json-patch+json' });
    await attack(tokens.write, 'POST', '/Practitioner', [403], { resourceType: 'Practitioner' });
    // Conditional writes match across the tenant (a conditional create would return the match).
    await attack(tokens.write, 'POST', '/Observation', [403], observation(ids.ann, 'laboratory'), { 'if-none-exist': `_id=${ids.bobObs}` });
    await attack(tokens.write, 'PUT', `/Observation?_id=${ids.bobObs}`, [403], observation(ids.ann, 'laboratory'));
    await attack(tokens.write, 'DELETE', `/Observation?subject=Patient/${ids.bob}`, [403]);
    await attack(tokens.write, 'POST', '/', [403], {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'POST', url: 'Observation' }, resource: observation(ids.ann, 'laboratory', { performer: [{ reference: 'Patient?name=Bobfamily' }] }) }],
    });
    await attack(tokens.write, 'POST', '/', [403], {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'POST', url: 'Observation', ifNoneExist: `_id=${ids.bobObs}` }, resource: observation(ids.ann, 'laboratory') }],
    });
    const bob = await as(adm, 'GET', `/Observation/${ids.bobObs}`);
    expect(bob.body.status).toBe('final');
    // Positive control: her own observation.
    expect((await as(tokens.write, 'POST', '/Observation', observation(ids.ann, 'vital-signs'))).status).toBe(201);
  });

  it('writes other write rules make in consequence are the server\'s: not limited by the caller\'s scopes', async () => {
    registerWriteRule(CONSEQUENCE_RULE);
    const flag = await attack(tokens.write, 'POST', '/Flag', [201], { resourceType: 'Flag', status: 'active', code: { text: 'derive' }, subject: { reference: `Patient/${ids.ann}` } });
    const made = await as(adm, 'GET', `/Basic?code:text=${encodeURIComponent(`made for Flag/${flag.body.id}`)}`);
    expect(made.body.entry).toHaveLength(1);
    // Asked for directly, the same write is refused; and the rule does not open a way to other patients.
    await attack(tokens.write, 'POST', '/Basic', [403], { resourceType: 'Basic', code: { text: 'direct' } });
    await attack(tokens.write, 'POST', '/Flag', [403], { resourceType: 'Flag', status: 'active', code: { text: 'derive' }, subject: { reference: `Patient/${ids.bob}` } });
  });

  it('scopes without the type are 403', async () => {
    await attack(tokens.obsOnly, 'GET', `/Patient/${ids.ann}`, [403]);
    await attack(tokens.obsOnly, 'GET', '/Condition', [403]);
    await attack(tokens.obsOnly, 'GET', '/?_type=Condition', [403]);
    await attack(tokens.obsOnly, 'GET', `/Encounter/${ids.bobEnc}`, [403]);
    const own = await attack(tokens.obsOnly, 'GET', '/Observation', [200]);
    expect(entryIds(own)).toEqual(expect.arrayContaining([ids.annLab, ids.annVital]));
    const system = await attack(tokens.obsOnly, 'GET', '/', [200]);
    expect(entryIds(system)).toEqual(expect.arrayContaining([ids.annLab, ids.annVital]));
  });

  it('operations: $reindex needs the administrator; $validate needs a write scope', async () => {
    await attack(tokens.all, 'POST', '/$reindex', [403]);
    await attack(tokens.all, 'POST', '/Observation/$validate', [403], observation(ids.ann, 'laboratory'));
    await attack(tokens.write, 'POST', '/Observation/$validate', [200], observation(ids.ann, 'laboratory'));
  });

  it('granular v2 scopes (category=laboratory) limit reads and searches', async () => {
    const search = await attack(tokens.granular, 'GET', '/Observation', [200]);
    expect(entryIds(search)).toEqual([ids.annLab]);
    await attack(tokens.granular, 'GET', `/Observation/${ids.annVital}`, [404]);
    expect(entryIds(await attack(tokens.granular, 'GET', '/Observation?category=vital-signs', [200]))).toEqual([]);
    expect((await as(tokens.granular, 'GET', `/Observation/${ids.annLab}`)).status).toBe(200);
  });

  it('Subscription criteria are limited to her own data', async () => {
    const sub = (criteria: string) => ({ resourceType: 'Subscription', status: 'requested', reason: 'watch', criteria, channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook', payload: 'application/fhir+json' } });
    await attack(tokens.write, 'POST', '/Subscription', [403], sub('Observation?code=secret'));
    await attack(tokens.write, 'POST', '/Subscription', [403], sub(`Observation?subject=Patient/${ids.bob}`));
    await attack(tokens.write, 'POST', '/Subscription', [403], sub('Condition'));
    expect((await as(tokens.write, 'POST', '/Subscription', sub(`Observation?subject=Patient/${ids.ann}`))).status).toBe(201);
  });

  it('bad tokens: other tenant, expired, forged signature, alg none, tampered claims → 401', async () => {
    const db = t.server.db;
    const tenants = new Tenants(db);
    const other = await tenants.store('attack_other');
    const foreignTenant = (await issueAccessToken(other, t.base, { clientId: 'x', scope: 'system/*.cruds' })).token;
    const key = await signingKey(await tenants.store('default'));
    const sign = (claims: Record<string, unknown>, exp: number) =>
      new SignJWT({ client_id: 'x', scope: 'system/*.cruds', ...claims }).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).setJti(crypto.randomUUID()).setSubject('x').setExpirationTime(exp).sign(key.privateKey);
    const now = Math.floor(Date.now() / 1000);
    const wrongTenantClaim = await sign({ tnt: 'attack_other' }, now + 600);
    const expired = await sign({ tnt: 'default' }, now - 60);
    const attacker = await generateKeyPair('ES256');
    const forged = await new SignJWT({ tnt: 'default', client_id: 'x', scope: 'system/*.cruds' }).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).setJti('j').setExpirationTime('5m').sign(attacker.privateKey);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64({ tnt: 'default', client_id: 'x', scope: 'system/*.cruds', jti: 'n', exp: now + 600 })}.`;
    const [h, p, s] = tokens.all.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${b64({ ...claims, patient: ids.bob, scope: 'system/*.cruds' })}.${s}`;
    for (const [name, token] of Object.entries({ foreignTenant, wrongTenantClaim, expired, forged, none, tampered })) {
      const r = await attack(token, 'GET', `/Patient/${ids.bob}`, [401]);
      expect(r.headers.get('www-authenticate'), name).toMatch(/error="invalid_token"/);
    }
    await attack('not-a-jwt', 'GET', '/Patient', [401]);
    const basic = await call(t.base, 'GET', '/Patient', undefined, { authorization: 'Basic eDp5' });
    expect(basic.status).toBe(401);
  });

  it('a practitioner with user/*.rs sees both patients (positive control of the limits above)', async () => {
    const all = await as(tokens.doctor, 'GET', '/Observation');
    expect(entryIds(all)).toEqual(expect.arrayContaining([ids.annLab, ids.bobObs]));
    expect((await as(tokens.doctor, 'GET', `/Patient/${ids.bob}`)).status).toBe(200);
  });
});
