/**
 * R4 rest-hook Subscriptions end to end: writes over HTTP → outbox → relay → jobs → POSTs to a
 * real HTTP receiver on loopback. On each engine, with the in-process queue and (REDIS_URL set)
 * with BullMQ on Redis under a key prefix of this run, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';

interface Delivery {
  hook: string;
  status: number;
  method: string;
  /** What follows /hook/<name>/ in the request path. */
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  event: string;
}

/** A webhook receiver: records every request; `fail` decides which hooks answer 500. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  readonly failing = new Set<string>();
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // /hook/<name> (empty payload, POST) or /hook/<name>/<type>/<id> (full resource, PUT).
        const [hook = '', ...rest] = (req.url ?? '').replace(/^\/hook\//, '').split('/');
        const status = this.failing.has(hook) ? 500 : 200;
        this.deliveries.push({ hook, status, method: req.method ?? '', path: rest.join('/'), headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), event: String(req.headers['x-carebridge-event']) });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  url(hook: string): string {
    return `http://127.0.0.1:${this.port}/hook/${hook}`;
  }

  ok(hook: string): Delivery[] {
    return this.deliveries.filter((d) => d.hook === hook && d.status === 200);
  }

  all(hook: string): Delivery[] {
    return this.deliveries.filter((d) => d.hook === hook);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Quiet period after which "no (more) notifications" is asserted: several relay polls and job rounds. */
const QUIET_MS = 1500;

type QueueKind = 'in-process' | 'redis';
const QUEUES: QueueKind[] = process.env.REDIS_URL ? ['in-process', 'redis'] : ['in-process'];
const MATRIX = ENGINES.flatMap((engine) => QUEUES.map((queue) => [engine, queue] as const));

