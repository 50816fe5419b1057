/** HL7 v2 A40 (merge patient information), written through the Writer in the message's transaction. */
import type { Reference, Resource } from 'fhir/r4.js';
import { eachReference } from '../fhir/references.js';
import { findMatches } from '../interactions/matching.js';
import type { Writer, WriteOutcome } from '../interactions/writer.js';
import { V2DataError } from './ack.js';
import type { WrittenResource } from './apply-common.js';
import type { MergePlan } from './mapper.js';

/**
 * A40 merge: the prior patient (found by the MRG-1 identifier) is marked inactive and
 * replaced-by the survivor; the survivor gets a replaces link; the resources of the listed types
 * that refer to the prior patient (found through the reference index) are moved to the survivor.
 */
export async function applyMerge(w: Writer, merge: MergePlan, survivorRef: string): Promise<WrittenResource[]> {
  const store = w.ctx.store;
  const prior = await findMatches(w.tx, store.schema, 'Patient', merge.priorQuery, 2, w.registry);
  if (prior.length === 0) throw new V2DataError({ code: '204', text: 'MRG-1: no patient has the prior identifier', location: merge.origin });
  if (prior.length > 1) throw new V2DataError({ code: '205', text: 'MRG-1: several patients have the prior identifier', location: merge.origin });
  const priorRef = `Patient/${prior[0]!.id}`;
  if (priorRef === survivorRef) throw new V2DataError({ code: '205', text: 'MRG-1 names the surviving patient itself', location: merge.origin });
  const written: WrittenResource[] = [];
  const record = (out: WriteOutcome) => {
    const v = out.version!;
    written.push({ reference: `${v.resourceType}/${v.id}`, versionId: v.versionId, outcome: out.kind });
  };

  const old = JSON.parse(prior[0]!.content!) as Resource & { active?: boolean; link?: Array<{ other: Reference; type: string }> };
  const links = (old.link ?? []).filter((l) => l.type !== 'replaced-by');
  record(await w.update({ ...old, active: false, link: [...links, { other: { reference: survivorRef }, type: 'replaced-by' }] } as Resource, old.id!));

  const survivorId = survivorRef.slice('Patient/'.length);
  const current = await store.current(w.tx, 'Patient', survivorId, true);
  const survivor = JSON.parse(current!.content!) as Resource & { link?: Array<{ other: Reference; type: string }> };
  const survivorLinks = (survivor.link ?? []).filter((l) => l.other.reference !== priorRef);
  record(await w.update({ ...survivor, link: [...survivorLinks, { other: { reference: priorRef }, type: 'replaces' }] } as Resource, survivorId));

  for (const [type, param] of merge.references) {
    const seen = new Set<string>();
    for (;;) {
      const batch = (await findMatches(w.tx, store.schema, type, `${param}=${encodeURIComponent(priorRef)}`, 100, w.registry)).filter((m) => !seen.has(m.id));
      if (batch.length === 0) break;
      for (const match of batch) {
        seen.add(match.id);
        const resource = JSON.parse(match.content!) as Resource;
        eachReference(resource, (ref) => (ref === priorRef || ref.endsWith(`/${priorRef}`) ? survivorRef : undefined));
        record(await w.update(w.check(resource, type), match.id));
      }
    }
  }
  return written;
}
