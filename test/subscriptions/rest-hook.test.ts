/**
 * R4 rest-hook Subscriptions end to end: writes over HTTP → outbox → relay → jobs → POSTs to a
 * real HTTP receiver on loopback. On each engine, with the in-process queue and (REDIS_URL set)
 * with BullMQ on Redis under a key prefix of this run, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneDeliveredEvents } from '../../src/subscriptions/delivery.js';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { Receiver, removeKeys, sleep, until } from './receiver.js';

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

  it('rejects endpoints that are not http(s), unknown criteria parameters, unsupported channel types', async () => {
    for (const endpoint of ['ftp://example.org/x', 'mailto:a@example.org', '/relative', 'not a url']) {
      const r = await call(t.base, 'POST', '/Subscription', { ...subscription('x', 'x'), channel: { type: 'rest-hook', endpoint } });
      expect(r.status, endpoint).toBe(400);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
    expect((await call(t.base, 'POST', '/Subscription', { ...subscription('x', 'x'), criteria: 'Observation?nonsense=1' })).status).toBe(400);
    expect((await call(t.base, 'POST', '/Subscription', { ...subscription('x', 'x'), channel: { type: 'email', endpoint: 'mailto:a@example.org' } })).status).toBe(400);
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
    // Numbered per subscription from 1, in order.
    expect(receiver.all('full').map((d) => d.number)).toEqual([1, 2, 3]);
    expect(receiver.all('empty').map((d) => d.number)).toEqual([1, 2, 3]);
  });

  it('a transaction with 50 matching entries gives 50 notifications, each once', async () => {
    const code = `c-${tag}-50`;
    const sub = await call(t.base, 'POST', '/Subscription', subscription('fifty', code));
    expect(sub.status).toBe(201);
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
    expect(receiver.all('fifty').map((d) => d.number)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    console.log(`[${engine}/${queueKind}] 50-entry transaction → 50 notifications in ${latency} ms`);
    // Retention: delivered events past SUBSCRIPTION_EVENT_RETENTION are pruned; none is younger than an hour.
    const kept = async () => Number((await t.server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tenant_default.subscription_event WHERE subscription_id = $1`, [sub.body.id])).rows[0]!.n);
    expect(await pruneDeliveredEvents(t.server.db, 'tenant_default', '1 hour')).toBe(0);
    expect(await kept()).toBe(50);
    await pruneDeliveredEvents(t.server.db, 'tenant_default', '0 seconds');
    expect(await kept()).toBe(0);
  });

  it('receiver down then back: subscription goes to error and back, every event delivered once per number, in order', async () => {
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
    // An event while in error is still numbered and delivered later.
    created.push((await call(t.base, 'POST', '/Observation', observation(code, 99))).body.id);
    await sleep(500);
    // Ordered delivery: while event 1 fails, nothing after it was attempted.
    expect(new Set(receiver.all('flaky').map((d) => d.number))).toEqual(new Set([1]));
    receiver.failing.delete('flaky');
    await until(() => new Set(receiver.ok('flaky').map((d) => d.number)).size >= 6, 40_000, 'all delivered after recovery');
    await until(async () => (await call(t.base, 'GET', `/Subscription/${sub.body.id}`)).body.status === 'active', 15_000, 'status active');
    await sleep(QUIET_MS);
    const ok = receiver.ok('flaky');
    // In event-number order (a duplicate can only repeat the number just sent), each number one resource.
    const numbers = ok.map((d) => d.number);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect([...new Set(numbers)]).toEqual([1, 2, 3, 4, 5, 6]);
    const byNumber = new Map<number, Set<string>>();
    for (const d of ok) byNumber.set(d.number, (byNumber.get(d.number) ?? new Set()).add(JSON.parse(d.body).id as string));
    for (const ids of byNumber.values()) expect(ids.size).toBe(1);
    expect([1, 2, 3, 4, 5, 6].map((n) => [...byNumber.get(n)!][0])).toEqual(created);
    const failures = receiver.all('flaky').length - ok.length;
    expect(failures).toBeGreaterThanOrEqual(3);
    console.log(`[${engine}/${queueKind}] flaky receiver: ${failures} failed attempts, ${ok.length} successful deliveries for 6 events`);
  }, 90_000);
});
