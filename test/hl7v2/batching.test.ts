/**
 * Frames pipelined on one connection are committed together (listener.ts → InboundHandler.messages):
 * one transaction for a run of plain messages, and — when the run holds a bad message, a resend
 * or the same patient twice — each message gets exactly the outcome it gets alone, in order.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, useTestServer } from '../support/server.js';
import { dropSegments, fixture, MllpClient, setField, withControlId, type Ack } from './mllp-client.js';

const MRN = 'http://goodhealth.example.org/fhir/sid/mrn';
const admit = (id: string, mrn: string) => setField(withControlId(fixture('msfc_ADT01-28.hl7'), id), 'PID', 3, `${mrn}^^^ADT1^MR`);

/** Send all messages in ONE socket write, then read one ACK per message, in order. */
async function pipeline(port: number, messages: string[]): Promise<Ack[]> {
  const client = await MllpClient.connect(port);
  try {
    client.write(messages.map((m) => `\x0b${m}\x1c\x0d`).join(''));
    const acks: Ack[] = [];
    for (let i = 0; i < messages.length; i++) acks.push(await client.next());
    return acks;
  } finally {
    await client.close();
  }
}

describe.each(ENGINES)('HL7 v2 pipelined batches on %s', (engine) => {
  const t = useTestServer(engine, { MLLP_PORT: '0' });
  const rows = async (ids: string[]) =>
    (await t.server.db.query<{ control_id: string; status: string; processed_at: Date }>(
      `SELECT control_id, status, processed_at FROM tenant_default.hl7_message WHERE direction = 'in' AND control_id = ANY($1::text[])`,
      [ids],
    )).rows;
  type StoredPatient = { id: string; meta: { versionId: string; lastUpdated: string }; name?: Array<{ family?: string }> };
  const patients = async (mrn: string): Promise<StoredPatient[]> =>
    ((await call(t.base, 'GET', `/Patient?identifier=${encodeURIComponent(`${MRN}|${mrn}`)}`)).body.entry ?? []).map((e: { resource: StoredPatient }) => e.resource);

  it('a run of plain messages is written in one transaction and acknowledged in order', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `BATCH-A${i}`);
    const acks = await pipeline(t.server.mllpPort!, ids.map((id, i) => admit(id, `BA${i}`)));
    expect(acks.map((a) => a.msa.slice(1, 3))).toEqual(ids.map((id) => ['AA', id]));
    const stored = await rows(ids);
    expect(stored).toHaveLength(6);
    // One transaction: every row has the same commit-time processed_at, every patient the same lastUpdated.
    expect(new Set(stored.map((r) => r.processed_at.toISOString())).size).toBe(1);
    const written = await Promise.all(ids.map((_, i) => patients(`BA${i}`)));
    expect(written.map((p) => p.length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(new Set(written.map((p) => p[0].meta.lastUpdated)).size).toBe(1);
    // One Provenance for the transaction names every patient's version and the sender as agent.
    const provenance = await call(t.base, 'GET', `/Provenance?target=Patient/${written[0]![0]!.id}`);
    expect(provenance.body.entry).toHaveLength(1);
    const record = provenance.body.entry[0].resource;
    for (const [p] of written) expect(record.target).toContainEqual({ reference: `Patient/${p!.id}/_history/1` });
    expect(record.agent[0].who.display).toMatch(/^HL7 v2 inbound from GOOD HEALTH HOSPITAL/);
    // The attending doctor all six share exists once.
    const doctors = await call(t.base, 'GET', '/Practitioner?identifier=004777');
    expect(doctors.body.entry).toHaveLength(1);
  });

  it('a bad message, a resend and the same patient twice in one run get their own outcomes', async () => {
    const first = admit('BATCH-B0', 'BB0');
    const [original] = await pipeline(t.server.mllpPort!, [first]);
    expect(original!.msa[1]).toBe('AA');
    const renamed = setField(admit('BATCH-B3', 'BB1'), 'PID', 5, 'RENAMED^ANNA');
    const acks = await pipeline(t.server.mllpPort!, [
      admit('BATCH-B1', 'BB1'),
      dropSegments(admit('BATCH-B2', 'BB2'), 'PID'), // AE: no patient
      first, // a resend of BATCH-B0: its first ACK again
      renamed, // the same patient as BATCH-B1
    ]);
    expect(acks.map((a) => a.msa.slice(1, 3))).toEqual([
      ['AA', 'BATCH-B1'],
      ['AE', 'BATCH-B2'],
      ['AA', 'BATCH-B0'],
      ['AA', 'BATCH-B3'],
    ]);
    expect(await patients('BB2')).toHaveLength(0);
    expect((await patients('BB0')).map((p) => p.meta.versionId)).toEqual(['1']);
    const [anna] = await patients('BB1');
    expect(anna.meta.versionId).toBe('2');
    expect(anna.name?.[0]?.family).toBe('RENAMED');
    expect((await rows(['BATCH-B0', 'BATCH-B1', 'BATCH-B2', 'BATCH-B3'])).map((r) => `${r.control_id}:${r.status}`).sort()).toEqual([
      'BATCH-B0:processed',
      'BATCH-B1:processed',
      'BATCH-B2:error',
      'BATCH-B3:processed',
    ]);
  });
});
