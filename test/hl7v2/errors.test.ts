/**
 * HL7 v2 over MLLP when things go wrong, and idempotency: NAKs (AE with ERR, AR), nothing
 * written but the message row, duplicates answered from the first outcome, framing trouble,
 * pipelining. One connection is reused across failures to show the listener keeps serving.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { dropSegments, fixture, MllpClient, sendOne, setField, withControlId, type Ack } from './mllp-client.js';

const MRN = 'http://goodhealth.example.org/fhir/sid/mrn';

/** ADT01-28 (2.5.1) for a patient of its own: MRN `mrn`, control id `id`. */
const admit = (id: string, mrn: string) => setField(withControlId(fixture('msfc_ADT01-28.hl7'), id), 'PID', 3, `${mrn}^^^ADT1^MR`);

async function count(base: string, query: string): Promise<number> {
  const r = await call(base, 'GET', `/${query}${query.includes('?') ? '&' : '?'}_total=accurate`);
  expect(r.status, query).toBe(200);
  return r.body.entry?.length ?? 0;
}

const patients = (base: string, mrn: string) => count(base, `Patient?identifier=${encodeURIComponent(`${MRN}|${mrn}`)}`);

const errOf = (ack: Ack) => ({ code: ack.msa[1], location: ack.err?.[2], error: ack.err?.[3]?.split('^')[0] });