describe.each(MATRIX)('rest-hook Subscriptions on %s, %s queue', (engine, queueKind) => {
  const prefix = `cbtest-${randomBytes(5).toString('hex')}`;
  const t = useTestServer(engine, queueKind === 'redis' ? { REDIS_URL: process.env.REDIS_URL!, REDIS_PREFIX: prefix } : {});
  const receiver = new Receiver();
  const tag = randomBytes(4).toString('hex');

  beforeAll(async () => {
    await receiver.start();
  });
  afterAll(async () => {
    await receiver.stop();
    if (queueKind === 'redis') {
      // Close the server (its queues) first; useTestServer's own close afterwards is a no-op.
      await t.close();
      await removeKeys(prefix);
    }
  });

  function subscription(hook: string, code: string, extra: Record<string, unknown> = {}) {
    return {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'test',
      criteria: `Observation?code=http://loinc.org|${code}`,
      channel: { type: 'rest-hook', endpoint: receiver.url(hook), payload: 'application/fhir+json', header: ['Authorization: Bearer t0ken'] },
      ...extra,
    };
  }

  function observation(code: string, value = 1) {
    return { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, valueQuantity: { value } };
  }

  it('rejects endpoints that are not http(s), unknown criteria parameters, other channel types', async () => {
    for (const endpoint of ['ftp://example.org/x', 'mailto:a@example.org', '/relative', 'not a url']) {
      const r = await call(t.base, 'POST', '/Subscription', { ...subscription('x', 'x'), channel: { type: 'rest-hook', endpoint } });
      expect(r.status, endpoint).toBe(400);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
    expect((await call(t.base, 'POST', '/Subscription', { ...subscription('x', 'x'), criteria: 'Observation?nonsense=1' })).status).toBe(400);
    expect((await call(t.base, 'POST', '/Subscription', { ...subscription('x', 'x'), channel: { type: 'websocket' } })).status).toBe(400);
    const badPayload = { ...subscription('x', 'x'), channel: { type: 'rest-hook', endpoint: receiver.url('x'), payload: 'application/fhir+xml' } };
    expect((await call(t.base, 'POST', '/Subscription', badPayload)).status).toBe(400);
  });

  it('notifies once per matching create (full resource / empty payload), not for others; update away, delete: none', async () => {
    const code = `c-${tag}-1`;
    const full = await call(t.base, 'POST', '/Subscription', subscription('full', code));
    expect(full.status).toBe(201);
    expect(full.body.status).toBe('active'); // requested → active (no handshake)
    const empty = await call(t.base, 'POST', '/Subscription', { ...subscription('empty', code), channel: { type: 'rest-hook', endpoint: receiver.url('empty') } });
    expect(empty.status).toBe(201);

    const obs = await call(t.base, 'POST', '/Observation', observation(code));
    expect(obs.status).toBe(201);
    await call(t.base, 'POST', '/Observation', observation(`other-${tag}`)); // does not match
    await until(() => receiver.all('full').length >= 1 && receiver.all('empty').length >= 1, 15_000, 'first notifications');
    await sleep(QUIET_MS);
    expect(receiver.all('full')).toHaveLength(1);
    const [d] = receiver.all('full');
    expect(d!.headers.authorization).toBe('Bearer t0ken');
    expect(d!.headers['content-type']).toBe('application/fhir+json');
    expect(JSON.parse(d!.body)).toMatchObject({ resourceType: 'Observation', id: obs.body.id, meta: { versionId: '1' } });
    expect(d!.method).toBe('PUT'); // full resource: an update to [endpoint]/[type]/[id]
    expect(d!.path).toBe(`Observation/${obs.body.id}`);
    expect(receiver.all('empty')).toHaveLength(1);
    expect(receiver.all('empty')[0]!.body).toBe('');
    expect(receiver.all('empty')[0]!.method).toBe('POST');
    expect(receiver.all('empty')[0]!.path).toBe('');

    // Still matching update → one more, with version 2.
    const v2 = await call(t.base, 'PUT', `/Observation/${obs.body.id}`, { ...observation(code, 2), id: obs.body.id });
    expect(v2.status).toBe(200);
    await until(() => receiver.all('full').length >= 2, 15_000, 'update notification');
    expect(JSON.parse(receiver.all('full')[1]!.body).meta.versionId).toBe('2');

    // Update so that it no longer matches → none.
    const away = await call(t.base, 'PUT', `/Observation/${obs.body.id}`, { ...observation(`moved-${tag}`), id: obs.body.id });
    expect(away.status).toBe(200);
    // Delete (of another matching resource, after its create was notified) → none.
    const doomed = await call(t.base, 'POST', '/Observation', observation(code, 3));
    await until(() => receiver.all('full').length >= 3, 15_000, 'third create');
    expect((await call(t.base, 'DELETE', `/Observation/${doomed.body.id}`)).status).toBe(204);
    await sleep(QUIET_MS);
    expect(receiver.all('full')).toHaveLength(3);
    expect(receiver.all('empty')).toHaveLength(3);
  });

  it('a transaction with 50 matching entries gives 50 notifications, each once', async () => {
    const code = `c-${tag}-50`;
    expect((await call(t.base, 'POST', '/Subscription', subscription('fifty', code))).status).toBe(201);
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: Array.from({ length: 50 }, (_, i) => ({ resource: observation(code, i), request: { method: 'POST', url: 'Observation' } })),
    };
    const started = Date.now();
    const r = await call(t.base, 'POST', '', bundle);
    expect(r.status).toBe(200);
    const ids = new Set<string>(r.body.entry.map((e: any) => String(e.response.location).split('/')[1]));
    expect(ids.size).toBe(50);
    await until(() => receiver.all('fifty').length >= 50, 30_000, '50 notifications');
    const latency = Date.now() - started;
    await sleep(QUIET_MS);
    const got = receiver.all('fifty').map((d) => JSON.parse(d.body).id as string);
    expect(got).toHaveLength(50);
    expect(new Set(got)).toEqual(ids);
    console.log(`[${engine}/${queueKind}] 50-entry transaction → 50 notifications in ${latency} ms`);
  });

  it('receiver failing (500) then recovering: subscription goes to error and back, every event delivered', async () => {
    const code = `c-${tag}-flaky`;
    receiver.failing.add('flaky');
    const sub = await call(t.base, 'POST', '/Subscription', subscription('flaky', code));
    expect(sub.status).toBe(201);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await call(t.base, 'POST', '/Observation', observation(code, i))).body.id);
    // Three failed attempts (≈ 0 s, 1 s, 3 s) put the subscription in error, with the error text.
    await until(async () => (await call(t.base, 'GET', `/Subscription/${sub.body.id}`)).body.status === 'error', 30_000, 'status error');
    const inError = (await call(t.base, 'GET', `/Subscription/${sub.body.id}`)).body;
    expect(inError.error).toMatch(/HTTP 500/);
    // An event while in error is still delivered later.
    created.push((await call(t.base, 'POST', '/Observation', observation(code, 99))).body.id);
    await sleep(500);
    receiver.failing.delete('flaky');
    await until(() => new Set(receiver.ok('flaky').map((d) => d.event)).size >= 6, 40_000, 'all delivered after recovery');
    await until(async () => (await call(t.base, 'GET', `/Subscription/${sub.body.id}`)).body.status === 'active', 15_000, 'status active');
    await sleep(QUIET_MS);
    const ok = receiver.ok('flaky');
    // Each event delivered; a duplicate could only repeat the same event with the same resource.
    const byEvent = new Map<string, Set<string>>();
    for (const d of ok) {
      const id = JSON.parse(d.body).id as string;
      byEvent.set(d.event, (byEvent.get(d.event) ?? new Set()).add(id));
    }
    expect(byEvent.size).toBe(6);
    for (const ids of byEvent.values()) expect(ids.size).toBe(1);
    expect(new Set(ok.map((d) => JSON.parse(d.body).id))).toEqual(new Set(created));
    const failures = receiver.all('flaky').length - ok.length;
    expect(failures).toBeGreaterThanOrEqual(5); // every one of the first five events failed at least once
    console.log(`[${engine}/${queueKind}] flaky receiver: ${failures} failed attempts, ${ok.length} successful deliveries for 6 events`);
  }, 90_000);
});

async function removeKeys(prefix: string): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL!);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
