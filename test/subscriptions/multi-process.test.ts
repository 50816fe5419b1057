/**
 * Two CareBridge servers (two startServer instances in this test process) sharing one PostgreSQL
 * database and one Redis: writes through both, every subscription event is numbered once and
 * delivered once, in order; a websocket bound on one server gets the events whichever server
 * delivered them (Redis pub/sub). Needs DATABASE_URL and REDIS_URL.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, createTestDatabase } from '../support/server.js';
import { Receiver, removeKeys, sleep, until, wsClient } from './receiver.js';

describe.runIf(process.env.DATABASE_URL && process.env.REDIS_URL)('two servers, one database, one Redis', () => {
  const prefix = `cbtest-${randomBytes(5).toString('hex')}`;
  const receiver = new Receiver();
  let database: { url: string; drop(): Promise<void> };
  let a: RunningServer;
  let b: RunningServer;

  const start = () =>
    startServer(
      loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', MLLP_PORT: 'off', AUTH_MODE: 'open', DATABASE_URL: database.url, REDIS_URL: process.env.REDIS_URL!, REDIS_PREFIX: prefix }),
      pino({ level: 'silent' }),
    );

  beforeAll(async () => {
    await receiver.start();
    database = await createTestDatabase();
    a = await start();
    b = await start();
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await receiver.stop();
    await database?.drop();
    await removeKeys(prefix);
  });

  it('each event numbered and delivered once, in commit order, with writes through both servers', async () => {
    const code = `mp-${prefix}`;
    const sub = await call(`${a.url}/fhir`, 'POST', '/Subscription', {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'two processes',
      criteria: `Observation?code=${code}`,
      channel: { type: 'rest-hook', endpoint: receiver.url('mp'), payload: 'application/fhir+json' },
    });
    expect(sub.status).toBe(201);
    const ws = await wsClient(`ws://127.0.0.1:${b.port}/fhir/$websocket`);
    const wsSub = await call(`${b.url}/fhir`, 'POST', '/Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'ws', criteria: `Observation?code=${code}`, channel: { type: 'websocket' } });
    ws.ws.send(`bind ${wsSub.body.id}`);
    expect(await ws.next()).toBe(`bound ${wsSub.body.id}`);

    const ids: string[] = [];
    // Concurrent writers on both servers: commit order is what the numbers must follow.
    await Promise.all(
      [a, b].map(async (server) => {
        for (let i = 0; i < 20; i++) {
          const r = await call(`${server.url}/fhir`, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ code }] } });
          expect(r.status).toBe(201);
          ids.push(r.body.id);
        }
      }),
    );
    await until(() => receiver.ok('mp').length >= 40, 30_000, '40 deliveries');
    await until(() => ws.frames.filter((f) => f.startsWith('ping')).length >= 40, 30_000, '40 pings');
    await sleep(1500);
    const got = receiver.ok('mp');
    expect(got.map((d) => d.number)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(new Set(got.map((d) => JSON.parse(d.body).id))).toEqual(new Set(ids));
    expect(ws.frames.filter((f) => f.startsWith('ping'))).toHaveLength(40);
    // Numbers follow commit order: the events table agrees with the outbox order.
    const events = await call(`${b.url}/fhir`, 'GET', `/Subscription/${sub.body.id}/$events`);
    const focus = events.body.entry.slice(1).map((e: any) => String(e.fullUrl).split('/').pop());
    expect(focus).toEqual(got.map((d) => JSON.parse(d.body).id));
    ws.ws.close();
  }, 60_000);
});
