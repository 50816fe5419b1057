/**
 * Delivery across a restart (PostgreSQL server; Redis when REDIS_URL is set):
 * - events committed while no relay runs are delivered when a server starts (outbox cursor);
 * - a notification waiting for its retry when the server stops is delivered by the next one, before
 *   the later event (the delivery state is in the database: also with the in-process queue).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource } from 'fhir/r4.js';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Writer } from '../../src/interactions/writer.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openDatabase } from '../../src/store/engines.js';
import { Tenants } from '../../src/store/tenants.js';
import { call, createTestDatabase } from '../support/server.js';

const QUEUES = process.env.REDIS_URL ? (['in-process', 'redis'] as const) : (['in-process'] as const);

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(process.env.DATABASE_URL).each(QUEUES)('rest-hook delivery across restarts (postgres, %s queue)', (queueKind) => {
  const prefix = `cbtest-${randomBytes(5).toString('hex')}`;
  let database: { url: string; drop(): Promise<void> };
  let receiver: Server;
  let port = 0;
  let failing = false;
  const received: Array<{ status: number; id: string; event: string }> = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const status = failing ? 503 : 200;
        received.push({ status, id: body ? JSON.parse(body).id : '', event: String(req.headers['x-carebridge-event']) });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as AddressInfo).port;
  });
  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await database.drop();
    if (queueKind === 'redis') {
      const redis = new Redis(process.env.REDIS_URL!);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  const start = (): Promise<RunningServer> =>
    startServer(
      loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        MLLP_PORT: 'off',
        AUTH_MODE: 'open',
        DATABASE_URL: database.url,
        ...(queueKind === 'redis' ? { REDIS_URL: process.env.REDIS_URL!, REDIS_PREFIX: prefix } : {}),
      }),
      pino({ level: 'silent' }),
    );

  it('delivers events written while no server ran, and (Redis) retries pending at shutdown', async () => {
    const code = `restart-${prefix}`;
    let server = await start();
    const base = `${server.url}/fhir`;
    const sub = await call(base, 'POST', '/Subscription', {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'restart test',
      criteria: `Observation?code=http://loinc.org|${code}`,
      channel: { type: 'rest-hook', endpoint: `http://127.0.0.1:${port}/hook`, payload: 'application/fhir+json' },
    });
    expect(sub.status).toBe(201);

    // 1. A notification failing when the server stops.
    failing = true;
    const first = await call(base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] } });
    await until(() => received.length >= 1, 15_000, 'first attempt');
    await server.close();

    // 2. Writes committed while no server (no relay) runs: straight through the Writer.
    const db = await openDatabase({ databaseUrl: database.url });
    const store = await new Tenants(db).store();
    const offline = await db.transaction((tx) =>
      new Writer({ store, baseUrl: '' }, tx).create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] } } as Resource),
    );
    await db.close();

    failing = false;
    server = await start();
    const expected = [first.body.id, offline.version!.id];
    try {
      await until(() => expected.every((id) => received.some((r) => r.status === 200 && r.id === id)), 30_000, 'deliveries after restart');
    } finally {
      await server.close();
    }
    // In event-number order: the one pending at shutdown first.
    expect(received.filter((r) => r.status === 200).map((r) => r.id)).toEqual(expected);
  }, 60_000);
});
