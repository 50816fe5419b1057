/** HL7 v2 parsing, MLLP framing, date/times and ACKs: units without a server. */
import { describe, expect, it } from 'vitest';
import { buildAck, refreshAck } from '../../src/hl7v2/ack.js';
import { offsetFor, parseDtm, toFhirDate, toFhirDateTime, toFhirInstant } from '../../src/hl7v2/datetime.js';
import { frame, MllpDecoder, type MllpEvent } from '../../src/hl7v2/mllp.js';
import { comp, escapeText, parseMessage, ParseError, peekHeader, readHeader } from '../../src/hl7v2/parser.js';
import { fixture } from './mllp-client.js';

describe('HL7 v2 parser', () => {
  it('reads separators from MSH-1/2, numbers MSH fields from the separator, splits repetitions and components', () => {
    const msg = parseMessage(fixture('msfc_ADT01-28.hl7'));
    const h = readHeader(msg);
    expect(h).toMatchObject({ sendingApp: 'ADT1', sendingFacility: 'GOOD HEALTH HOSPITAL', messageCode: 'ADT', triggerEvent: 'A01', structure: 'ADT_A01', controlId: 'MSG00001', processingId: 'P', version: '2.5.1' });
    const pid = msg.segments.find((s) => s.name === 'PID')!;
    expect(pid.fields[3]!.length).toBe(2);
    expect(comp(pid.fields[3]![0], 1)).toBe('PATID1234');
    expect(comp(pid.fields[3]![0], 5)).toBe('MR');
    expect(comp(pid.fields[3]![1], 4)).toBe('USSSA');
    expect(comp(pid.fields[5]![0], 2)).toBe('ADAM');
    expect(msg.segments.map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'NK1', 'PV1']);
  });

  it('decodes escape sequences with the message own separators, and subcomponents', () => {
    const msg = parseMessage('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\X41\\|x&y^z');
    const nte = msg.segments[1]!;
    expect(comp(nte.fields[3]![0], 1)).toBe('a|b^c&d~e\\f\ngA');
    expect(nte.fields[4]![0]).toEqual([['x', 'y'], ['z']]);
    const custom = parseMessage('MSH#*@!%#A#B#C#D#20240101##ADT*A01#1#P#2.5\rPID#1##X!F!Y*Z%W');
    expect(custom.separators).toMatchObject({ field: '#', component: '*', repetition: '@', escape: '!', subcomponent: '%' });
    expect(custom.segments[1]!.fields[3]![0]).toEqual([['X#Y'], ['Z', 'W']]);
  });

  it('escapes text for output so that it reads back unchanged', () => {
    const sep = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
    const text = 'a|b^c~d\\e&f';
    const msg = parseMessage(`MSH|^~\\&|A|B|C|D|1||ACK|1|P|2.5\rNTE|1||${escapeText(text, sep)}`);
    expect(comp(msg.segments[1]!.fields[3]![0], 1)).toBe(text);
  });

  it('accepts LF and CRLF segment ends, refuses what is not a message', () => {
    expect(parseMessage('MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\nPID|1\r\nPV1|1').segments.length).toBe(3);
    expect(() => parseMessage('PID|1||x')).toThrow(ParseError);
    expect(() => parseMessage('MSH|^^\\&|A|B')).toThrow(/MSH-2/);
    expect(() => parseMessage('MSH|^~\\|A|B')).toThrow(/MSH-2/);
    expect(() => parseMessage('MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rthis is not a segment')).toThrow(/segment id/);
    expect(peekHeader('MSH|^^\\&|APP|FAC|||1||ADT^A01|CTRL9|P|2.5').header).toMatchObject({ sendingApp: 'APP', controlId: 'CTRL9' });
  });
});

describe('MLLP framing', () => {
  const payloads = (events: MllpEvent[]) => events.map((e) => (e.kind === 'frame' ? e.payload.toString() : e.kind));

  it('reassembles frames split across chunks at any byte, and several frames in one chunk', () => {
    const wire = Buffer.concat([frame(Buffer.from('MSH|one')), Buffer.from('noise'), frame(Buffer.from('MSH|two')), frame(Buffer.from('MSH|three'))]);
    for (const size of [1, 2, 3, 7, wire.length]) {
      const d = new MllpDecoder(1024);
      const events: MllpEvent[] = [];
      for (let i = 0; i < wire.length; i += size) events.push(...d.push(wire.subarray(i, i + size)));
      expect(payloads(events)).toEqual(['MSH|one', 'MSH|two', 'MSH|three']);
      expect(d.pending).toBe(0);
    }
  });

  it('reports an oversize frame once, keeping its head, then goes on', () => {
    const d = new MllpDecoder(10);
    const events = d.push(Buffer.concat([frame(Buffer.from('MSH|0123456789abcdef')), frame(Buffer.from('MSH|ok'))]));
    expect(events[0]).toMatchObject({ kind: 'oversize', size: 20 });
    expect((events[0] as { head: Buffer }).head.toString()).toBe('MSH|0123456789abcdef');
    expect(payloads(events.slice(1))).toEqual(['MSH|ok']);
  });

  it('reports a frame cut short by the start of the next one', () => {
    const d = new MllpDecoder(1024);
    const events = d.push(Buffer.concat([Buffer.from('\x0bMSH|partial'), frame(Buffer.from('MSH|whole'))]));
    expect(events.map((e) => e.kind)).toEqual(['truncated', 'frame']);
    expect(d.push(Buffer.from('\x0bMSH|open')).length).toBe(0);
    expect(d.pending).toBe('MSH|open'.length);
  });
});

