/**
 * SUBSCRIPTION_ALLOWED_HOSTS: endpoints outside the list are refused on write (400, nothing
 * written) and, for a subscription accepted before the list was set, at delivery time (nothing
 * sent, the subscription goes to error with the reason). Each engine, a server restarted on the
 * same database with the list.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, createTestDatabase, ENGINES } from '../support/server.js';
import { Receiver, sleep, until } from './receiver.js';

describe.each(ENGINES)('endpoint allow-list on %s', (engine) => {
  const receiver = new Receiver();
  let store: Record<string, string>;
  let cleanup: () => Promise<void>;
  const start = (env: Record<string, string> = {}): Promise<RunningServer> =>
    startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', MLLP_PORT: 'off', AUTH_MODE: 'open', ...store, ...env }), pino({ level: 'silent' }));

  beforeAll(async () => {
    await receiver.start();
    if (engine === 'pglite') {
      const dir = mkdtempSync(join(tmpdir(), 'carebridge-allow-'));
      store = { DATA_DIR: dir };
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    } else {
      const db = await createTestDatabase();
      store = { DATABASE_URL: db.url };
      cleanup = () => db.drop();
    }
  });
  afterAll(async () => {
    await receiver.stop();
    await cleanup?.();
  });

  const subscription = (endpoint: string) => ({
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'allow-list',
    criteria: 'Observation?code=allow-list',
    channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json' },
  });

  it('refuses hosts outside the list on write, and at delivery a subscription accepted before the list', async () => {
    // Without a list: any host.
    let server = await start();
    const early = await call(`${server.url}/fhir`, 'POST', '/Subscription', subscription(receiver.url('early')));
    expect(early.status).toBe(201);
    await server.close();

    server = await start({ SUBSCRIPTION_ALLOWED_HOSTS: 'localhost, *.lab.example' });
    try {
      const base = `${server.url}/fhir`;
      for (const endpoint of [receiver.url('x'), 'http://lab.example/hook', 'http://evil-lab.example/hook', 'http://a.lab.example.evil.org/hook']) {
        const r = await call(base, 'POST', '/Subscription', subscription(endpoint));
        expect(r.status, endpoint).toBe(400);
        expect(r.body.resourceType).toBe('OperationOutcome');
        expect(r.body.issue[0].diagnostics).toMatch(/SUBSCRIPTION_ALLOWED_HOSTS/);
      }
      for (const endpoint of ['http://a.lab.example/hook', 'https://b.c.lab.example/hook', 'http://LOCALHOST:9/hook']) {
        expect((await call(base, 'POST', '/Subscription', subscription(endpoint))).status, endpoint).toBe(201);
      }
      const listed = await call(base, 'GET', '/Subscription?_count=50');
      expect(listed.body.entry.map((e: any) => e.resource.channel.endpoint)).not.toContain(receiver.url('x'));

      // The subscription written before the list: its events are not sent; it goes to error.
      await call(base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ code: 'allow-list' }] } });
      await until(async () => (await call(base, 'GET', `/Subscription/${early.body.id}`)).body.status === 'error', 20_000, 'error status');
      expect((await call(base, 'GET', `/Subscription/${early.body.id}`)).body.error).toMatch(/not in SUBSCRIPTION_ALLOWED_HOSTS/);
      await sleep(500);
      expect(receiver.all('early')).toHaveLength(0);
    } finally {
      await server.close();
    }
  }, 60_000);
});
