/**
 * Write a mapped message through the one write path (src/interactions/writer.ts), inside the
 * caller's database transaction, so the resources commit together with the message row.
 *
 * Why not a transaction Bundle through processBundle: the message row must be in the same
 * database transaction (processBundle opens its own), and the identities here need no
 * rewriting of conditions. Entries are written so that everything a resource refers to is
 * written before it; its urn:uuid references then become Type/id. Conditional writes hold the
 * Writer's condition locks to the end of the transaction, so concurrent messages about the same
 * patient never create it twice.
 */
import type { Reference, Resource } from 'fhir/r4.js';
import { FhirError, preconditionFailed } from '../fhir/outcome.js';
import { eachReference } from '../fhir/references.js';
import { findMatches } from '../interactions/matching.js';
import type { Writer, WriteOutcome } from '../interactions/writer.js';
import { V2DataError } from './ack.js';
import type { MergePlan, Plan, PlanEntry } from './mapper.js';

export interface WrittenResource {
  reference: string;
  versionId: number;
  outcome: WriteOutcome['kind'];
}

/** Entries ordered so that each comes after the entries it refers to. */
function writeOrder(entries: PlanEntry[]): PlanEntry[] {
  const byUrl = new Map(entries.map((e) => [e.fullUrl, e]));
  const order: PlanEntry[] = [];
  const state = new Map<PlanEntry, 'visiting' | 'done'>();
  const visit = (e: PlanEntry) => {
    const s = state.get(e);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`HL7 v2 mapping produced a reference cycle at ${e.name}`);
    state.set(e, 'visiting');
    eachReference(e.resource, (ref) => {
      const dep = byUrl.get(ref);
      if (dep) visit(dep);
      return undefined;
    });
    state.set(e, 'done');
    order.push(e);
  };
  entries.forEach(visit);
  return order;
}

async function writeEntry(w: Writer, e: PlanEntry, resource: Resource): Promise<WriteOutcome> {
  const checked = w.check(resource, resource.resourceType);
  switch (e.identity.kind) {
    case 'conditional':
      if (e.identity.mode === 'reference') return w.create(checked, { ifNoneExist: e.identity.query });
      if (e.identity.preserve) return updateKeeping(w, checked, e.identity.query, e.identity.preserve);
      return w.conditionalUpdate(checked, e.identity.query);
    case 'id':
      return w.update({ ...checked, id: e.identity.id }, e.identity.id);
    case 'create':
      return w.create(checked);
  }
}

/** A conditional update that keeps some elements of the stored resource the message does not give. */
async function updateKeeping(w: Writer, resource: Resource, query: string, preserve: string[]): Promise<WriteOutcome> {
  const matches = await w.lockAndMatch(resource.resourceType, query, 'conditional update');
  if (matches.length > 1) throw preconditionFailed(`The condition '${query}' matches ${matches.length} resources`);
  const match = matches[0];
  if (!match) return w.create(resource);
  const stored = JSON.parse(match.content!) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...resource, id: match.id };
  for (const key of preserve) if (merged[key] === undefined && stored[key] !== undefined) merged[key] = stored[key];
  return w.update(merged as unknown as Resource, match.id);
}

export async function applyPlan(w: Writer, plan: Plan): Promise<WrittenResource[]> {
  const resolved = new Map<string, string>();
  const written: WrittenResource[] = [];
  for (const e of writeOrder(plan.entries)) {
    // A copy: the transaction may be retried (deadlock), and the plan must stay as mapped.
    const resource = structuredClone(e.resource);
    eachReference(resource, (ref) => (ref.startsWith('urn:uuid:') ? resolved.get(ref) : undefined));
    let out: WriteOutcome;
    try {
      out = await writeEntry(w, e, resource);
    } catch (error) {
      if (error instanceof FhirError) {
        // 400: the mapped resource is invalid; 412: its identifier matches several resources.
        const code = error.status === 412 ? '205' : error.status === 400 ? '102' : '207';
        throw new V2DataError({ code, text: `${e.origin.segment} → ${resource.resourceType}: ${error.message}`, location: e.origin });
      }
      throw error;
    }
    const v = out.version!;
    resolved.set(e.fullUrl, `${v.resourceType}/${v.id}`);
    written.push({ reference: `${v.resourceType}/${v.id}`, versionId: v.versionId, outcome: out.kind });
  }
  for (const merge of plan.merges) written.push(...(await applyMerge(w, merge, resolved.get(merge.survivorUrl)!)));
  return written;
}

/**
 * A40 merge: the prior patient (found by the MRG-1 identifier) is marked inactive and
 * replaced-by the survivor; the survivor gets a replaces link; the resources of the listed types
 * that refer to the prior patient (found through the reference index) are moved to the survivor.
 */
async function applyMerge(w: Writer, merge: MergePlan, survivorRef: string): Promise<WrittenResource[]> {
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