describe.each(ENGINES)('HL7 v2 errors and idempotency on %s', (engine) => {
  const t = useTestServer(engine, { MLLP_PORT: '0', MLLP_MAX_MESSAGE_SIZE: '64kb', MLLP_IDLE_TIMEOUT_MS: '5000' });
  const row = async (controlId: string) =>
    (await t.server.db.query<{ status: string; ack_code: string; error: string | null; resources: unknown }>(
      `SELECT status, ack_code, error, resources FROM tenant_default.hl7_message WHERE direction = 'in' AND control_id = $1`,
      [controlId],
    )).rows;

  it('a duplicate MSH-10 gets the same ACK again and writes nothing', async () => {
    const message = admit('DUP-1', 'D1');
    const first = await sendOne(t.server.mllpPort!, message);
    expect(first.msa).toEqual(['MSA', 'AA', 'DUP-1']);
    const again = await sendOne(t.server.mllpPort!, message);
    expect(again.msa).toEqual(first.msa);
    expect(again.msh[9]).not.toBe(first.msh[9]); // an ACK of its own
    expect(await patients(t.base, 'D1')).toBe(1);
    const [patient] = (await call(t.base, 'GET', `/Patient?identifier=${encodeURIComponent(`${MRN}|D1`)}`)).body.entry;
    expect(patient.resource.meta.versionId).toBe('1');
    expect(await count(t.base, `Encounter?subject=Patient/${patient.resource.id}`)).toBe(1); // A01 without visit number: one visit, not two
    const [stored] = await row('DUP-1');
    expect(stored).toMatchObject({ status: 'processed', ack_code: 'AA', error: null });
    expect((stored!.resources as Array<{ reference: string }>).map((r) => r.reference.split('/')[0]).sort()).toEqual(['Encounter', 'Patient', 'Practitioner', 'RelatedPerson']);
  });

  it('concurrent copies of one message on several connections write it once', async () => {
    const message = admit('DUP-2', 'D2');
    const clients = await Promise.all([1, 2, 3, 4].map(() => MllpClient.connect(t.server.mllpPort!)));
    const acks = await Promise.all(clients.map((c) => c.request(message)));
    await Promise.all(clients.map((c) => c.close()));
    for (const ack of acks) expect(ack.msa).toEqual(['MSA', 'AA', 'DUP-2']);
    expect(await patients(t.base, 'D2')).toBe(1);
    const [patient] = (await call(t.base, 'GET', `/Patient?identifier=${encodeURIComponent(`${MRN}|D2`)}`)).body.entry;
    expect(patient.resource.meta.versionId).toBe('1');
    expect(await count(t.base, `Encounter?subject=Patient/${patient.resource.id}`)).toBe(1);
  });

  it('data errors: AE with ERR naming segment and field, only the message row kept; the connection keeps serving', async () => {
    const client = await MllpClient.connect(t.server.mllpPort!);
    try {
      const badDate = await client.request(setField(admit('E-DATE', 'E1'), 'PID', 7, '19611315'));
      expect(errOf(badDate)).toEqual({ code: 'AE', location: 'PID^1^7', error: '102' });
      expect(badDate.msa[2]).toBe('E-DATE');
      expect(await patients(t.base, 'E1')).toBe(0);
      const [stored] = await row('E-DATE');
      expect(stored).toMatchObject({ status: 'error', ack_code: 'AE', resources: null });
      expect(stored!.error).toContain('PID-7');
      // A resend of the failed message gets the same answer.
      expect(errOf(await client.request(setField(admit('E-DATE', 'E1'), 'PID', 7, '19611315')))).toEqual(errOf(badDate));

      expect(errOf(await client.request(dropSegments(admit('E-NOPID', 'E2'), 'PID')))).toEqual({ code: 'AE', location: 'PID^1', error: '100' });
      expect(errOf(await client.request(setField(admit('E-SEX', 'E3'), 'PID', 8, 'X')))).toEqual({ code: 'AE', location: 'PID^1^8', error: '103' });
      // Codes and names that a JavaScript object inherits are not in the tables either.
      for (const [i, code] of ['constructor', 'toString', '__proto__'].entries()) {
        expect(errOf(await client.request(setField(admit(`E-SEX-${i}`, 'E3'), 'PID', 8, code)))).toEqual({ code: 'AE', location: 'PID^1^8', error: '103' });
      }
      expect(errOf(await client.request(setField(admit('E-MRN', 'E4'), 'PID', 3, '')))).toEqual({ code: 'AE', location: 'PID^1^3', error: '101' });
      const oru = setField(withControlId(fixture('msfc_LAB-ORU-1.hl7'), 'E-NM'), 'OBX', 5, 'twelve');
      expect(errOf(await client.request(oru))).toEqual({ code: 'AE', location: 'OBX^1^5', error: '102' });
      // Found out while writing (the prior patient is unknown): the survivor written before is rolled back.
      expect(errOf(await client.request(withControlId(fixture('msfc_ADT-A40-01.hl7'), 'E-MRG')))).toEqual({ code: 'AE', location: 'MRG^1^1', error: '204' });
      expect(await count(t.base, `Patient?identifier=${encodeURIComponent('urn:carebridge:hl7v2:authority:BCBS|12345')}`)).toBe(0);
      for (const mrn of ['E2', 'E3', 'E4']) expect(await patients(t.base, mrn)).toBe(0);
      expect(await count(t.base, 'DiagnosticReport')).toBe(0);

      expect((await client.request(admit('E-OK', 'E5'))).msa).toEqual(['MSA', 'AA', 'E-OK']);
      expect(await patients(t.base, 'E5')).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('rejections: AR for unreadable messages, wrong encoding characters, unsupported types and versions', async () => {
    const client = await MllpClient.connect(t.server.mllpPort!);
    try {
      expect(errOf(await client.request('PID|1||X^^^ADT1^MR'))).toEqual({ code: 'AR', location: 'MSH^1', error: '100' });
      const wrongEncoding = await client.request(admit('R-ENC', 'R1').replace('MSH|^~\\&|', 'MSH|^^\\&|'));
      expect(errOf(wrongEncoding)).toEqual({ code: 'AR', location: 'MSH^1^2', error: '102' });
      expect(wrongEncoding.msa[2]).toBe('R-ENC');
      expect(errOf(await client.request(setField(admit('R-A99', 'R2'), 'MSH', 9, 'ADT^A99')))).toEqual({ code: 'AR', location: 'MSH^1^9', error: '201' });
      expect(errOf(await client.request(setField(admit('R-ZZZ', 'R3'), 'MSH', 9, 'ZZZ^Z01')))).toEqual({ code: 'AR', location: 'MSH^1^9', error: '200' });
      expect(errOf(await client.request(setField(admit('R-VER', 'R4'), 'MSH', 12, '3.0')))).toEqual({ code: 'AR', location: 'MSH^1^12', error: '203' });
      expect(errOf(await client.request(withControlId(admit('x', 'R5'), '')))).toEqual({ code: 'AR', location: 'MSH^1^10', error: '101' });
      for (const mrn of ['R1', 'R2', 'R3', 'R4', 'R5']) expect(await patients(t.base, mrn)).toBe(0);
      expect((await row('R-A99'))[0]).toMatchObject({ status: 'rejected', ack_code: 'AR' });
      expect((await client.request(admit('R-OK', 'R6'))).msa[1]).toBe('AA');
    } finally {
      await client.close();
    }
  });

  it('framing: a frame cut short and an oversize one get AR, split and coalesced frames are read, ACKs come in order', async () => {
    const client = await MllpClient.connect(t.server.mllpPort!);
    try {
      const whole = admit('F-WHOLE', 'F2');
      client.write(`\x0b${admit('F-CUT', 'F1').slice(0, 120)}`); // no end: the next frame's start cuts it
      client.send(whole);
      const cut = await client.next();
      expect(cut.msa.slice(0, 3)).toEqual(['MSA', 'AR', 'F-CUT']);
      expect((await client.next()).msa).toEqual(['MSA', 'AA', 'F-WHOLE']);
      expect(await patients(t.base, 'F1')).toBe(0);
      expect(await row('F-CUT')).toEqual([]); // not claimed: a complete resend is processed

      const big = `${admit('F-BIG', 'F3')}\rNTE|1||${'x'.repeat(70 * 1024)}`;
      expect((await client.request(big)).msa.slice(0, 3)).toEqual(['MSA', 'AR', 'F-BIG']);
      expect(await patients(t.base, 'F3')).toBe(0);

      const framed = Buffer.from(`\x0b${admit('F-SPLIT', 'F4')}\x1c\x0d`);
      for (let i = 0; i < framed.length; i += 7) {
        client.write(framed.subarray(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
      expect((await client.next()).msa).toEqual(['MSA', 'AA', 'F-SPLIT']);

      const ids = Array.from({ length: 25 }, (_, i) => `P-${i}`);
      client.write(ids.map((id) => `\x0b${admit(id, `M${id}`)}\x1c\x0d`).join('')); // one write, no waiting
      const acks = [];
      for (const _ of ids) acks.push(await client.next());
      expect(acks.map((a) => a.msa[2])).toEqual(ids);
      expect(acks.every((a) => a.msa[1] === 'AA')).toBe(true);
      expect(await patients(t.base, 'MP-24')).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('closes a connection left idle', async () => {
    const client = await MllpClient.connect(t.server.mllpPort!);
    const closed = new Promise<number>((resolve) => client.socket.once('close', () => resolve(Date.now())));
    const since = Date.now();
    expect(await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 20_000))])).toBeGreaterThanOrEqual(since + 4000);
  });

  it('shutdown answers the messages already received before closing the connections', async () => {
    const client = await MllpClient.connect(t.server.mllpPort!);
    const ids = Array.from({ length: 10 }, (_, i) => `S-${i}`);
    client.write(ids.map((id) => `\x0b${admit(id, `M${id}`)}\x1c\x0d`).join(''));
    await new Promise((r) => setTimeout(r, 50)); // the frames have arrived
    const closing = t.server.close();
    const acks = [];
    for (const _ of ids) acks.push(await client.next());
    await closing;
    expect(acks.map((a) => `${a.msa[1]} ${a.msa[2]}`)).toEqual(ids.map((id) => `AA ${id}`));
  });
});
