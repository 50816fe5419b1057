/**
 * The HL7 v2 benchmarks' workload, in one place: ADT^A01 (msfc_ADT01-28.hl7) and ORU^R01 (the
 * first order of msfc_LAB-ORU-1.hl7: PID, OBR, 5 OBX) alternating, message i with its own MSH-10,
 * patient identifier and visit or order numbers. Used by hl7v2.ts (over MLLP), hl7v2-map.ts
 * (parse and map in-process) and extract.ts (index rows of the mapped resources).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from 'fhir/r4.js';
import { serverProvenance } from '../../src/audit/provenance.js';
import { copyWithReferences } from '../../src/fhir/references.js';
import { loadMappingConfig } from '../../src/hl7v2/mapping-config.js';
import { Mapper } from '../../src/hl7v2/mapper.js';
import { parseMessage, readHeader } from '../../src/hl7v2/parser.js';
import { markInbound } from '../../src/hl7v2/source-marker.js';
import { stamp } from '../../src/interactions/resource-json.js';
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

/** A deterministic uuid-shaped id, so that a corpus does not depend on the run. */
export const fakeUuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/**
 * The resources the server writes for messages 0..n-1, per message: mapped by the repo's mapper,
 * references rewritten to Type/id and stamped (id, meta) as the writer does, plus one server
 * Provenance per message. Ids are fakeUuid(1), fakeUuid(2), ... in order.
 */
export function hl7MessageResources(messages: number, now: string): Resource[][] {
  const mapper = new Mapper(loadMappingConfig());
  const out: Resource[][] = [];
  let ids = 0;
  for (let i = 0; i < messages; i++) {
    const m = benchMessage('x', i);
    const msg = parseMessage(m);
    const header = readHeader(msg);
    const plan = mapper.map(msg, header, mapper.structureFor(header)!);
    markInbound(plan.entries.map((e) => e.resource), header); // meta.source, as inbound.ts does
    // The writer resolves the plan's urn:uuid fullUrls to Type/id before extracting.
    const local = new Map<string, string>();
    for (const e of plan.entries) local.set(e.fullUrl, `${e.resource.resourceType}/${fakeUuid(++ids)}`);
    const targets = [];
    const written: Resource[] = [];
    for (const e of plan.entries) {
      const id = local.get(e.fullUrl)!.split('/')[1]!;
      const copy = copyWithReferences(e.resource, (r) => local.get(r));
      written.push(stamp(copy, id, 1, now));
      targets.push({ resourceType: e.resource.resourceType, id, versionId: 1, action: 'create' as const });
    }
    written.push(stamp(serverProvenance(targets, now, 'HL7 v2 inbound'), fakeUuid(++ids), 1, now));
    out.push(written);
  }
  return out;
}
