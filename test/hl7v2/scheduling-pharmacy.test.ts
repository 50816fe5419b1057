/**
 * SIU^S12–S15 (Appointment), RDE^O11 (MedicationRequest) and VXU^V04 (Immunization) over MLLP:
 * the ACK, then the resources written, read back with FHIR searches over HTTP. These message types
 * are described by mappings/ only (messages.json structures SIU, RDE_O11, VXU_V04); expected values
 * are worked out by hand from the fixtures.
 */
import { describe, expect, it } from 'vitest';
import { call, ENGINES, searchResources, useTestServer } from '../support/server.js';
import { fixture, sendOne, setField, withControlId } from './mllp-client.js';

const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const GHH_SENDER = 'urn:carebridge:hl7v2:sender:GHHSFacility';
const GHH_PATIENT = 'http://ghh.example.org/fhir/sid/patient-id';
const UCUM = 'http://unitsofmeasure.org';

const search = searchResources;

const byIdentifier = (type: string, system: string, value: string) => `${type}?identifier=${encodeURIComponent(`${system}|${value}`)}`;

/** The SIU sample as another trigger event, with a new MSH-10. */
function siu(event: string, controlId: string): string {
  return setField(withControlId(fixture('msfc_SIU-S12-01.hl7'), controlId), 'MSH', 9, `SIU^${event}^SIU_S12`);
}

