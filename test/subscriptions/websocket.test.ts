/**
 * The websocket channel with a real `ws` client: R4 `bind <id>` → `bound` and `ping <id>` per
 * event; backport `$get-ws-binding-token` + `bind-with-token` → handshake and notification
 * Bundles; tokens are single-use; bad commands answered with `error …`. Each engine; with
 * REDIS_URL also through Redis pub/sub.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { ENCOUNTER_FINISHED_TRIGGER, removeKeys, statusOf, topicBasic, wsClient } from './receiver.js';

const QUEUES = process.env.REDIS_URL ? (['in-process', 'redis'] as const) : (['in-process'] as const);
const MATRIX = ENGINES.flatMap((engine) => QUEUES.map((queue) => [engine, queue] as const));

describe.each(MATRIX)('websocket channel on %s, %s queue', (engine, queueKind) => {
  const prefix = `cbtest-${randomBytes(5).toString('hex')}`;
  const t = useTestServer(engine, queueKind === 'redis' ? { REDIS_URL: process.env.REDIS_URL!, REDIS_PREFIX: prefix } : {});
  const tag = randomBytes(4).toString('hex');
  const topic = `http://example.org/topic/${tag}/encounter-finished`;
  let wsUrl = '';

  beforeAll(async () => {
    const meta = await call(t.base, 'GET', '/metadata');
    wsUrl = meta.body.rest[0].extension.find((e: any) => e.url === 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket').valueUrl;
    expect(wsUrl).toBe(`${t.base.replace(/^http/, 'ws')}/$websocket`);
    expect((await call(t.base, 'POST', '/Basic', topicBasic(topic, [ENCOUNTER_FINISHED_TRIGGER]))).status).toBe(201);
  });
  afterAll(async () => {
    if (queueKind === 'redis') {
      await t.close();
      await removeKeys(prefix);
    }
  });

  it('R4: bind <id> → bound, then ping <id> per matching event', async () => {
    const code = `ws-${tag}`;
    const sub = await call(t.base, 'POST', '/Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'ws', criteria: `Observation?code=${code}`, channel: { type: 'websocket' } });
    expect(sub.status).toBe(201);
    expect(sub.body.status).toBe('active');
    const c = await wsClient(wsUrl);
    try {
      c.ws.send(`bind ${sub.body.id}`);
      expect(await c.next()).toBe(`bound ${sub.body.id}`);
      await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ code }] } });
      await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ code: 'other' }] } });
      await call(t.base, 'POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ code }] } });
      expect(await c.next()).toBe(`ping ${sub.body.id}`);
      expect(await c.next()).toBe(`ping ${sub.body.id}`);
      await new Promise((r) => setTimeout(r, 1000));
      expect(c.frames).toHaveLength(3);
      // Bad commands: answered, the socket stays usable.
      c.ws.send('hello');
      expect(await c.next()).toMatch(/^error unknown command/);
      c.ws.send('bind nope');
      expect(await c.next()).toMatch(/^error Subscription\/nope is not known/);
    } finally {
      c.ws.close();
    }
  });

  it('backport: $get-ws-binding-token + bind-with-token → handshake and event Bundles; tokens are single-use', async () => {
    const sub = await call(t.base, 'POST', '/Subscription', {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'ws topic',
      criteria: topic,
      channel: { type: 'websocket', payload: 'application/fhir+json', _payload: { extension: [{ url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content', valueCode: 'id-only' }] } },
    });
    expect(sub.status).toBe(201);
    const tokenResult = await call(t.base, 'POST', `/Subscription/${sub.body.id}/$get-ws-binding-token`);
    expect(tokenResult.status).toBe(200);
    const param = (name: string) => tokenResult.body.parameter.find((p: any) => p.name === name);
    const token = param('token').valueString as string;
    expect(param('websocket-url').valueUrl).toBe(wsUrl);
    expect(Date.parse(param('expiration').valueDateTime)).toBeGreaterThan(Date.now());

    const c = await wsClient(wsUrl);
    try {
      c.ws.send(`bind-with-token ${token}`);
      const handshake = statusOf(JSON.parse(await c.next()));
      expect(handshake.type).toBe('handshake');
      const enc = await call(t.base, 'POST', '/Encounter', { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' } });
      const event = JSON.parse(await c.next());
      expect(statusOf(event)).toMatchObject({ type: 'event-notification', events: [{ number: '1', focus: `Encounter/${enc.body.id}` }] });
      // Used once: a second bind with the same token fails; so does a made-up one.
      c.ws.send(`bind-with-token ${token}`);
      expect(await c.next()).toMatch(/^error the token is unknown, used or expired/);
      c.ws.send('bind-with-token made-up');
      expect(await c.next()).toMatch(/^error the token/);
    } finally {
      c.ws.close();
    }
    // Only websocket subscriptions get tokens.
    const hook = await call(t.base, 'POST', '/Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'x', criteria: 'Observation?code=x', channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/x' } });
    const refused = await call(t.base, 'POST', `/Subscription/${hook.body.id}/$get-ws-binding-token`);
    expect(refused.status).toBe(400);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    expect((await call(t.base, 'POST', '/Subscription/nope/$get-ws-binding-token')).status).toBe(404);
  });
});
