/**
 * The SMART standalone launch as a real app does it: the `fhirclient` library (client-js) running
 * in headless Chromium (playwright-core) against the running server — discovery, authorize with
 * PKCE, the sign-in and consent pages, the code exchange, then reading the patient and an
 * Observation with the token. Skipped (with a message) when no Chromium binary is installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../support/server.js';
import { admin, adminToken, bearer, registerApp, startAuthServer } from '../support/auth.js';
import type { TestServer } from '../support/server.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => p && existsSync(p));
if (!CHROMIUM) console.warn('No Chromium binary (CHROMIUM_PATH, /usr/bin/chromium): the fhirclient browser launch test is skipped.');

const PASSWORD = 'Correct-Horse-42';
const SCOPE = 'launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs';
const fhirClientBundle = join(dirname(createRequire(import.meta.url).resolve('fhirclient/package.json').replace(/package\.json$/, 'x')), 'build', 'fhir-client.js');

/** The app's two pages: launch.html starts the authorization, app.html finishes it and reads data. */
function appPages(clientId: string, iss: string): Record<string, string> {
  const page = (script: string) => `<!doctype html><html><head><script src="/fhir-client.js"></script></head><body><pre id="out"></pre><script>${script}</script></body></html>`;
  return {
    '/launch.html': page(`FHIR.oauth2.authorize(${JSON.stringify({ clientId, scope: SCOPE, redirectUri: 'app.html', iss, pkceMode: 'required' })});`),
    '/app.html': page(`
      FHIR.oauth2.ready().then(async (client) => {
        const patient = await client.patient.read();
        const bundle = await client.request('Observation?patient=' + client.patient.id);
        const observation = await client.request('Observation/' + bundle.entry[0].resource.id);
        document.getElementById('out').dataset.result = JSON.stringify({ patient, observation, fhirUser: client.getFhirUser(), scope: client.state.tokenResponse.scope });
      }).catch((e) => { document.getElementById('out').dataset.result = JSON.stringify({ error: String(e) }); });`),
  };
}

describe.skipIf(!CHROMIUM)('SMART standalone launch with fhirclient in Chromium (pglite)', () => {
  let app: Server;
  let appOrigin: string;
  let pages: Record<string, string> = {};
  let t: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    app = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/fhir-client.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(fhirClientBundle));
      const html = pages[path];
      if (!html) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    // The app calls the token endpoint and the FHIR API from its own origin: CORS must allow it.
    t = await startAuthServer('pglite', { CORS_ORIGINS: appOrigin });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await new Promise((resolve) => app?.close(resolve));
  });

  it('signs in, picks the patient context and reads the patient and an Observation', async () => {
    const adm = await adminToken(t.base);
    const patient = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Chromium', given: ['Clara'] }] }, bearer(adm));
    const obs = await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'Heart rate' }, subject: { reference: `Patient/${patient.body.id}` }, valueQuantity: { value: 61, unit: '/min' } }, bearer(adm));
    await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'Other' }, subject: { reference: 'Patient/someone-else' } }, bearer(adm));
    await admin(t.base, 'users', { username: 'clara', password: PASSWORD, fhirUser: `Patient/${patient.body.id}` }, adm);
    const client = await registerApp(t.base, SCOPE, `${appOrigin}/app.html`);
    pages = appPages(client.clientId, t.base);

    const page = await browser.newPage();
    await page.goto(`${appOrigin}/launch.html`);
    await page.waitForURL(/\/auth\/authorize/);
    await page.fill('#username', 'clara');
    await page.fill('#password', PASSWORD);
    await page.click('#sign-in');
    await page.click('#allow');
    await page.waitForURL(/\/app\.html/);
    const result = JSON.parse((await page.locator('#out[data-result]').getAttribute('data-result', { timeout: 15_000 }))!);
    expect(result.error).toBeUndefined();
    expect(result.patient).toMatchObject({ resourceType: 'Patient', id: patient.body.id });
    expect(result.observation).toMatchObject({ resourceType: 'Observation', id: obs.body.id, subject: { reference: `Patient/${patient.body.id}` } });
    expect(result.fhirUser).toBe(`Patient/${patient.body.id}`);
    expect(result.scope).toContain('patient/Observation.rs');
    await page.close();
  }, 60_000);
});
