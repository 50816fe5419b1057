/**
 * The operator view of HL7 v2 messages (/admin/hl7v2) over real HTTP and MLLP: a message the
 * receiver keeps refusing (AE) goes dead, is listed, replayed and delivered; a received message
 * answered AE is reprocessed by replay once its cause is gone; bad input gets OperationOutcomes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { redisEnv } from '../support/redis.js';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { until } from '../support/wait.js';
import { fixture, sendOne, withControlId } from './mllp-client.js';
import { destination, field, MllpReceiver, OUTBOUND_ENV, patient, switchOff } from './outbound-support.js';

const QUEUES = process.env.REDIS_URL ? (['in-process', 'redis'] as const) : (['in-process'] as const);

describe.each(ENGINES.flatMap((e) => QUEUES.map((q) => [e, q] as const)))('HL7 v2 operator view (%s, %s queue)', (engine, queueKind) => {
  const t = useTestServer(engine, { ...OUTBOUND_ENV, MLLP_PORT: '0', ...(queueKind === 'redis' ? redisEnv() : {}) });
  const lab = new MllpReceiver();
  const admin = (method: string, path: string) => call(t.server.url, method, `/admin/hl7v2${path}`);
  afterAll(() => lab.stop());

  it('lists a message dead after AE answers, replays it and it is delivered; a delivered one is not replayed', async () => {
    await lab.start();
    lab.ackCode = 'AE';
    const dest = await destination(t.base, lab.port, ['OML']);
    const pid = await patient(t.base, 'MRN-DEAD-1');
    const sr = await call(t.base, 'POST', '/ServiceRequest', {
      resourceType: 'ServiceRequest', status: 'active', intent: 'order', identifier: [{ system: 'urn:oid:1.2.3.4', value: 'ORD-DEAD-1' }],
      code: { text: 'Glucose' }, subject: { reference: `Patient/${pid}` }, performer: [{ reference: `Organization/${dest.organizationId}` }],
    });
    expect(sr.status).toBe(201);
    const dead = await until(async () => {
      const list = await admin('GET', '/messages?direction=out&status=dead');
      expect(list.status).toBe(200);
      return list.body.messages.find((m: { focus: string }) => m.focus === `ServiceRequest/${sr.body.id}`);
    }, 'a dead message');
    expect(dead).toMatchObject({ direction: 'out', status: 'dead', messageType: 'OML^O21', event: 'NW', endpoint: dest.endpoint.id, attempts: 10, ackCode: 'AE' });
    expect(dead.error).toBe('MSA-1 AE: test ack');
    expect(lab.matching('ORC', 2, 'ORD-DEAD-1')).toHaveLength(10);

    const detail = await admin('GET', `/messages/${dead.id}`);
    expect(detail.status).toBe(200);
    expect(field(detail.body.raw, 'MSH', 9)).toBe('OML^O21^OML_O21');
    expect(detail.body.ack).toContain('MSA|AE|');

    lab.ackCode = 'AA';
    const replay = await admin('POST', `/messages/${dead.id}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body.message.status).toMatch(/^(queued|sent)$/);
    const sent = await until(async () => {
      const d = await admin('GET', `/messages/${dead.id}`);
      return d.body.status === 'sent' && d.body;
    }, 'delivery after replay');
    expect(sent.ackCode).toBe('AA');
    expect(lab.matching('ORC', 2, 'ORD-DEAD-1')).toHaveLength(11);

    const again = await admin('POST', `/messages/${dead.id}/replay`);
    expect(again.status).toBe(409);
    expect(again.body.resourceType).toBe('OperationOutcome');
    expect(again.body.issue[0].code).toBe('conflict');
    await switchOff(t.base, dest.endpoint);
  });

  it('replays a received message answered AE once its cause is gone', async () => {
    const first = await sendOne(t.server.mllpPort!, withControlId(fixture('msfc_ADT-A08-01.hl7'), `OP-${randomBytes(3).toString('hex')}`));
    expect(first.msa[1]).toBe('AA');
    const received = await admin('GET', '/messages?direction=in&type=ADT&_count=1');
    const row = await admin('GET', `/messages/${received.body.messages[0].id}`);
    const patientRef = row.body.resources.find((r: { reference: string }) => r.reference.startsWith('Patient/')).reference as string;
    const stored = await call(t.base, 'GET', `/${patientRef}`);
    // A second patient with the same identifiers: the next A08 matches two patients and is answered AE.
    const twin = await call(t.base, 'POST', '/Patient', { resourceType: 'Patient', identifier: stored.body.identifier });
    expect(twin.status).toBe(201);
    const controlId = `OP-${randomBytes(3).toString('hex')}`;
    const refused = await sendOne(t.server.mllpPort!, withControlId(fixture('msfc_ADT-A08-01.hl7'), controlId));
    expect(refused.msa[1]).toBe('AE');
    const errors = await admin('GET', '/messages?direction=in&status=error');
    const failed = errors.body.messages.find((m: { controlId: string }) => m.controlId === controlId);
    expect(failed).toMatchObject({ direction: 'in', status: 'error', ackCode: 'AE' });

    expect((await call(t.base, 'DELETE', `/Patient/${twin.body.id}`)).status).toBe(204);
    const replay = await admin('POST', `/messages/${failed.id}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body.message).toMatchObject({ direction: 'in', status: 'processed', ackCode: 'AA', controlId });
    expect(replay.body.ack).toContain('MSA|AA|');
    const old = await admin('GET', `/messages/${failed.id}`);
    expect(old.body.status).toBe('replayed');
    expect(old.body.error).toContain(`replayed as message ${replay.body.message.id}`);

    const processed = await admin('POST', `/messages/${replay.body.message.id}/replay`);
    expect(processed.status).toBe(409);
    expect(processed.body.resourceType).toBe('OperationOutcome');
  });

  it('pages newest first with _count and a next link', async () => {
    const page1 = await admin('GET', '/messages?_count=1');
    expect(page1.status).toBe(200);
    expect(page1.body.messages).toHaveLength(1);
    expect(page1.body.next).toMatch(/^\/admin\/hl7v2\/messages\?_count=1&_cursor=\d+$/);
    const page2 = await call(t.server.url, 'GET', page1.body.next);
    expect(page2.status).toBe(200);
    expect(Number(page2.body.messages[0].id)).toBeLessThan(Number(page1.body.messages[0].id));
  });

  it('answers bad input with OperationOutcomes', async () => {
    for (const [method, path, status] of [
      ['GET', '/messages/999999999', 404],
      ['GET', '/messages/abc', 404],
      ['POST', '/messages/999999999/replay', 404],
      ['GET', '/messages?direction=sideways', 400],
      ['GET', '/messages?_count=0', 400],
      ['GET', '/messages?_count=many', 400],
      ['GET', '/messages?_cursor=x', 400],
      ['GET', '/messages?status=a&status=b', 400],
      ['GET', '/nothing-here', 404],
    ] as const) {
      const r = await admin(method, path);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(r.body.resourceType, `${method} ${path}`).toBe('OperationOutcome');
      expect(r.body.issue[0].severity).toBe('error');
    }
  });
});