describe('DTM to FHIR date/time', () => {
  it('keeps the precision given and the offset given', () => {
    expect(toFhirDate(parseDtm('19610615')!)).toBe('1961-06-15');
    expect(toFhirDate(parseDtm('198808181126+0215')!)).toBe('1988-08-18');
    expect(toFhirDateTime(parseDtm('1961')!, 'UTC')).toBe('1961');
    expect(toFhirDateTime(parseDtm('196106')!, 'UTC')).toBe('1961-06');
    expect(toFhirDateTime(parseDtm('198808181126+0215')!, 'UTC')).toBe('1988-08-18T11:26:00+02:15');
    expect(toFhirDateTime(parseDtm('20210817151943.4+0200')!, 'UTC')).toBe('2021-08-17T15:19:43.4+02:00');
    expect(toFhirDateTime(parseDtm('2005011004')!, '+07:00')).toBe('2005-01-10T04:00:00+07:00');
    expect(toFhirInstant(parseDtm('20141006')!, 'UTC')).toBe('2014-10-06T00:00:00Z');
  });

  it('gives a time without offset the offset of the configured zone at that date', () => {
    expect(offsetFor(parseDtm('200708181123')!, 'America/New_York')).toBe('-04:00');
    expect(offsetFor(parseDtm('200701181123')!, 'America/New_York')).toBe('-05:00');
    expect(offsetFor(parseDtm('200701181123')!, 'Asia/Kolkata')).toBe('+05:30');
    expect(offsetFor(parseDtm('200701181123')!, 'UTC')).toBe('Z');
  });

  it('rejects impossible dates and malformed values', () => {
    for (const bad of ['19611315', '19610230', '1961061', '2005011025', '20050110+25', 'yesterday', '20050110.5']) expect(parseDtm(bad), bad).toBeUndefined();
    expect(parseDtm('20000229')).toBeDefined();
  });
});

describe('ACK', () => {
  const { separators, header } = peekHeader(fixture('msfc_ADT01-28.hl7'));

  it('answers to the sender with MSA-2 = MSH-10 and the version and processing id of the message', () => {
    const ack = buildAck({ separators, header, code: 'AA' }).split('\r').map((s) => s.split('|'));
    expect(ack[0]!.slice(2, 6)).toEqual(['GHH LAB, INC.', 'GOOD HEALTH HOSPITAL', 'ADT1', 'GOOD HEALTH HOSPITAL']);
    expect(ack[0]![8]).toBe('ACK^A01^ACK');
    expect(ack[0]!.slice(10, 12)).toEqual(['P', '2.5.1']);
    expect(ack[1]).toEqual(['MSA', 'AA', 'MSG00001']);
    expect(ack.length).toBe(2);
  });

  it('names the error location in ERR-2 (2.5+) and ERR-1 (before 2.5)', () => {
    const issue = { code: '102', text: 'PID-7: bad date', location: { segment: 'PID', sequence: 1, field: 7 } };
    const v25 = buildAck({ separators, header, code: 'AE', issue }).split('\r')[2]!.split('|');
    expect(v25.slice(0, 5)).toEqual(['ERR', '', 'PID^1^7', '102^Data type error^HL70357', 'E']);
    expect(v25[8]).toBe('PID-7: bad date');
    const v23 = buildAck({ separators, header: { ...header, version: '2.3' }, code: 'AE', issue }).split('\r');
    expect(v23[0]!.split('|')[8]).toBe('ACK^A01');
    expect(v23[2]!.split('|')[1]).toBe('PID^1^7^102&Data type error&HL70357');
  });

  it('is resent for a duplicate with a new MSH-10 and the same content', () => {
    const first = buildAck({ separators, header, code: 'AE', issue: { code: '101', text: 'x' } });
    const again = refreshAck(first);
    expect(again.split('\r').slice(1)).toEqual(first.split('\r').slice(1));
    expect(again.split('|')[9]).not.toBe(first.split('|')[9]);
  });
});
