/**
 * The HL7 v2 benchmarks' workload, in one place: ADT^A01 (msfc_ADT01-28.hl7) and ORU^R01 (the
 * first order of msfc_LAB-ORU-1.hl7: PID, OBR, 5 OBX) alternating, message i with its own MSH-10,
 * patient identifier and visit or order numbers. Used by hl7v2.ts (over MLLP), hl7v2-map.ts
 * (parse and map in-process) and extract.ts (index rows of the mapped resources).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib.js';

/** A fixture's text as stored. */
export const fixtureText = (name: string) => readFileSync(join(REPO_ROOT, 'fixtures/hl7v2', name), 'utf8');
/** Segments separated by CR only, no trailing CR (what a sender frames). */
export const crOnly = (text: string) => text.replace(/\r\n|\n/g, '\r').replace(/\r+$/, '');

/** Set field n of every segment named seg (MSH numbering for MSH). */
export function setAll(message: string, seg: string, n: number, value: string): string {
  return message
    .split('\r')
    .map((s) => {
      if (!s.startsWith(`${seg}|`)) return s;
      const fields = s.split('|');
      const index = seg === 'MSH' ? n - 1 : n;
      while (fields.length <= index) fields.push('');
      fields[index] = value;
      return fields.join('|');
    })
    .join('\r');
}

const ADT = crOnly(fixtureText('msfc_ADT01-28.hl7'));
const ORU = crOnly(fixtureText('msfc_LAB-ORU-1.hl7')).split('\r').slice(0, 8).join('\r');

/** Message i of run `run`: ADT^A01 for even i, ORU^R01 for odd i. */
export function benchMessage(run: string, i: number): string {
  if (i % 2 === 0) {
    let m = setAll(ADT, 'MSH', 10, `B-${run}-${i}`);
    m = setAll(m, 'PID', 3, `B-${run}-${i}^^^ADT1^MR`);
    return setAll(m, 'PV1', 19, `V-${run}-${i}^^^ADT1^VN`);
  }
  let m = setAll(ORU, 'MSH', 10, `B-${run}-${i}`);
  m = setAll(m, 'PID', 3, `P-${run}-${i}^^^1^MR`);
  m = setAll(m, 'OBR', 2, `PL-${run}-${i}`);
  return setAll(m, 'OBR', 3, `FI-${run}-${i}`);
}