describe.each(ENGINES)('HL7 v2 scheduling, pharmacy and immunization on %s', (engine) => {
  const t = useTestServer(engine, { MLLP_PORT: '0' });
  const send = (message: string) => sendOne(t.server.mllpPort!, message);
  let appointment: any;

  it('SIU^S12: a booked Appointment with its patient, practitioners, location, equipment, service and times', async () => {
    expect((await send(siu('S12', 'SIU-1'))).msa).toEqual(['MSA', 'AA', 'SIU-1']);
    const found = await search(t.base, byIdentifier('Appointment', GHH_SENDER, '12345'));
    expect(found).toHaveLength(1);
    appointment = found[0];
    expect(appointment.status).toBe('booked');
    expect(appointment.identifier).toEqual([
      { type: { coding: [{ system: V2_0203, code: 'PLAC' }] }, system: GHH_SENDER, value: '12345' },
      { type: { coding: [{ system: V2_0203, code: 'FILL' }] }, system: GHH_SENDER, value: '36996' },
    ]);
    // TQ1-7 / TQ1-8 (they replace SCH-11's 2020 dates).
    expect(appointment.start).toBe('2021-09-24T09:30:00+02:15');
    expect(appointment.end).toBe('2021-09-24T10:20:00+02:15');
    expect(appointment.description).toBe('Appointment booked for emergency procedure');
    expect(appointment.reasonCode).toEqual([{ coding: [{ code: 'EMERGENCY' }] }]);
    expect(appointment.appointmentType).toEqual({ coding: [{ code: 'Normal' }] });
    expect(appointment.serviceType).toEqual([
      { coding: [{ system: 'http://snomed.info/sct', code: '76164006', display: 'Biopsy of colon (procedure)' }, { code: '1212', display: 'Biopsy' }] },
    ]);

    const parts = appointment.participant;
    expect(parts).toHaveLength(6);
    // SCH-12 placer and SCH-16 filler contact: the same NPI, one Practitioner.
    expect(parts[0].type[0].coding[0].code).toBe('PLACER');
    expect(parts[1].type[0].coding[0].code).toBe('FILLER');
    expect(parts[0].actor).toEqual(parts[1].actor);
    const contact = (await call(t.base, 'GET', `/${parts[0].actor.reference}`)).body;
    expect(contact.identifier).toEqual([{ system: 'urn:oid:2.16.840.1.113883.4.6', value: '9941339109' }]);
    // PID: the patient, found by the MR identifier of PID-3.
    const [patient] = await search(t.base, byIdentifier('Patient', GHH_PATIENT, 'PATID1234'));
    expect(parts[2]).toEqual({ actor: { reference: `Patient/${patient.id}` }, status: 'accepted' });
    // AIG: the equipment by display.
    expect(parts[3]).toEqual({
      actor: { display: 'EVIS X12 Video Colonoscope' },
      type: [{ coding: [{ code: '101', display: 'Equipment' }] }],
      period: { start: '2021-09-24T09:30:00+02:15' },
      status: 'accepted',
    });
    // AIL: the location (PL: facility, point of care, room).
    expect(parts[4].actor).toEqual({ type: 'Location', display: 'GH Clinic, 055, Room01' });
    expect(parts[4].type).toEqual([{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0305', code: 'C', display: 'Clinic' }] }]);
    // AIP: the gastroenterologist.
    expect(parts[5].actor.display).toBe('Robert C GE');
    expect(parts[5].type).toEqual([{ coding: [{ code: '010', display: 'Gastroenterologist' }] }]);
    const gastro = (await call(t.base, 'GET', `/${parts[5].actor.reference}`)).body;
    expect(gastro.identifier).toEqual([{ system: GHH_SENDER, value: '1210' }]);
  });

  it('SIU^S13 reschedules (new times) and S14 modifies the same Appointment', async () => {
    let s13 = siu('S13', 'SIU-2');
    s13 = setField(s13, 'TQ1', 7, '20210925140000+0215');
    s13 = setField(s13, 'TQ1', 8, '20210925145000+0215');
    expect((await send(s13)).msa).toEqual(['MSA', 'AA', 'SIU-2']);
    let [again, ...others] = await search(t.base, byIdentifier('Appointment', GHH_SENDER, '36996'));
    expect(others).toEqual([]);
    expect(again.id).toBe(appointment.id);
    expect(again.meta.versionId).toBe('2');
    expect([again.start, again.end, again.status]).toEqual(['2021-09-25T14:00:00+02:15', '2021-09-25T14:50:00+02:15', 'booked']);

    const s14 = setField(setField(siu('S14', 'SIU-3'), 'NTE', 3, 'Bring previous results'), 'TQ1', 7, '20210925140000+0215');
    expect((await send(setField(s14, 'TQ1', 8, '20210925145000+0215'))).msa[1]).toBe('AA');
    [again, ...others] = await search(t.base, byIdentifier('Appointment', GHH_SENDER, '12345'));
    expect(others).toEqual([]);
    expect([again.id, again.meta.versionId, again.description]).toEqual([appointment.id, '3', 'Bring previous results']);
  });

  it('SIU^S15 cancels the same Appointment (no duplicate), sent again (same MSH-10) it changes nothing', async () => {
    const s15 = siu('S15', 'SIU-4');
    expect((await send(s15)).msa).toEqual(['MSA', 'AA', 'SIU-4']);
    const [cancelled, ...others] = await search(t.base, byIdentifier('Appointment', GHH_SENDER, '12345'));
    expect(others).toEqual([]);
    expect([cancelled.id, cancelled.meta.versionId, cancelled.status]).toEqual([appointment.id, '4', 'cancelled']);
    // SCH-6 (event reason) on a cancellation.
    expect(cancelled.cancelationReason).toEqual({ coding: [{ code: 'Add' }] });
    expect((await send(s15)).msa).toEqual(['MSA', 'AA', 'SIU-4']);
    expect((await call(t.base, 'GET', `/Appointment/${appointment.id}`)).body.meta.versionId).toBe('4');
    expect(await search(t.base, 'Appointment?_count=50')).toHaveLength(1);
  });

  it('an SIU booking does not occupy a CareBridge Slot of the same practitioner and start (README "Appointments": decision)', async () => {
    // The AIP practitioner (GHH 1210) with a Schedule and a free Slot at the SIU's start.
    const gastro = await call(t.base, 'PUT', `/${byIdentifier('Practitioner', GHH_SENDER, '1210')}`, { resourceType: 'Practitioner', identifier: [{ system: GHH_SENDER, value: '1210' }] });
    expect([200, 201]).toContain(gastro.status);
    const schedule = await call(t.base, 'POST', '/Schedule', { resourceType: 'Schedule', actor: [{ reference: `Practitioner/${gastro.body.id}` }] });
    const slot = await call(t.base, 'POST', '/Slot', { resourceType: 'Slot', schedule: { reference: `Schedule/${schedule.body.id}` }, status: 'free', start: '2021-09-24T09:30:00+02:15', end: '2021-09-24T10:20:00+02:15' });
    expect(slot.status, slot.text).toBe(201);

    let s12 = setField(siu('S12', 'SIU-SLOT-1'), 'SCH', 1, '77777');
    s12 = setField(s12, 'SCH', 2, '77778');
    expect((await send(s12)).msa).toEqual(['MSA', 'AA', 'SIU-SLOT-1']);
    const [booked] = await search(t.base, byIdentifier('Appointment', GHH_SENDER, '77777'));
    expect(booked).toMatchObject({ status: 'booked', start: '2021-09-24T09:30:00+02:15' });
    expect(booked.participant.some((p: any) => p.actor?.reference === `Practitioner/${gastro.body.id}`)).toBe(true);
    expect(booked.slot).toBeUndefined();
    expect((await call(t.base, 'GET', `/Slot/${slot.body.id}`)).body).toMatchObject({ status: 'free', meta: { versionId: '1' } });
    // So CareBridge can still book that slot: one system should own the practitioner's calendar.
    const local = await call(t.base, 'POST', '/Appointment', {
      resourceType: 'Appointment',
      status: 'booked',
      start: slot.body.start,
      end: slot.body.end,
      slot: [{ reference: `Slot/${slot.body.id}` }],
      participant: [{ actor: { reference: `Practitioner/${gastro.body.id}` }, status: 'accepted' }],
    });
    expect(local.status, local.text).toBe(201);
  });

  it('RDE^O11: a MedicationRequest with order identifiers, status, medication, dose, route and dispense quantity', async () => {
    expect((await send(withControlId(fixture('msfc_RDE-O11-01.hl7'), 'RDE-1'))).msa).toEqual(['MSA', 'AA', 'RDE-1']);
    const [request, ...others] = await search(t.base, byIdentifier('MedicationRequest', 'urn:carebridge:hl7v2:authority:EPC', '1163422591'));
    expect(others).toEqual([]);
    expect(request.identifier).toEqual([{ type: { coding: [{ system: V2_0203, code: 'PLAC' }] }, system: 'urn:carebridge:hl7v2:authority:EPC', value: '1163422591' }]);
    expect(request.status).toBe('active'); // ORC-1 NW, ORC-5 empty
    expect(request.intent).toBe('order');
    expect(request.authoredOn).toBe('2019-11-04T06:27:26+02:15');
    expect(request.medicationCodeableConcept).toEqual({
      coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: '0143963401', display: '200 ML BAG : NICARDIPINE IN NACL (ISO-OS) 40 MG/200 ML IV PGBK' }],
      text: 'niCARdipine (CARDENE) in NaCl IV infusion 40 mg/200 mL (0.2 mg/mL)',
    });
    const dosage = request.dosageInstruction[0];
    // RXE-3 = 5, RXE-4 empty, RXE-5 = 43^mg/hr (a local code, not UCUM).
    expect(dosage.doseAndRate).toEqual([{ doseQuantity: { value: 5, unit: 'mg/hr' } }]);
    expect(dosage.text.split('\n')[0]).toBe('Titrate to BP less than 180');
    // The RXR after the RXE (IV), through the IG route map; the RXR of the RXO (IV Infusion) is not used.
    expect(dosage.route).toEqual({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IVINJ', display: 'Injection, intravenous' }] });
    expect(dosage.site).toEqual({ coding: [{ code: 'HAND', display: 'HAND' }] });
    // RXE-10 = 3, RXE-11 = BG^Bag, RXE-12 = 12 refills.
    expect(request.dispenseRequest).toEqual({ quantity: { value: 3, unit: 'Bag' }, numberOfRepeatsAllowed: 12 });
    const [patient] = await search(t.base, byIdentifier('Patient', GHH_PATIENT, 'PATID1234'));
    expect(request.subject).toEqual({ reference: `Patient/${patient.id}` });
    const visit = (await call(t.base, 'GET', `/${request.encounter.reference}`)).body;
    expect(visit.identifier[0].value).toBe('40007716');
  });

  it('RDE^O11 again with ORC-5 = DC (new MSH-10): the same MedicationRequest, stopped', async () => {
    const rde = setField(withControlId(fixture('msfc_RDE-O11-01.hl7'), 'RDE-2'), 'ORC', 5, 'DC');
    expect((await send(rde)).msa).toEqual(['MSA', 'AA', 'RDE-2']);
    const [request, ...others] = await search(t.base, byIdentifier('MedicationRequest', 'urn:carebridge:hl7v2:authority:EPC', '1163422591'));
    expect(others).toEqual([]);
    expect([request.status, request.meta.versionId]).toEqual(['stopped', '2']);
  });

  it('VXU^V04 (2.5.1, CVX): an Immunization with occurrence, vaccine, dose, lot, status, route and site', async () => {
    expect((await send(withControlId(fixture('msfc_IZ_1_1.1_Admin_Child_Max_Message.hl7'), 'VXU-1'))).msa).toEqual(['MSA', 'AA', 'VXU-1']);
    const [imm, ...others] = await search(t.base, `Immunization?vaccine-code=${encodeURIComponent('http://hl7.org/fhir/sid/cvx|140')}`);
    expect(others).toEqual([]);
    expect(imm.status).toBe('completed'); // RXA-20 CP
    expect(imm.occurrenceDateTime).toBe('2012-08-14');
    expect(imm.vaccineCode).toEqual({ coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140', display: 'Influenza, seasonal, injectable, preservative free' }] });
    expect(imm.doseQuantity).toEqual({ value: 0.5, unit: 'MilliLiter [SI Volume Units]', system: UCUM, code: 'mL' });
    expect(imm.lotNumber).toBe('Z0860BB');
    expect(imm.expirationDate).toBe('2012-11-04');
    expect(imm.manufacturer).toEqual({ display: 'CSL Behring' });
    expect(imm.identifier).toEqual([{ type: { coding: [{ system: V2_0203, code: 'FILL' }] }, system: 'urn:carebridge:hl7v2:authority:NDA', value: 'IZ-783274' }]);
    expect(imm.route).toEqual({ coding: [{ system: 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl', code: 'C28161', display: 'Intramuscular' }] });
    expect(imm.site).toEqual({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0163', code: 'LD', display: 'Left Arm' }] });
    expect(imm.performer[0].function.coding[0].code).toBe('AP');
    expect(imm.performer[0].actor.display).toBe('Mike A Lemon');
    const [patient] = await search(t.base, byIdentifier('Patient', 'urn:carebridge:hl7v2:authority:NIST%20MPI', 'D26376273'));
    expect(imm.patient).toEqual({ reference: `Patient/${patient.id}` });
    expect(patient.name[0]).toMatchObject({ family: 'Snow', given: ['Madelynn', 'Ainsley'] });
  });

  it('VXU^V04: RXA-20 through the completion status map, RXA-21 D as entered-in-error; same order → same Immunization', async () => {
    let vxu = setField(withControlId(fixture('msfc_IZ_1_1.1_Admin_Child_Max_Message.hl7'), 'VXU-2'), 'RXA', 20, 'NA');
    expect((await send(vxu)).msa[1]).toBe('AA');
    let [imm, ...others] = await search(t.base, `Immunization?vaccine-code=${encodeURIComponent('http://hl7.org/fhir/sid/cvx|140')}`);
    expect(others).toEqual([]);
    expect([imm.status, imm.meta.versionId]).toEqual(['not-done', '2']);
    vxu = setField(withControlId(fixture('msfc_IZ_1_1.1_Admin_Child_Max_Message.hl7'), 'VXU-3'), 'RXA', 21, 'D');
    expect((await send(vxu)).msa[1]).toBe('AA');
    [imm] = await search(t.base, `Immunization?vaccine-code=${encodeURIComponent('http://hl7.org/fhir/sid/cvx|140')}`);
    expect([imm.status, imm.meta.versionId]).toEqual(['entered-in-error', '3']);
  });

  it('two orders of one message with the same placer/filler numbers give one ServiceRequest and one report (resolved in message order)', async () => {
    // Both OBRs of LAB-ORU-1 renumbered alike: the second must find what the first one created.
    const oru = withControlId(fixture('msfc_LAB-ORU-1.hl7'), 'ORU-SAME')
      .split('\r')
      .map((seg) => (seg.startsWith('OBR|') ? seg.split('|').map((f, i) => (i === 2 ? 'SAME-P' : i === 3 ? 'SAME-F' : f)).join('|') : seg))
      .join('\r');
    expect((await send(oru)).msa).toEqual(['MSA', 'AA', 'ORU-SAME']);
    const sender = 'urn:carebridge:hl7v2:sender:SomeSystem';
    expect(await search(t.base, byIdentifier('ServiceRequest', sender, 'SAME-P'))).toHaveLength(1);
    const reports = await search(t.base, byIdentifier('DiagnosticReport', sender, 'SAME-F'));
    expect(reports).toHaveLength(1);
    // The second OBR's report replaced the first's (same identifier): its 5 results.
    expect([reports[0].meta.versionId, reports[0].result.length]).toEqual(['2', 5]);
  });

  it('VXU^V04 (2.8, NDC): the FHIR-Converter sample', async () => {
    expect((await send(withControlId(fixture('msfc_VXU-V04-01.hl7'), 'VXU-4'))).msa).toEqual(['MSA', 'AA', 'VXU-4']);
    const [imm] = await search(t.base, byIdentifier('Immunization', 'urn:oid:2.16.840.1.114222.4.3.3.5.1.2', '13696'));
    expect(imm.vaccineCode.coding[0]).toEqual({ system: 'http://hl7.org/fhir/sid/ndc', code: '49281021588', display: 'TENIVAC' });
    expect([imm.occurrenceDateTime, imm.lotNumber, imm.status]).toEqual(['2021-08-18', '315841', 'completed']);
    expect(imm.doseQuantity).toEqual({ value: 0.5, unit: 'mL', system: UCUM, code: 'mL' });
    expect(imm.site.coding[0]).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/v2-0163', code: 'RD', display: 'Right Deltoid' });
  });
});

describe('HL7 v2 mappings: rules that write into another resource', () => {
  it('are checked at load: the target must be produced by an earlier rule of the structure', async () => {
    const { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { defaultMappingsDir, loadMappingConfig } = await import('../../src/hl7v2/mapping-config.js');
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-mappings-'));
    try {
      cpSync(defaultMappingsDir(), dir, { recursive: true });
      expect(loadMappingConfig(dir).messages.get('SIU^S15')).toBeDefined();
      const file = join(dir, 'messages.json');
      const messages = JSON.parse(readFileSync(file, 'utf8'));
      messages.structures.SIU.resources.push({ segment: 'AIP', maps: ['AIP-Appointment'], into: { name: 'Encounter', path: 'participant[]' } });
      writeFileSync(file, JSON.stringify(messages));
      expect(() => loadMappingConfig(dir)).toThrow(/AIP goes into Encounter, which no earlier rule/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
