/**
 * Topic-based Subscriptions (Subscriptions R5 Backport IG, R4): topics as Basic resources,
 * handshake, create/update/delete triggers with queryCriteria and fhirPathCriteria, filter
 * criteria, payload content empty/id-only/full-resource, heartbeats, $status and $events.
 * Real HTTP receivers on loopback; each engine; the in-process queue (Redis: two-process suite).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { ENCOUNTER_FINISHED_TRIGGER, Receiver, sleep, statusOf, topicBasic, topicSubscription, until } from './receiver.js';

const QUIET_MS = 1500;

describe.each(ENGINES)('topic-based Subscriptions on %s', (engine) => {
  const t = useTestServer(engine);
  const receiver = new Receiver();
  const tag = randomBytes(4).toString('hex');
  const finished = `http://example.org/topic/${tag}/encounter-finished`;
  const observations = `http://example.org/topic/${tag}/observation-final`;

  beforeAll(async () => {
    await receiver.start();
    const encounterTrigger = ENCOUNTER_FINISHED_TRIGGER;
    const observationTrigger = [
      { url: 'resource', valueUri: 'Observation' },
      { url: 'supportedInteraction', valueCode: 'create' },
      { url: 'supportedInteraction', valueCode: 'update' },
      { url: 'supportedInteraction', valueCode: 'delete' },
      { url: 'queryCriteria', extension: [{ url: 'current', valueString: 'status=final' }, { url: 'resultForCreate', valueCode: 'test-passes' }, { url: 'resultForDelete', valueCode: 'test-passes' }] },
    ];
    expect((await call(t.base, 'POST', '/Basic', topicBasic(finished, [encounterTrigger], [['Encounter', 'subject']]))).status).toBe(201);
    expect((await call(t.base, 'POST', '/Basic', topicBasic(observations, [observationTrigger]))).status).toBe(201);
  });
  afterAll(() => receiver.stop());

  it('rejects bad topics and subscriptions with 400 OperationOutcome, writing nothing', async () => {
    const badPath = topicBasic(`http://example.org/topic/${tag}/bad`, [[{ url: 'resource', valueUri: 'Encounter' }, { url: 'fhirPathCriteria', valueString: "%current.status = = 'x'" }]]);
    const r1 = await call(t.base, 'POST', '/Basic', badPath);
    expect(r1.status).toBe(400);
    expect(r1.body.resourceType).toBe('OperationOutcome');
    const cases = [
      topicSubscription(`http://example.org/topic/${tag}/unknown`, receiver.url('x'), 'id-only'),
      topicSubscription(finished, receiver.url('x'), 'id-only', { filters: ['Encounter?status=finished'] }), // not in canFilterBy
      topicSubscription(finished, receiver.url('x'), 'id-only', { filters: ['Patient?name=x'] }), // no trigger for Patient
      topicSubscription(finished, receiver.url('x'), 'id-only', { filters: ['Encounter?nonsense=1'] }), // not a search parameter
    ];
    for (const body of cases) {
      const r = await call(t.base, 'POST', '/Subscription', body);
      expect(r.status, JSON.stringify(body._criteria ?? body.criteria)).toBe(400);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
    const all = await call(t.base, 'GET', `/Subscription?_count=100`);
    expect((all.body.entry ?? []).filter((e: any) => String(e.resource.criteria).includes('/unknown'))).toHaveLength(0);
  });

  it('handshake moves requested → active; fhirPath transition trigger with a subject filter, full-resource payload', async () => {
    const sub = await call(t.base, 'POST', '/Subscription', topicSubscription(finished, receiver.url('enc'), 'full-resource', { filters: ['Encounter?subject=Patient/p1'] }));
    expect(sub.status).toBe(201);
    expect(sub.body.status).toBe('requested');
    await until(() => receiver.all('enc').length >= 1, 15_000, 'handshake');
    const handshake = statusOf(JSON.parse(receiver.all('enc')[0]!.body));
    expect(handshake.type).toBe('handshake');
    expect(handshake.since).toBe('0');
    await until(async () => (await call(t.base, 'GET', `/Subscription/${sub.body.id}`)).body.status === 'active', 15_000, 'active');

    const enc = (status: string, patient = 'p1', id?: string) => ({ resourceType: 'Encounter', ...(id ? { id } : {}), status, class: { code: 'AMB' }, subject: { reference: `Patient/${patient}` } });
    const e1 = await call(t.base, 'POST', '/Encounter', enc('in-progress'));
    await call(t.base, 'PUT', `/Encounter/${e1.body.id}`, enc('finished', 'p1', e1.body.id)); // transition: fires
    await call(t.base, 'PUT', `/Encounter/${e1.body.id}`, { ...enc('finished', 'p1', e1.body.id), period: { start: '2024-01-01' } }); // finished → finished: no
    await call(t.base, 'POST', '/Encounter', enc('finished', 'p2')); // another subject: filtered out
    const e3 = await call(t.base, 'POST', '/Encounter', enc('finished')); // created finished: fires
    await until(() => receiver.all('enc').length >= 3, 30_000, 'two event notifications').catch(async (error) => {
      // Say whether matching (events-since-subscription-start) or delivery is behind.
      throw new Error(`${(error as Error).message}; $status: ${(await call(t.base, 'GET', `/Subscription/${sub.body.id}/$status`)).text}`);
    });
    await sleep(QUIET_MS);
    const events = receiver.all('enc').slice(1).map((d) => JSON.parse(d.body));
    expect(events).toHaveLength(2);
    const [n1, n2] = events.map(statusOf);
    expect(n1!.type).toBe('event-notification');
    expect(n1!.topic).toBe(finished);
    expect(n1!.events).toEqual([{ number: '1', focus: `Encounter/${e1.body.id}` }]);
    expect(n2!.events).toEqual([{ number: '2', focus: `Encounter/${e3.body.id}` }]);
    expect(events[0].entry[1].resource).toMatchObject({ resourceType: 'Encounter', id: e1.body.id, status: 'finished', meta: { versionId: '2' } });
    expect(events[0].entry[1].request).toEqual({ method: 'PUT', url: `Encounter/${e1.body.id}` });
    expect(receiver.all('enc').slice(1).map((d) => d.number)).toEqual([1, 2]);

    // $status (instance and type level) and $events.
    const status = await call(t.base, 'GET', `/Subscription/${sub.body.id}/$status`);
    expect(status.status).toBe(200);
    expect(status.body.type).toBe('searchset');
    const p = status.body.entry[0].resource;
    expect(p.parameter.find((x: any) => x.name === 'type').valueCode).toBe('query-status');
    expect(p.parameter.find((x: any) => x.name === 'events-since-subscription-start').valueString).toBe('2');
    expect(p.parameter.find((x: any) => x.name === 'status').valueCode).toBe('active');
    const both = await call(t.base, 'GET', `/Subscription/$status?id=${sub.body.id}`);
    expect(both.body.entry).toHaveLength(1);
    const ev = await call(t.base, 'GET', `/Subscription/${sub.body.id}/$events?eventsSinceNumber=2&eventsUntilNumber=2&content=id-only`);
    expect(ev.status).toBe(200);
    const q = statusOf(ev.body);
    expect(q.type).toBe('query-event');
    expect(q.events).toEqual([{ number: '2', focus: `${t.base}/Encounter/${e3.body.id}` }]); // operations answer with the request base
    expect(ev.body.entry[1].resource).toBeUndefined(); // id-only
    const all = statusOf((await call(t.base, 'GET', `/Subscription/${sub.body.id}/$events`)).body);
    expect(all.events.map((e) => e.number)).toEqual(['1', '2']);
    for (const bad of ['eventsSinceNumber=abc', 'content=everything', 'eventsSinceNumber=5&eventsUntilNumber=2']) {
      const r = await call(t.base, 'GET', `/Subscription/${sub.body.id}/$events?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
    expect((await call(t.base, 'GET', '/Subscription/nope/$status')).status).toBe(404);
    expect((await call(t.base, 'GET', '/Subscription/nope/$events')).status).toBe(404);
  });

  it('queryCriteria current with create/update/delete; id-only and empty payloads', async () => {
    const idOnly = await call(t.base, 'POST', '/Subscription', topicSubscription(observations, receiver.url('ids'), 'id-only'));
    const empty = await call(t.base, 'POST', '/Subscription', topicSubscription(observations, receiver.url('none'), 'empty'));
    expect([idOnly.status, empty.status]).toEqual([201, 201]);
    await until(async () => (await call(t.base, 'GET', `/Subscription/${empty.body.id}`)).body.status === 'active', 15_000, 'active');
    await until(async () => (await call(t.base, 'GET', `/Subscription/${idOnly.body.id}`)).body.status === 'active', 15_000, 'active');
    const obs = (status: string, id?: string) => ({ resourceType: 'Observation', ...(id ? { id } : {}), status, code: { text: tag } });
    // queryCriteria.current is evaluated on the event's version while it is current (a version
    // superseded before it is matched leaves the decision to the newer one): wait between writes.
    const notified = (n: number) => until(() => receiver.all('ids').length >= n + 1 && receiver.all('none').length >= n + 1, 30_000, `event ${n}`);
    const o1 = await call(t.base, 'POST', '/Observation', obs('final')); // create, final: 1
    await notified(1);
    await call(t.base, 'POST', '/Observation', obs('preliminary')); // not final: none
    await call(t.base, 'PUT', `/Observation/${o1.body.id}`, obs('amended', o1.body.id)); // no longer final: none
    await sleep(QUIET_MS);
    await call(t.base, 'PUT', `/Observation/${o1.body.id}`, obs('final', o1.body.id)); // final again: 2
    await notified(2);
    expect((await call(t.base, 'DELETE', `/Observation/${o1.body.id}`)).status).toBe(204); // delete: resultForDelete passes: 3
    await until(() => receiver.all('ids').length >= 4 && receiver.all('none').length >= 4, 30_000, 'three events each');
    await sleep(QUIET_MS);
    const ids = receiver.all('ids').slice(1).map((d) => JSON.parse(d.body));
    expect(ids.map((b) => statusOf(b).events[0]!.number)).toEqual(['1', '2', '3']);
    expect(ids.map((b) => b.entry[1].request.method)).toEqual(['POST', 'PUT', 'DELETE']);
    for (const b of ids) {
      expect(b.entry[1].fullUrl).toBe(`Observation/${o1.body.id}`);
      expect(b.entry[1].resource).toBeUndefined();
    }
    const none = receiver.all('none').slice(1).map((d) => JSON.parse(d.body));
    expect(none).toHaveLength(3);
    for (const b of none) {
      expect(b.entry).toHaveLength(1); // status only
      expect(statusOf(b).events[0]!.focus).toBeUndefined();
    }
  });

  it('a failing handshake sets the subscription to error with the reason; heartbeats when idle', async () => {
    receiver.failing.add('refuses');
    const refused = await call(t.base, 'POST', '/Subscription', topicSubscription(observations, receiver.url('refuses'), 'id-only'));
    await until(async () => (await call(t.base, 'GET', `/Subscription/${refused.body.id}`)).body.status === 'error', 15_000, 'error');
    expect((await call(t.base, 'GET', `/Subscription/${refused.body.id}`)).body.error).toMatch(/Handshake failed: HTTP 500/);

    const beating = await call(t.base, 'POST', '/Subscription', topicSubscription(observations, receiver.url('beat'), 'id-only', { heartbeat: 1 }));
    expect(beating.status).toBe(201);
    await until(() => receiver.all('beat').filter((d) => statusOf(JSON.parse(d.body)).type === 'heartbeat').length >= 2, 15_000, 'two heartbeats');
    const types = receiver.all('beat').map((d) => statusOf(JSON.parse(d.body)).type);
    expect(types[0]).toBe('handshake');
  });
});
